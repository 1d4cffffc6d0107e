"""The AWS side of a pipeline, when its spec asks: the Kinesis stream and the Iceberg namespace and tables.

Idempotent: each function looks first and creates only what is missing, so the handlers can call it on every
reconcile. Table definitions come from eventpipe_common.tables (fixed field ids, ZSTD Parquet, day partitions).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError
from eventpipe_common import tables
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.transforms import HourTransform

from .spec import Pipeline

# The consumers' own: pyiceberg must never retry a commit by itself (eventpipe_consumer.iceberg
# NO_PYICEBERG_RETRIES); without it every consumer start rewrites the property (and warns) on a table made here.
CREATED_TABLE_PROPERTIES = {**tables.TABLE_PROPERTIES, "commit.retry.num-retries": "0"}


class ProvisioningError(Exception):
    """The stream or a table could not be made ready; the message says which and why."""


@dataclass(frozen=True)
class StreamState:
    name: str
    status: str
    arn: str
    open_shards: int
    created: bool = False


@dataclass(frozen=True)
class TablesState:
    namespace: str
    existing: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # identifier -> table UUID of each table this call created (what Delete may later drop, and only that)
    uuids: dict[str, str] = field(default_factory=dict)
    namespace_created: bool = False


def kinesis_client(pipeline: Pipeline) -> Any:
    return boto3.client("kinesis", region_name=pipeline.spec.aws.region,
                        endpoint_url=pipeline.spec.aws.kinesis_endpoint_url)


def open_shard_count(kinesis: Any, stream: str) -> int:
    """Shards still open for writes (no EndingSequenceNumber): the consumers' useful maximum."""
    count, token = 0, None
    while True:
        page = kinesis.list_shards(NextToken=token) if token else kinesis.list_shards(StreamName=stream)
        count += sum(1 for s in page["Shards"] if "EndingSequenceNumber" not in s["SequenceNumberRange"])
        token = page.get("NextToken")
        if not token:
            return count


def describe_stream(kinesis: Any, stream: str) -> StreamState | None:
    try:
        summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise
    status = summary["StreamStatus"]
    shards = open_shard_count(kinesis, stream) if status in ("ACTIVE", "UPDATING") else 0
    return StreamState(stream, status, summary["StreamARN"], shards)


def ensure_stream(kinesis: Any, pipeline: Pipeline, timeout: float, poll: float = 0.5) -> StreamState:
    """Create the stream when the spec says so and it is missing; wait until ACTIVE; report its shards."""
    spec = pipeline.spec.stream
    name = pipeline.stream_name
    state = describe_stream(kinesis, name)
    created = False
    if state is None:
        if not spec.create:
            raise ProvisioningError(f"stream {name!r} does not exist and spec.stream.create is false")
        kinesis.create_stream(StreamName=name, ShardCount=spec.shards)
        created = True
    deadline = time.monotonic() + timeout
    while True:
        state = describe_stream(kinesis, name)
        if state is not None and state.status == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise ProvisioningError(f"stream {name!r} not ACTIVE after {timeout:.0f}s "
                                    f"(status {state.status if state else 'missing'})")
        time.sleep(poll)
    if created and spec.retention_hours > 24:
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=spec.retention_hours)
    return StreamState(state.name, state.status, state.arn, state.open_shards, created)


def delete_stream(kinesis: Any, stream: str, arn: str) -> bool:
    """Delete the stream only if it is still the one the operator created (same ARN): a stream of the same
    name made by someone else after ours went is not ours to delete."""
    state = describe_stream(kinesis, stream)
    if state is None:
        return False
    if state.arn != arn:
        raise ProvisioningError(f"stream {stream!r} is {state.arn}, not the {arn} the operator created: kept")
    try:
        kinesis.delete_stream(StreamName=stream, EnforceConsumerDeletion=True)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise


def promoted_columns(pipeline: Pipeline) -> list[tuple[str, str]]:
    schema = pipeline.spec.schema_ or {}
    return [(p["column"], p["type"]) for p in schema.get("promote") or []]


def catalog_for(pipeline: Pipeline, secret_properties: dict[str, str] | None = None) -> Catalog:
    props = {**pipeline.spec.iceberg.catalog_properties, **(secret_properties or {})}
    if not props:
        raise ProvisioningError("spec.iceberg.catalogProperties is empty: the operator cannot reach a catalog")
    return load_catalog(pipeline.spec.iceberg.catalog_name, **props)


def raw_events_partition_spec(granularity: str) -> PartitionSpec:
    if granularity == "hour":
        return PartitionSpec(PartitionField(source_id=3, field_id=1000, transform=HourTransform(),
                                            name="event_ts_hour"))
    return tables.raw_events_partition_spec()


def ensure_tables(catalog: Catalog, pipeline: Pipeline) -> TablesState:
    """The namespace and both tables; an existing raw_events missing a promoted column is reported."""
    ns = pipeline.spec.iceberg.namespace
    try:
        catalog.load_namespace_properties(ns)
        namespace_created = False
    except NoSuchNamespaceError:
        catalog.create_namespace_if_not_exists(ns)
        namespace_created = True
    promoted = promoted_columns(pipeline)
    wanted = {
        tables.RAW_EVENTS: (tables.raw_events_schema(promoted),
                            raw_events_partition_spec(pipeline.spec.iceberg.partitioning)),
        tables.RAW_EVENTS_REJECTED: (tables.raw_events_rejected_schema(), tables.raw_events_rejected_partition_spec()),
    }
    existing, created, problems = [], [], []
    uuids: dict[str, str] = {}
    for name, (schema, spec) in wanted.items():
        identifier = f"{ns}.{name}"
        try:
            table = catalog.load_table(identifier)
        except NoSuchTableError:
            made = catalog.create_table(identifier, schema=schema, partition_spec=spec,
                                        properties=CREATED_TABLE_PROPERTIES)
            created.append(identifier)
            uuids[identifier] = str(made.metadata.table_uuid)
            continue
        existing.append(identifier)
        have = {f.name for f in table.schema().fields}
        missing = [f.name for f in schema.fields if f.name not in have]
        if missing:
            problems.append(f"{identifier} lacks columns {missing}")
    return TablesState(ns, existing, created, problems, uuids, namespace_created)


def drop_tables(catalog: Catalog, recorded: dict[str, str], namespace: str | None) -> list[str]:
    """deletionPolicy Delete: drop the tables the operator created, each only while it still has the UUID
    recorded at creation (a table re-created by someone else under the same name is kept), then the namespace
    only if the operator created it and it is empty."""
    dropped, kept = [], []
    for identifier, uuid in sorted(recorded.items()):
        try:
            table = catalog.load_table(identifier)
        except NoSuchTableError:
            continue
        if str(table.metadata.table_uuid) != uuid:
            kept.append(f"table {identifier} is {table.metadata.table_uuid}, not the {uuid} the operator created")
            continue
        catalog.drop_table(identifier)
        dropped.append(identifier)
    if kept:
        raise ProvisioningError(f"dropped {dropped or 'nothing'}; {'; '.join(kept)}: kept")
    if namespace is not None:
        try:
            if not catalog.list_tables(namespace):
                catalog.drop_namespace(namespace)
                dropped.append(f"namespace {namespace}")
        except NoSuchNamespaceError:
            pass
    return dropped
