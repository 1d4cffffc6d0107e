"""Spec checks the CRD's OpenAPI schema and CEL rules cannot express, reported as the SpecValid condition.

The operator image does not ship the Rust core, so the pipeline schema's shape is checked here in pure Python:
regular expressions compile, rules are scoped to declared event types, enum values fit the field type,
promoted columns do not shadow the table's own columns and point at a declared field of a compatible type.
Every problem names the field it is about (e.g. "spec.schema.fields[3].pattern").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from .spec import PipelineSpec

# Columns raw_events always has (eventpipe_common.tables.raw_events_schema); promoted columns must not reuse them.
RESERVED_COLUMNS = frozenset({
    "event_id", "event_type", "event_ts", "event_date", "event_hour", "user_id", "session_id", "properties",
    "schema_version", "ingested_at", "job_id", "shard_id", "sequence_number",
})
FIELD_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array"})
PROMOTED_TYPES = frozenset({"double", "long", "int", "string", "boolean"})
# Which promoted column types can hold a value of each field type.
_COMPATIBLE = {
    "string": {"string"},
    "number": {"double"},
    "integer": {"long", "int", "double"},
    "boolean": {"boolean"},
    "object": {"string"},
    "array": {"string"},
}
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?([EPTGMK]i?|[eE][0-9]+|k|m)?$")


def _value_fits(field_type: str, value: Any) -> bool:
    if field_type == "string":
        return isinstance(value, str)
    if field_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if field_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if field_type == "boolean":
        return isinstance(value, bool)
    return False


def check_schema(schema: dict[str, Any] | None) -> list[str]:
    """Problems of a pipeline schema in the Rust core's source format; empty when it looks compilable."""
    if schema is None:
        return []
    problems: list[str] = []
    where = "spec.schema"
    unknown = sorted(set(schema) - {"event_types", "fields", "promote"})
    if unknown:
        problems.append(f"{where}: unknown keys {unknown}")
    event_types = schema.get("event_types")
    declared: set[str] | None = None
    if event_types is not None:
        if not isinstance(event_types, list) or not all(isinstance(t, str) and t for t in event_types):
            problems.append(f"{where}.event_types: must be a list of non-empty strings")
        else:
            declared = set(event_types)
            if len(declared) != len(event_types):
                problems.append(f"{where}.event_types: duplicate event types")
            if not event_types:
                problems.append(f"{where}.event_types: empty list allows no event at all")
    fields = schema.get("fields") or []
    field_types: dict[str, str] = {}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for i, field in enumerate(fields):
        problems.extend(_check_field(f"{where}.fields[{i}]", field, declared))
        if not isinstance(field, dict):
            continue
        path, ftype = field.get("path"), field.get("type")
        scope = tuple(sorted(field.get("event_types") or ()))
        if isinstance(path, str):
            if (path, scope) in seen:
                problems.append(f"{where}.fields[{i}].path: {path!r} is declared twice for the same event types")
            seen.add((path, scope))
            if isinstance(ftype, str):
                previous = field_types.setdefault(path, ftype)
                if previous != ftype:
                    problems.append(f"{where}.fields[{i}].type: {path!r} is {previous!r} elsewhere, not {ftype!r}")
    columns: set[str] = set()
    for i, promo in enumerate(schema.get("promote") or []):
        here = f"{where}.promote[{i}]"
        if not isinstance(promo, dict):
            problems.append(f"{here}: must be an object")
            continue
        column, ctype, path = promo.get("column"), promo.get("type"), promo.get("path")
        if column in RESERVED_COLUMNS:
            problems.append(f"{here}.column: {column!r} is a column raw_events already has")
        if column in columns:
            problems.append(f"{here}.column: {column!r} is promoted twice")
        if isinstance(column, str):
            columns.add(column)
        if ctype not in PROMOTED_TYPES:
            problems.append(f"{here}.type: {ctype!r} is not one of {sorted(PROMOTED_TYPES)}")
        elif isinstance(path, str) and path in field_types:
            if ctype not in _COMPATIBLE.get(field_types[path], set()):
                problems.append(f"{here}.type: a {field_types[path]} field cannot be promoted to {ctype!r}")
    return problems


