"""Stream and table provisioning against real servers: kinesalite and pyiceberg's SQL catalog on SQLite."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from eventpipe_common import tables
from eventpipe_operator import provision
from eventpipe_operator.spec import Pipeline

from tests.helpers.op_helpers import body, merge


def sql_catalog(tmp: Path) -> dict[str, str]:
    (tmp / "warehouse").mkdir(exist_ok=True)
    return {"type": "sql", "uri": f"sqlite:///{tmp / 'catalog.db'}", "warehouse": (tmp / "warehouse").as_uri()}


def pipeline_for(kinesis_endpoint: str, tmp: Path, stream_name: str, **changes: Any) -> Pipeline:
    spec = {"aws": {"kinesisEndpointUrl": kinesis_endpoint, "region": "us-east-1"},
            "stream": {"name": stream_name, "shards": 2, "create": True, "retentionHours": 24},
            "iceberg": {"catalogProperties": sql_catalog(tmp), "createTables": True}}
    return Pipeline.from_body(body(merge(spec, changes)))


def test_stream_created_once_and_reported(kinesis_endpoint: str, tmp_path: Path) -> None:
    pipeline = pipeline_for(kinesis_endpoint, tmp_path, "prov-stream")
    kinesis = provision.kinesis_client(pipeline)
    first = provision.ensure_stream(kinesis, pipeline, timeout=30)
    assert (first.status, first.open_shards, first.created) == ("ACTIVE", 2, True)
    again = provision.ensure_stream(kinesis, pipeline, timeout=30)
    assert (again.created, again.arn) == (False, first.arn)
    other = boto3.client("kinesis", endpoint_url=kinesis_endpoint, region_name="us-east-1")
    assert other.describe_stream_summary(StreamName="prov-stream")["StreamDescriptionSummary"]["OpenShardCount"] == 2
    # Only the stream with the recorded ARN is deleted: another ARN (someone else's stream) is kept.
    with pytest.raises(provision.ProvisioningError, match="not the .* the operator created: kept"):
        provision.delete_stream(kinesis, "prov-stream", first.arn + "-other")
    assert provision.describe_stream(kinesis, "prov-stream") is not None
    assert provision.delete_stream(kinesis, "prov-stream", first.arn) is True
    deadline = time.monotonic() + 10
    while provision.describe_stream(kinesis, "prov-stream") is not None and time.monotonic() < deadline:
        time.sleep(0.05)  # deleting is asynchronous, even on kinesalite
    assert provision.delete_stream(kinesis, "prov-stream", first.arn) is False


def test_missing_stream_without_create_is_an_error(kinesis_endpoint: str, tmp_path: Path) -> None:
    pipeline = pipeline_for(kinesis_endpoint, tmp_path, "prov-absent", stream={"create": False})
    with pytest.raises(provision.ProvisioningError, match="does not exist and spec.stream.create is false"):
        provision.ensure_stream(provision.kinesis_client(pipeline), pipeline, timeout=5)


def test_open_shards_exclude_closed_parents(kinesis_endpoint: str, tmp_path: Path) -> None:
    pipeline = pipeline_for(kinesis_endpoint, tmp_path, "prov-split")
    kinesis = provision.kinesis_client(pipeline)
    provision.ensure_stream(kinesis, pipeline, timeout=30)
    shard = kinesis.list_shards(StreamName="prov-split")["Shards"][0]
    low, high = (int(shard["HashKeyRange"][k]) for k in ("StartingHashKey", "EndingHashKey"))
    kinesis.split_shard(StreamName="prov-split", ShardToSplit=shard["ShardId"],
                        NewStartingHashKey=str((low + high) // 2))
    provision.ensure_stream(kinesis, pipeline, timeout=30)  # waits for ACTIVE again
    assert provision.open_shard_count(kinesis, "prov-split") == 3  # 2 - 1 closed parent + 2 children


def test_tables_created_with_the_shared_definitions(tmp_path: Path) -> None:
    pipeline = pipeline_for("http://127.0.0.1:1", tmp_path, "unused", iceberg={"partitioning": "hour"})
    catalog = provision.catalog_for(pipeline)
    state = provision.ensure_tables(catalog, pipeline)
    assert sorted(state.created) == ["shop.raw_events", "shop.raw_events_rejected"] and state.problems == []
    assert state.namespace_created is True
    assert state.uuids == {t: str(catalog.load_table(t).metadata.table_uuid) for t in state.created}
    raw = catalog.load_table("shop.raw_events")
    promoted = provision.promoted_columns(pipeline)
    assert promoted == [("amount", "double"), ("currency", "string"), ("product_id", "string"),
                        ("quantity", "long")]
    # pyiceberg's create_table assigns fresh field ids in order, so compare names, types and nullability.
    def shape(schema: Any) -> list[tuple[str, str, bool]]:
        return [(f.name, str(f.field_type), f.required) for f in schema.fields]

    assert shape(raw.schema()) == shape(tables.raw_events_schema(promoted))
    assert str(raw.spec().fields[0].transform) == "hour"
    assert raw.properties["write.parquet.compression-codec"] == "zstd"
    assert raw.properties["commit.retry.num-retries"] == "0"  # what the consumers require, set from the start
    rejected = catalog.load_table("shop.raw_events_rejected")
    assert shape(rejected.schema()) == shape(tables.raw_events_rejected_schema())

    again = provision.ensure_tables(catalog, pipeline)
    assert again.created == [] and sorted(again.existing) == ["shop.raw_events", "shop.raw_events_rejected"]

    # A schema that promotes a new column: the existing table is reported, not silently rewritten.
    schema = dict(pipeline.spec.schema_ or {})
    schema["promote"] = [*schema["promote"], {"path": "properties.plan", "column": "plan", "type": "string"}]
    wider = pipeline_for("http://127.0.0.1:1", tmp_path, "unused", schema=schema)
    assert provision.ensure_tables(catalog, wider).problems == ["shop.raw_events lacks columns ['plan']"]

    assert again.uuids == {} and again.namespace_created is False  # nothing new was created

    # Delete drops a table only while it has the UUID recorded at creation: one re-created by someone else
    # under the same name (a new UUID) is kept, and so is the namespace that still holds it.
    catalog.drop_table("shop.raw_events_rejected")
    catalog.create_table("shop.raw_events_rejected", schema=tables.raw_events_rejected_schema())
    with pytest.raises(provision.ProvisioningError, match="raw_events_rejected is .* not the .* kept"):
        provision.drop_tables(catalog, state.uuids, "shop")
    assert sorted(t[1] for t in catalog.list_tables("shop")) == ["raw_events_rejected"]
    mine = {"shop.raw_events": state.uuids["shop.raw_events"]}
    assert provision.drop_tables(catalog, mine, "shop") == []  # already gone; the namespace is not empty
    assert ("shop",) in catalog.list_namespaces()
    catalog.drop_table("shop.raw_events_rejected")
    assert provision.drop_tables(catalog, {}, "shop") == ["namespace shop"]
    assert ("shop",) not in catalog.list_namespaces()


def test_no_catalog_properties_is_a_clear_error(tmp_path: Path) -> None:
    pipeline = Pipeline.from_body(body({"iceberg": {"catalogProperties": None}}))
    with pytest.raises(provision.ProvisioningError, match="catalogProperties is empty"):
        provision.catalog_for(pipeline)
