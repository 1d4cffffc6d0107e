"""The CRD is the first validation layer: the API server itself refuses invalid specs, with the rule's message."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from conftest import ensure_namespace
from kubecluster import KubeCluster
from kubernetes import client
from op_helpers import REPO, example, merge

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
    assert created["spec"]["transform"]["dbt"] == {"target": "dev", "select": ["+fact_events"]}
    assert created["spec"]["networkPolicy"] == {"enabled": True}


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
    ({"aws": {"roleArn": "not-an-arn"}}, "spec.aws.roleArn"),
])
def test_invalid_specs_are_refused_with_the_rule_message(custom: client.CustomObjectsApi,
                                                         changes: dict[str, Any], expected: str) -> None:
    assert expected in _refused(custom, changes)


def test_transition_rules_on_update(custom: client.CustomObjectsApi) -> None:
    doc = example()
    doc["metadata"] = {"name": "immutable", "namespace": NS}
    custom.create_namespaced_custom_object("eventpipe.io", "v1alpha1", NS, "eventpipelines", doc)
    try:
        with pytest.raises(client.ApiException) as err:
            custom.patch_namespaced_custom_object("eventpipe.io", "v1alpha1", NS, "eventpipelines", "immutable",
                                                  {"spec": {"iceberg": {"namespace": "other"}}})
        assert "iceberg.namespace is immutable" in json.loads(err.value.body)["message"]
    finally:
        custom.delete_namespaced_custom_object("eventpipe.io", "v1alpha1", NS, "eventpipelines", "immutable")


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
    columns = [c.name for c in crd.spec.versions[0].additional_printer_columns]
    assert columns == ["Phase", "Ready", "Shards", "Consumers", "Lag", "Age"]
