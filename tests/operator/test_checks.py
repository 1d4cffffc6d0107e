"""What the CRD schema cannot check, the operator does: every problem names its field."""

from __future__ import annotations

import copy

from eventpipe_operator.checks import (
    DBT_TARGETS,
    GX_SUITES,
    check_dag,
    check_endpoints,
    check_maintenance,
    check_schema,
    check_spec,
    check_state,
    orphan_grace_floor,
)
from eventpipe_operator.spec import Pipeline

from tests.helpers.op_helpers import body, shop_schema


def test_the_shop_schema_passes() -> None:
    assert check_schema(shop_schema()) == []
    assert check_spec(Pipeline.from_body(body()).spec) == []
    assert check_schema(None) == []


def test_each_problem_is_reported_with_its_field() -> None:
    schema = copy.deepcopy(shop_schema())
    schema["fields"][7]["pattern"] = "^[unclosed"
    schema["fields"][4]["event_types"] = ["purchase", "refund"]
    schema["fields"][6]["enum"] = ["EUR", 3]
    schema["fields"].append({"path": "properties.amount", "type": "string", "event_types": ["page_view"]})
    schema["promote"].append({"path": "properties.page", "column": "event_id", "type": "string"})
    schema["promote"].append({"path": "properties.quantity", "column": "qty", "type": "boolean"})
    problems = check_schema(schema)
    text = "\n".join(problems)
    assert "spec.schema.fields[7].pattern: not a valid regular expression" in text
    assert "spec.schema.fields[4].event_types[1]: 'refund' is not in spec.schema.event_types" in text
    assert "spec.schema.fields[6].enum[1]: 3 is not a string" in text
    assert "spec.schema.fields[13].type: 'properties.amount' is 'number' elsewhere, not 'string'" in text
    assert "spec.schema.promote[4].column: 'event_id' is a column raw_events already has" in text
    assert "spec.schema.promote[5].type: a integer field cannot be promoted to 'boolean'" in text
    assert len(problems) == 6


def test_duplicates_and_bad_bounds() -> None:
    schema = {"event_types": ["a", "a"], "fields": [
        {"path": "user_id", "type": "string"}, {"path": "user_id", "type": "string"},
        {"path": "properties.n", "type": "number", "min": 5, "max": 1},
        {"path": "properties.s", "type": "boolean", "max_length": 3}],
        "promote": [{"path": "properties.n", "column": "n", "type": "double"},
                    {"path": "properties.n", "column": "n", "type": "double"}], "extra": 1}
    problems = check_schema(schema)
    assert "spec.schema: unknown keys ['extra']" in problems
    assert "spec.schema.event_types: duplicate event types" in problems
    assert "spec.schema.fields[1].path: 'user_id' is declared twice for the same event types" in problems
    assert "spec.schema.fields[2]: min 5 is greater than max 1" in problems
    assert "spec.schema.fields[3]: pattern/max_length apply only to string fields" in problems
    assert "spec.schema.promote[1].column: 'n' is promoted twice" in problems


def test_resource_quantities_are_checked() -> None:
    spec = Pipeline.from_body(body({"ingest": {"resources": {"limits": {"memory": "lots"}}}})).spec
    assert check_spec(spec) == ["spec.ingest.resources.limits.memory: 'lots' is not a Kubernetes quantity"]
    spec = Pipeline.from_body(body({"transform": {"resources": {"requests": {"cpu": "1 core", "memory": 512}}}})).spec
    assert check_spec(spec) == ["spec.transform.resources.requests.cpu: '1 core' is not a Kubernetes quantity"]


def test_shared_mode_fails_closed_without_shared_state() -> None:
    """Without a shared catalog and job store a shared pipeline is refused (every pod would keep its own)."""
    bare = Pipeline.from_body(body({"iceberg": {"catalogProperties": None}, "jobStore": None})).spec
    problems = check_spec(bare)
    assert any(p.startswith("spec.iceberg: mode shared needs a shared catalog") for p in problems)
    assert any(p.startswith("spec.jobStore.dsnSecretRef: mode shared needs a shared job store") for p in problems)
    by_secret = Pipeline.from_body(body({"iceberg": {"catalogProperties": None,
                                                     "catalogSecretRef": {"name": "cat"}}})).spec
    assert check_state(by_secret) == []


def test_dev_mode_is_one_pod_of_each() -> None:
    dev = {"mode": "dev", "iceberg": {"catalogProperties": None}, "jobStore": None}
    assert check_state(Pipeline.from_body(body(dev)).spec) == [
        "spec.ingest.replicas: mode dev runs one ingest pod, not 2",
        "spec.consumer: mode dev runs one consumer (minReplicas and maxReplicas 1)"]
    ok = {**dev, "ingest": {"replicas": 1}, "consumer": {"minReplicas": 1, "maxReplicas": 1}}
    assert check_state(Pipeline.from_body(body(ok)).spec) == []


def test_dag_names_must_exist() -> None:
    bad = Pipeline.from_body(body({"transform": {"dbt": {"target": "prod"}, "gx": {"suites": ["raw_events"]}}}))
    assert check_dag(bad.spec) == [
        "spec.transform.dbt.target: 'prod' is not a target of dbt/profiles.yml (duckdb, snowflake)",
        "spec.transform.gx.suites[0]: 'raw_events' is not a GX suite (staging, marts)"]
    off = Pipeline.from_body(body({"transform": {"enabled": False, "dbt": {"target": "prod"}}}))
    assert check_dag(off.spec) == []


def test_dag_names_agree_with_dbt_profiles_and_the_gx_command() -> None:
    """The names the operator accepts are the ones dbt/profiles.yml and the GX command really offer."""
    import yaml

    from tests.helpers.op_helpers import REPO

    profiles = yaml.safe_load((REPO / "dbt" / "profiles.yml").read_text())
    assert set(DBT_TARGETS) == set(profiles["eventpipe"]["outputs"])
    gx_main = (REPO / "gx" / "src" / "eventpipe_quality" / "suites.py").read_text()
    for suite in GX_SUITES:
        assert f"def {suite}_suite(" in gx_main


def test_orphan_grace_floor_follows_the_commit_interval() -> None:
    spec = Pipeline.from_body(body({"consumer": {"commitIntervalSeconds": 600},
                                    "maintenance": {"orphanGraceSeconds": 3600}})).spec
    assert check_maintenance(spec) == [
        "spec.maintenance.orphanGraceSeconds: 3600 is below 12000 (20 commit intervals, at least an hour)"]
    assert orphan_grace_floor(5) == 3600


def test_only_allowed_catalog_and_kinesis_urls() -> None:
    spec = Pipeline.from_body(body({"iceberg": {"catalogProperties": {
        "type": "rest", "uri": "http://169.254.169.254/latest", "s3.endpoint": "https://s3.eu-west-1.amazonaws.com"}},
        "aws": {"kinesisEndpointUrl": "http://evil.example:4567"}})).spec
    problems = check_endpoints(spec, [r"https://s3\.[a-z0-9-]+\.amazonaws\.com"], [])
    assert problems == [
        "spec.iceberg.catalogProperties: uri='http://169.254.169.254/latest' not allowed by the operator's "
        "allowedCatalogUris",
        "spec.aws.kinesisEndpointUrl: 'http://evil.example:4567' not allowed by the operator's "
        "allowedKinesisEndpoints"]
    assert check_endpoints(spec, [r"https://s3\..*", r"http://169\.254\..*"], [r"http://evil\.example:\d+"]) == []
