"""The CRD is the first validation layer: the API server itself refuses invalid specs, with the rule's message."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.helpers.kubecluster import KubeCluster
from tests.helpers.op_helpers import REPO, ensure_namespace, example, merge

NS = "crd-checks"


def _create(custom: client.CustomObjectsApi, name: str, spec_changes: dict[str, Any]) -> dict[str, Any]:
    doc = example()
    doc["metadata"] = {"name": name, "namespace": NS}
    doc["spec"] = merge(doc["spec"], spec_changes)
    created: dict[str, Any] = custom.create_namespaced_custom_object(
        "eventpipe.io", "v1alpha1", NS, "eventpipelines", doc, dry_run="All")
    return created


def _refused(custom: client.CustomObjectsApi, spec_changes: dict[str, Any]) -> str:
    with pytest.raises(client.ApiException) as err:
        _create(custom, "bad", spec_changes)
    assert err.value.status == 422, err.value.body
    message: str = json.loads(err.value.body)["message"]
    return message


@pytest.fixture(scope="module", autouse=True)
def namespace(core: client.CoreV1Api) -> None:
    ensure_namespace(core, NS)


def test_the_example_is_accepted_and_defaulted(custom: client.CustomObjectsApi) -> None:
    created = _create(custom, "shop", {"ingest": {"replicas": None}, "transform": {"dbt": None}})
    assert created["spec"]["ingest"]["replicas"] == 2  # the CRD's default
    # The DAG's defaults are names that exist: dbt/profiles.yml's default target, both GX suites.
    assert created["spec"]["transform"]["dbt"] == {"target": "duckdb", "select": ["+fact_events"]}
    assert created["spec"]["networkPolicy"] == {"enabled": True}
    assert created["spec"]["mode"] == "shared"
    assert created["spec"]["maintenance"] == {"enabled": True, "schedule": "23 3 * * *",
                                              "snapshotRetentionSeconds": 604800, "orphanGraceSeconds": 259200,
                                              "quietSeconds": 3600}


def test_transform_pods_fields_are_kept(custom: client.CustomObjectsApi) -> None:
    """The DAG's task pods: their IAM role and resources are part of the schema (not pruned as unknown)."""
    role = "arn:aws:iam::123456789012:role/eventpipe-shop-transform"
    resources = {"requests": {"cpu": 1, "memory": "2Gi"}, "limits": {"memory": "8Gi"}}
    created = _create(custom, "transform-pods", {"aws": {"transformRoleArn": role},
                                                 "transform": {"resources": resources}})
    assert created["spec"]["aws"]["transformRoleArn"] == role
    assert created["spec"]["transform"]["resources"] == resources


def test_default_gx_suites_are_the_commands(custom: client.CustomObjectsApi) -> None:
    created = _create(custom, "gx-defaults", {"transform": {"gx": None}})
    assert created["spec"]["transform"]["gx"] == {"suites": ["staging", "marts"]}