def _check_field(here: str, field: Any, declared: set[str] | None) -> Iterable[str]:
    if not isinstance(field, dict):
        yield f"{here}: must be an object"
        return
    ftype = field.get("type")
    if ftype not in FIELD_TYPES:
        yield f"{here}.type: {ftype!r} is not one of {sorted(FIELD_TYPES)}"
    if not isinstance(field.get("path"), str) or not field["path"]:
        yield f"{here}.path: required"
    pattern = field.get("pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            yield f"{here}.pattern: not a valid regular expression ({exc})"
    low, high = field.get("min"), field.get("max")
    if low is not None and high is not None and low > high:
        yield f"{here}: min {low} is greater than max {high}"
    if (low is not None or high is not None) and ftype not in ("number", "integer"):
        yield f"{here}: min/max apply only to number and integer fields"
    if (pattern is not None or field.get("max_length") is not None) and ftype != "string":
        yield f"{here}: pattern/max_length apply only to string fields"
    enum = field.get("enum")
    if enum is not None:
        if not enum:
            yield f"{here}.enum: empty list accepts no value"
        for j, value in enumerate(enum):
            if isinstance(ftype, str) and not _value_fits(ftype, value):
                yield f"{here}.enum[{j}]: {value!r} is not a {ftype}"
    for j, etype in enumerate(field.get("event_types") or []):
        if declared is not None and etype not in declared:
            yield f"{here}.event_types[{j}]: {etype!r} is not in spec.schema.event_types"


# What the DAG may name: the targets of dbt/profiles.yml and the suites `python -m eventpipe_quality run --suite`
# accepts. The CRD's enums say the same; the operator repeats them for objects stored before those enums.
DBT_TARGETS = ("duckdb", "snowflake")
GX_SUITES = ("staging", "marts")
# Orphan files younger than this many commit intervals may belong to a batch a consumer has not committed yet.
ORPHAN_GRACE_COMMIT_INTERVALS = 20
# Catalog properties that make the catalog client connect somewhere (checked against the allowed URIs).
_URL_KEY = re.compile(r"(^|[.-])(uri|endpoint|url)$")


def check_state(spec: PipelineSpec) -> list[str]:
    """Fail closed: shared state must be named, or the pipeline says it is a single-pod dev pipeline."""
    problems: list[str] = []
    if spec.mode == "dev":
        if spec.ingest.replicas != 1:
            problems.append(f"spec.ingest.replicas: mode dev runs one ingest pod, not {spec.ingest.replicas}")
        if spec.consumer.min_replicas != 1 or spec.consumer.max_replicas != 1:
            problems.append("spec.consumer: mode dev runs one consumer (minReplicas and maxReplicas 1)")
        return problems
    if not spec.iceberg.catalog_properties and spec.iceberg.catalog_secret_ref is None:
        problems.append("spec.iceberg: mode shared needs a shared catalog (catalogProperties or catalogSecretRef); "
                        "without one every consumer pod would commit into its own SQLite catalog")
    if spec.job_store.dsn_secret_ref is None:
        problems.append("spec.jobStore.dsnSecretRef: mode shared needs a shared job store; without one every "
                        "ingest pod keeps its own jobs and every consumer its own leases")
    return problems


def check_dag(spec: PipelineSpec) -> list[str]:
    """The DAG runs only names that exist: a dbt target of dbt/profiles.yml, suites the GX command accepts."""
    if not spec.transform.enabled:
        return []
    problems = []
    if spec.transform.dbt.target not in DBT_TARGETS:
        problems.append(f"spec.transform.dbt.target: {spec.transform.dbt.target!r} is not a target of "
                        f"dbt/profiles.yml ({', '.join(DBT_TARGETS)})")
    for i, suite in enumerate(spec.transform.gx.suites):
        if suite not in GX_SUITES:
            problems.append(f"spec.transform.gx.suites[{i}]: {suite!r} is not a GX suite ({', '.join(GX_SUITES)})")
    return problems


def orphan_grace_floor(commit_interval_seconds: float) -> float:
    """The smallest orphan grace period that cannot delete the files of a batch still being committed."""
    return max(3600.0, ORPHAN_GRACE_COMMIT_INTERVALS * commit_interval_seconds)


def check_maintenance(spec: PipelineSpec) -> list[str]:
    floor = orphan_grace_floor(spec.consumer.commit_interval_seconds)
    if spec.maintenance.orphan_grace_seconds < floor:
        return [f"spec.maintenance.orphanGraceSeconds: {spec.maintenance.orphan_grace_seconds} is below "
                f"{floor:.0f} ({ORPHAN_GRACE_COMMIT_INTERVALS} commit intervals, at least an hour)"]
    return []


def disallowed_urls(properties: dict[str, str], allowed: Sequence[str]) -> list[str]:
    """Catalog properties naming a URL/endpoint that no allowed pattern (full match) covers."""
    patterns = [re.compile(p) for p in allowed]
    return [f"{key}={value!r}" for key, value in sorted(properties.items())
            if _URL_KEY.search(key.lower()) and not any(p.fullmatch(value) for p in patterns)]


def check_endpoints(spec: PipelineSpec, allowed_catalog_uris: Sequence[str],
                    allowed_kinesis_endpoints: Sequence[str]) -> list[str]:
    """The operator calls the catalog and Kinesis with its own credentials: only where the chart allows."""
    problems = []
    bad = disallowed_urls(spec.iceberg.catalog_properties, allowed_catalog_uris)
    if bad:
        problems.append(f"spec.iceberg.catalogProperties: {', '.join(bad)} not allowed by the operator's "
                        "allowedCatalogUris")
    endpoint = spec.aws.kinesis_endpoint_url
    if endpoint and not any(re.fullmatch(p, endpoint) for p in allowed_kinesis_endpoints):
        problems.append(f"spec.aws.kinesisEndpointUrl: {endpoint!r} not allowed by the operator's "
                        "allowedKinesisEndpoints")
    return problems


def check_spec(spec: PipelineSpec, allowed_catalog_uris: Sequence[str] = (),
               allowed_kinesis_endpoints: Sequence[str] = ()) -> list[str]:
    """Every problem the operator finds in a spec the API server accepted."""
    problems = check_schema(spec.schema_)
    problems.extend(check_state(spec))
    problems.extend(check_dag(spec))
    problems.extend(check_maintenance(spec))
    problems.extend(check_endpoints(spec, allowed_catalog_uris, allowed_kinesis_endpoints))
    # The DAG's task pods too: a bad quantity there would only fail when Airflow creates the pod.
    for part, resources in (("ingest", spec.ingest.resources), ("consumer", spec.consumer.resources),
                            ("transform", spec.transform.resources)):
        if resources is None:
            continue
        for kind, quantities in (("requests", resources.requests), ("limits", resources.limits)):
            for key, value in quantities.items():
                if not _QUANTITY.match(str(value)):
                    problems.append(f"spec.{part}.resources.{kind}.{key}: {value!r} is not a Kubernetes quantity")
    return problems