@pytest.mark.parametrize(("changes", "expected"), [
    ({"consumer": {"minReplicas": 5, "maxReplicas": 2}}, "consumer.minReplicas must be <= consumer.maxReplicas"),
    ({"transform": {"trigger": "schedule"}}, 'transform.schedule is required when transform.trigger is "schedule"'),
    ({"iceberg": {"catalogProperties": {"s3.secret-access-key": "x"}}},
     "catalog secrets belong in iceberg.catalogSecretRef, not in catalogProperties"),
    ({"schema": {"promote": [{"path": "properties.a", "column": "a", "type": "double"},
                             {"path": "properties.b", "column": "a", "type": "double"}]}},
     "promoted column names must be unique"),
    ({"schema": {"fields": [{"path": "properties.a", "type": "number", "min": 3, "max": 1}]}}, "min must be <= max"),
    ({"schema": {"fields": [{"path": "properties.a", "type": "string", "min": 3}]}},
     "min/max apply only to number and integer fields"),
    ({"transform": {"alerts": [{"type": "slack"}]}}, "slack and webhook alerts need urlSecretRef"),
    ({"deletionPolicy": "Orphan"}, 'spec.deletionPolicy: Unsupported value: "Orphan"'),
    ({"stream": {"shards": 0}}, "spec.stream.shards: Invalid value: 0"),
    ({"consumer": {"batchSize": 2_000_000}}, "spec.consumer.batchSize: Invalid value: 2000000"),
    ({"schema": {"fields": [{"path": "amount", "type": "number"}]}}, "spec.schema.fields[0].path"),
    ({"iceberg": None}, "spec.iceberg: Required value"),
    ({"aws": {"ingestRoleArn": "not-an-arn"}}, "spec.aws.ingestRoleArn"),
    ({"aws": {"consumerRoleArn": "not-an-arn"}}, "spec.aws.consumerRoleArn"),
    ({"aws": {"transformRoleArn": "not-an-arn"}}, "spec.aws.transformRoleArn"),
    ({"transform": {"resources": {"limits": {"memory": ["4Gi"]}}}}, "spec.transform.resources.limits.memory"),
    # fail closed on state
    ({"iceberg": {"catalogProperties": None}}, "mode shared needs a shared Iceberg catalog"),
    ({"jobStore": None}, "mode shared needs a shared job store"),
    ({"mode": "dev"}, "mode dev runs one ingest and one consumer"),
    ({"mode": "dev", "ingest": {"replicas": 1}, "consumer": {"maxReplicas": 2}},
     "mode dev runs one ingest and one consumer"),
    ({"mode": "staging"}, 'spec.mode: Unsupported value: "staging"'),
    # the DAG names only what exists
    ({"transform": {"dbt": {"target": "prod"}}}, 'spec.transform.dbt.target: Unsupported value: "prod"'),
    ({"transform": {"gx": {"suites": ["raw_events"]}}}, 'Unsupported value: "raw_events"'),
    # maintenance cannot delete files of a batch still being committed
    ({"consumer": {"commitIntervalSeconds": 600}, "maintenance": {"orphanGraceSeconds": 3600}},
     "maintenance.orphanGraceSeconds must be at least 20 commit intervals"),
    ({"maintenance": {"orphanGraceSeconds": 60}}, "spec.maintenance.orphanGraceSeconds: Invalid value: 60"),
    ({"monitoring": {"scrapeInterval": "10s", "scrapeTimeout": "30s"}},
     "monitoring.scrapeTimeout must not be longer than monitoring.scrapeInterval"),
    ({"ingest": {"pod": {"labels": {"app.kubernetes.io/component": "x"}}}},
     "app.kubernetes.io/ and eventpipe.io/ labels are set by the operator"),
])
def test_invalid_specs_are_refused_with_the_rule_message(custom: client.CustomObjectsApi,
                                                         changes: dict[str, Any], expected: str) -> None:
    assert expected in _refused(custom, changes)


# (what the object starts with, the change, the refusal): each identity field changed, set when it was unset,
# and unset when it was set.
IDENTITY_CHANGES = [
    ({}, {"iceberg": {"namespace": "other"}}, "iceberg.namespace is immutable"),
    ({}, {"stream": {"name": "other-stream"}}, "stream.name is immutable"),
    ({}, {"stream": {"name": None}}, "stream.name is immutable"),
    ({"stream": {"name": None}}, {"stream": {"name": "eventpipe-immutable"}}, "stream.name is immutable"),
    ({}, {"aws": {"region": "us-west-2"}}, "aws.region is immutable"),
    ({}, {"aws": {"kinesisEndpointUrl": "http://127.0.0.1:4567"}}, "aws.kinesisEndpointUrl is immutable"),
    ({"aws": {"kinesisEndpointUrl": "http://127.0.0.1:4567"}}, {"aws": {"kinesisEndpointUrl": None}},
     "aws.kinesisEndpointUrl is immutable"),
    ({"aws": {"kinesisEndpointUrl": "http://127.0.0.1:4567"}}, {"aws": {"kinesisEndpointUrl": "http://127.0.0.1:1"}},
     "aws.kinesisEndpointUrl is immutable"),
    ({}, {"iceberg": {"catalogName": "other"}}, "iceberg.catalogName is immutable"),
    ({}, {"iceberg": {"catalogProperties": {"warehouse": "s3://other/warehouse"}}},
     "iceberg.catalogProperties type, uri, warehouse"),
    ({}, {"iceberg": {"catalogProperties": {"uri": "http://catalog.local"}}},
     "iceberg.catalogProperties type, uri, warehouse"),
    ({}, {"iceberg": {"catalogProperties": {"type": "rest"}}}, "iceberg.catalogProperties type, uri, warehouse"),
    ({}, {"iceberg": {"catalogSecretRef": {"name": "cat"}}}, "iceberg.catalogSecretRef is immutable"),
    ({}, {"mode": "dev", "ingest": {"replicas": 1}, "consumer": {"maxReplicas": 1}}, "mode is immutable"),
]


@pytest.mark.parametrize(("start", "change", "refusal"), IDENTITY_CHANGES)
def test_identity_fields_are_immutable(custom: client.CustomObjectsApi, start: dict[str, Any],
                                       change: dict[str, Any], refusal: str) -> None:
    """Each change of what selects the stream or the catalog is refused by the API server itself (CEL
    transition rules), including setting a field that was unset and unsetting one that was set."""
    doc = example()
    doc["metadata"] = {"name": "immutable", "namespace": NS}
    doc["spec"] = merge(doc["spec"], start)
    created = custom.create_namespaced_custom_object("eventpipe.io", "v1alpha1", NS, "eventpipelines", doc)
    try:
        changed = dict(created)
        changed["spec"] = merge(created["spec"], change)
        with pytest.raises(client.ApiException) as err:
            custom.replace_namespaced_custom_object("eventpipe.io", "v1alpha1", NS, "eventpipelines", "immutable",
                                                    changed)
        assert err.value.status == 422, err.value.body
        assert refusal in json.loads(err.value.body)["message"]
        # a change of something else is still accepted (the rules are about identity only)
        fine = dict(created)
        fine["spec"] = merge(created["spec"], {"ingest": {"replicas": 1},
                                               "iceberg": {"catalogProperties": {"s3.region": "eu-west-1"}}})
        custom.replace_namespaced_custom_object("eventpipe.io", "v1alpha1", NS, "eventpipelines", "immutable",
                                                fine)
    finally:
        custom.delete_namespaced_custom_object("eventpipe.io", "v1alpha1", NS, "eventpipelines", "immutable")
        _gone(custom, "immutable")


def _gone(custom: client.CustomObjectsApi, name: str) -> None:
    from tests.helpers.op_helpers import wait_for

    def absent() -> bool:
        try:
            custom.get_namespaced_custom_object("eventpipe.io", "v1alpha1", NS, "eventpipelines", name)
        except client.ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    wait_for(f"{name} deleted", absent, timeout=30)


def test_dev_pipeline_example_is_accepted(custom: client.CustomObjectsApi) -> None:
    with open(REPO / "examples" / "dev-pipeline.yaml", encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    doc["metadata"]["namespace"] = NS
    created = custom.create_namespaced_custom_object("eventpipe.io", "v1alpha1", NS, "eventpipelines", doc,
                                                     dry_run="All")
    assert created["spec"]["mode"] == "dev" and created["spec"]["dev"] == {"storageSize": "5Gi"}


def test_minimal_example_is_accepted(custom: client.CustomObjectsApi) -> None:
    with open(REPO / "examples" / "minimal-pipeline.yaml", encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    doc["metadata"]["namespace"] = NS
    created = custom.create_namespaced_custom_object("eventpipe.io", "v1alpha1", NS, "eventpipelines", doc,
                                                     dry_run="All")
    spec = created["spec"]
    assert spec["deletionPolicy"] == "Retain" and spec["stream"] == {"shards": 1, "create": False,
                                                                    "retentionHours": 24}
    assert spec["consumer"]["minReplicas"] == 1 and spec["consumer"]["maxReplicas"] == 4


def test_printer_columns_and_short_name(cluster: KubeCluster, custom: client.CustomObjectsApi) -> None:
    out = cluster.kubectl("get", "epl", "-n", NS, "-o", "wide").stdout + cluster.kubectl(
        "get", "epl", "-n", NS, "--no-headers=false").stderr
    assert "No resources found" in out  # the short name resolves
    crd = client.ApiextensionsV1Api(custom.api_client).read_custom_resource_definition("eventpipelines.eventpipe.io")
    columns = crd.spec.versions[0].additional_printer_columns
    assert [c.name for c in columns] == ["Phase", "Ready", "Shards", "Consumers", "Lag", "Age"]
    assert all(c.description for c in columns)
    assert next(c for c in columns if c.name == "Lag").type == "number"


def _undescribed(node: dict[str, Any], path: str) -> list[str]:
    missing = [] if node.get("description") or path.count(".") < 1 else [path]
    for key, child in (node.get("properties") or {}).items():
        if path == "" and key in ("apiVersion", "kind", "metadata"):
            continue
        missing.extend(_undescribed(child, f"{path}.{key}" if path else key))
    if isinstance(node.get("items"), dict) and node["items"].get("properties"):
        missing.extend(_undescribed(node["items"], f"{path}[]"))
    return missing


def test_every_field_has_a_description_for_kubectl_explain(cluster: KubeCluster) -> None:
    """Every spec and status field says what it is (what `kubectl explain` prints), checked on the CRD file
    and through kubectl explain against the API server."""
    crd = yaml.safe_load((REPO / "crds" / "eventpipelines.eventpipe.io.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _undescribed(schema, "") == []
    out = cluster.kubectl("explain", "eventpipelines.spec.maintenance.orphanGraceSeconds").stdout
    assert "Only unreferenced files older than this are deleted" in out
