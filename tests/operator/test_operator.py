"""The operator end to end against the real API server: the example pipeline from create to delete.

There is no controller-manager (no Deployment controller, no garbage collector) and no kubelet: where a test
needs what those would write (a Deployment's available replicas, a running consumer pod's IP), it writes that
status itself through the API's status subresource, exactly as those controllers would, and says so.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from kubernetes import client
from pyiceberg.catalog import load_catalog

from tests.helpers.kubecluster import KubeCluster
from tests.helpers.op_helpers import OPERATOR_METRICS_PORT, ensure_namespace, example, merge, wait_for
from tests.helpers.servers import free_port

G, V, P = "eventpipe.io", "v1alpha1", "eventpipelines"
NS = "shop"
LAG_METRIC = "eventpipe_consumer_lag_seconds"


class LagServer:
    """A consumer's /metrics on 127.0.0.1 whose lag (seconds) the test sets."""

    def __init__(self) -> None:
        self.seconds = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                text = (f"# TYPE {LAG_METRIC} gauge\n"
                        f'{LAG_METRIC}{{shard="shardId-000000000000"}} {outer.seconds}\n')
                payload = text.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def lag_server() -> Iterator[LagServer]:
    server = LagServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def catalog_props(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("catalog")
    (tmp / "warehouse").mkdir()
    return {"type": "sql", "uri": f"sqlite:///{tmp / 'catalog.db'}", "warehouse": (tmp / "warehouse").as_uri()}


def pipeline_doc(name: str, kinesis_endpoint: str, catalog: dict[str, str], **changes: Any) -> dict[str, Any]:
    doc = example()
    doc["metadata"] = {"name": name, "namespace": NS}
    doc["spec"] = merge(doc["spec"], {
        "aws": {"kinesisEndpointUrl": kinesis_endpoint, "region": "us-east-1"},
        "stream": {"name": f"{name}-events", "shards": 4},
        "iceberg": {"catalogProperties": catalog, "namespace": name.replace("-", "_")},
    })
    doc["spec"] = merge(doc["spec"], changes)
    return doc


def get(custom: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = custom.get_namespaced_custom_object(G, V, NS, P, name)
    return obj


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == ctype:
            return dict(cond)
    return None


def condition_is(custom: client.CustomObjectsApi, name: str, ctype: str, status: str) -> Any:
    obj = get(custom, name)
    cond = condition(obj, ctype)
    return obj if cond and cond["status"] == status else None


def set_deployment_available(apps: client.AppsV1Api, name: str) -> None:
    """What the Deployment controller would write once the pods are up (no controller-manager runs here)."""
    dep = apps.read_namespaced_deployment(name, NS)
    replicas = dep.spec.replicas
    apps.patch_namespaced_deployment_status(name, NS, {"status": {
        "observedGeneration": dep.metadata.generation, "replicas": replicas, "readyReplicas": replicas,
        "availableReplicas": replicas, "updatedReplicas": replicas}})


def events_for(core: client.CoreV1Api, name: str) -> list[client.CoreV1Event]:
    items: list[client.CoreV1Event] = core.list_namespaced_event(
        NS, field_selector=f"involvedObject.name={name},involvedObject.kind=EventPipeline").items
    return items


@pytest.fixture(scope="module", autouse=True)
def namespace(core: client.CoreV1Api) -> None:
    ensure_namespace(core, NS)


def test_example_pipeline_lifecycle(operator: Any, cluster: KubeCluster, custom: client.CustomObjectsApi,
                                    core: client.CoreV1Api, apps: client.AppsV1Api, kinesis_endpoint: str,
                                    catalog_props: dict[str, str], lag_server: LagServer) -> None:
    name = "shop"
    doc = pipeline_doc(name, kinesis_endpoint, catalog_props,
                       consumer={"metricsPort": lag_server.port, "scaleDownStabilizationSeconds": 2})
    created = custom.create_namespaced_custom_object(G, V, NS, P, doc)
    uid = created["metadata"]["uid"]

    # --- children appear, each owned by the pipeline, with the specs the builders promise
    def children() -> Any:
        found = {
            "cm": core.read_namespaced_config_map(f"{name}-config", NS),
            "dag": core.read_namespaced_config_map(f"{name}-dag", NS),
            "ingest": apps.read_namespaced_deployment(f"{name}-ingest", NS),
            "consumer": apps.read_namespaced_deployment(f"{name}-consumer", NS),
            "svc": core.read_namespaced_service(f"{name}-ingest", NS),
            "pdb": client.PolicyV1Api(core.api_client).read_namespaced_pod_disruption_budget(f"{name}-ingest", NS),
            "sa": core.read_namespaced_service_account(f"{name}-consumer", NS),
            "transform_sa": core.read_namespaced_service_account(f"{name}-transform", NS),
            "netpol": client.NetworkingV1Api(core.api_client).read_namespaced_network_policy(f"{name}-ingest", NS),
        }
        return found

    found = wait_for("the pipeline's children", children)
    for obj in found.values():
        (owner,) = obj.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid, owner.controller) == ("EventPipeline", name, uid, True)
        assert "eventpipe-operator" in {m.manager for m in obj.metadata.managed_fields}
    assert found["ingest"].spec.replicas == 2
    assert found["consumer"].spec.replicas == 1  # minReplicas until the scaler decides
    pod = found["ingest"].spec.template.spec
    assert pod.containers[0].security_context.read_only_root_filesystem is True
    assert pod.containers[0].readiness_probe.http_get.path == "/api/v1/ready"
    assert found["cm"].data["EVENTPIPE_KINESIS_ENDPOINT_URL"] == kinesis_endpoint
    assert json.loads(found["cm"].data["schema.json"]) == doc["spec"]["schema"]
    assert found["sa"].metadata.annotations == {"eks.amazonaws.com/role-arn": doc["spec"]["aws"]["consumerRoleArn"]}
    dag = json.loads(found["dag"].data["dag.json"])
    assert dag["dbt"]["target"] == "duckdb"
    # The DAG's task pods run as <name>-transform (its IAM role by IRSA), with the operator's analytics image.
    assert found["transform_sa"].metadata.annotations == {
        "eks.amazonaws.com/role-arn": doc["spec"]["aws"]["transformRoleArn"]}
    assert found["transform_sa"].automount_service_account_token is False
    assert dag["pods"]["serviceAccount"] == f"{name}-transform"
    assert dag["pods"]["image"] == os.environ["EVENTPIPE_OPERATOR_ANALYTICS_IMAGE"]
    assert dag["pods"]["jobStoreDsnSecretRef"] == doc["spec"]["jobStore"]["dsnSecretRef"]
    assert found["cm"].data["EVENTPIPE_CONSUMER_LEASE_TABLE"] == f"eventpipe_leases_{NS}_{name}"

    # --- stream and tables provisioned; status says so; no pods yet, so not Ready
    obj = wait_for("StreamReady and TableReady", lambda: (lambda o: o if (
        (condition(o, "StreamReady") or {}).get("status") == "True"
        and (condition(o, "TableReady") or {}).get("status") == "True") else None)(get(custom, name)))
    assert obj["status"]["stream"]["openShards"] == 4 and obj["status"]["stream"]["createdByOperator"] is True
    kinesis = boto3.client("kinesis", endpoint_url=kinesis_endpoint, region_name="us-east-1")
    summary = kinesis.describe_stream_summary(StreamName=f"{name}-events")["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE" and summary["OpenShardCount"] == 4
    catalog = load_catalog("eventpipe", **catalog_props)
    assert sorted(t[1] for t in catalog.list_tables("shop")) == ["raw_events", "raw_events_rejected"]
    assert obj["status"]["observedGeneration"] == 1
    assert obj["status"]["phase"] == "Provisioning"
    assert condition(obj, "IngestAvailable")["status"] == "False"  # type: ignore[index]
    assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
    assert condition(obj, "DagPublished")["status"] == "True"  # type: ignore[index]
    assert condition(obj, "ChildrenOwned")["status"] == "True"  # type: ignore[index]
    # What the operator created is recorded: the stream's ARN and each table's UUID in its catalog.
    assert obj["status"]["stream"]["arn"] == summary["StreamARN"]
    assert obj["status"]["tables"]["catalog"] == "eventpipe"
    assert obj["status"]["tables"]["createdTables"] == [
        {"name": t, "uuid": str(catalog.load_table(t).metadata.table_uuid)}
        for t in ("shop.raw_events", "shop.raw_events_rejected")]
    # The finalizer is only there while something outside Kubernetes must be cleaned: Retain needs none.
    assert "eventpipe.io/cleanup" not in (obj["metadata"].get("finalizers") or [])

    # --- the Deployments become available -> Ready, and `kubectl wait` sees it
    set_deployment_available(apps, f"{name}-ingest")
    set_deployment_available(apps, f"{name}-consumer")
    cluster.kubectl("wait", "--for=condition=Ready", f"eventpipeline/{name}", "-n", NS, "--timeout=60s")
    obj = get(custom, name)
    assert obj["status"]["phase"] == "Running"
    table = cluster.kubectl("get", "epl", name, "-n", NS).stdout
    assert "Running" in table and "True" in table

    # --- the ingest pods go away (as the Deployment controller would report it) -> Degraded, then back
    apps.patch_namespaced_deployment_status(f"{name}-ingest", NS, {"status": {"availableReplicas": 0,
                                                                              "readyReplicas": 0}})
    obj = wait_for("Degraded", lambda: (lambda o: o if o["status"].get("phase") == "Degraded" else None)(
        get(custom, name)))
    assert condition(obj, "Ready")["reason"] == "MinimumReplicasUnavailable"  # type: ignore[index]
    wait_for("a PhaseDegraded event", lambda: [e for e in events_for(core, name) if e.reason == "PhaseDegraded"])
    set_deployment_available(apps, f"{name}-ingest")
    cluster.kubectl("wait", "--for=condition=Ready", f"eventpipeline/{name}", "-n", NS, "--timeout=60s")
    assert get(custom, name)["status"]["phase"] == "Running"

    # --- lag scaling: a running consumer pod reports 5 minutes of lag (target 60 s) -> 4 consumers (max,
    # and the stream has 4 open shards); then no lag -> back to minReplicas after the stabilization window.
    lag_server.seconds = 300
    core.create_namespaced_pod(NS, {
        "metadata": {"name": f"{name}-consumer-0", "labels": {"app.kubernetes.io/instance": name,
                                                              "app.kubernetes.io/component": "consumer"}},
        "spec": {"serviceAccountName": f"{name}-consumer",
                 "containers": [{"name": "consumer", "image": "ghcr.io/eventpipe/services:test"}]}})
    # What the kubelet would report for a running pod: its IP (this machine: the test's metrics server).
    core.patch_namespaced_pod_status(f"{name}-consumer-0", NS, {"status": {
        "phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}})
    wait_for("4 consumers", lambda: apps.read_namespaced_deployment(f"{name}-consumer", NS).spec.replicas == 4)
    obj = wait_for("lag in status", lambda: (lambda o: o if (o["status"].get("consumers") or {}).get(
        "lagSeconds") == 300.0 else None)(get(custom, name)))
    scaled = [e for e in events_for(core, name) if e.reason == "ConsumersScaled"]
    assert any("1 -> 4 (LagHigh" in e.message for e in scaled)
    lag_server.seconds = 0
    wait_for("back to 1 consumer", lambda: apps.read_namespaced_deployment(f"{name}-consumer", NS).spec.replicas == 1,
             timeout=30)
    assert any("4 -> 1 (LagLow" in e.message for e in events_for(core, name) if e.reason == "ConsumersScaled")

    # --- a spec change updates the children and rolls the pods (config hash); monitoring CRDs appear
    cluster.kubectl("apply", "--server-side", "-f", str(Path(__file__).parent / "monitoring-crds.yaml"))
    for crd in ("servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com",
                "podmonitors.monitoring.coreos.com"):
        cluster.wait_crd_established(crd)
    old_hash = found["ingest"].spec.template.metadata.annotations["eventpipe.io/config-hash"]
    schema = dict(doc["spec"]["schema"])
    schema["event_types"] = [*schema["event_types"], "refund"]
    custom.patch_namespaced_custom_object(G, V, NS, P, name, {"spec": {
        "ingest": {"replicas": 3}, "schema": schema, "transform": {"enabled": False}}})
    ingest = wait_for("3 ingest replicas", lambda: (lambda d: d if d.spec.replicas == 3 else None)(
        apps.read_namespaced_deployment(f"{name}-ingest", NS)))
    assert ingest.spec.template.metadata.annotations["eventpipe.io/config-hash"] != old_hash
    cm = core.read_namespaced_config_map(f"{name}-config", NS)
    assert "refund" in json.loads(cm.data["schema.json"])["event_types"]
    wait_for("the DAG ConfigMap pruned", lambda: not core.list_namespaced_config_map(
        NS, field_selector=f"metadata.name={name}-dag").items)
    wait_for("the transform ServiceAccount pruned", lambda: not core.list_namespaced_service_account(
        NS, field_selector=f"metadata.name={name}-transform").items)
    monitors = client.CustomObjectsApi(core.api_client)
    sm = wait_for("the ServiceMonitor", lambda: monitors.get_namespaced_custom_object(
        "monitoring.coreos.com", "v1", NS, "servicemonitors", name))
    assert sm["metadata"]["ownerReferences"][0]["uid"] == uid
    assert monitors.get_namespaced_custom_object("monitoring.coreos.com", "v1", NS, "prometheusrules", name)
    obj = wait_for("observedGeneration 2", lambda: (lambda o: o if o["status"].get("observedGeneration") == 2
                                                    else None)(get(custom, name)))
    assert condition(obj, "DagPublished")["reason"] == "NotRequested"  # type: ignore[index]

    # --- delete with deletionPolicy Retain: gone at once; the stream and tables stay
    custom.delete_namespaced_custom_object(G, V, NS, P, name)
    wait_for("the pipeline gone", lambda: not custom.list_namespaced_custom_object(
        G, V, NS, P, field_selector=f"metadata.name={name}")["items"])
    assert kinesis.describe_stream_summary(StreamName=f"{name}-events")["StreamDescriptionSummary"]
    assert sorted(t[1] for t in catalog.list_tables("shop")) == ["raw_events", "raw_events_rejected"]
    # No garbage collector runs here; in a cluster it deletes the children through these owner references.
    assert apps.read_namespaced_deployment(f"{name}-ingest", NS).metadata.owner_references[0].uid == uid


def test_delete_policy_removes_stream_and_tables(operator: Any, custom: client.CustomObjectsApi,
                                                 apps: client.AppsV1Api, kinesis_endpoint: str,
                                                 catalog_props: dict[str, str]) -> None:
    name = "shop-delete"
    doc = pipeline_doc(name, kinesis_endpoint, catalog_props, deletionPolicy="Delete")
    custom.create_namespaced_custom_object(G, V, NS, P, doc)
    obj = wait_for("the cleanup finalizer", lambda: (lambda o: o if "eventpipe.io/cleanup" in (
        o["metadata"].get("finalizers") or []) and (o.get("status") or {}).get("tables") else None)(get(custom, name)))
    assert obj["status"]["tables"]["createdByOperator"] is True
    kinesis = boto3.client("kinesis", endpoint_url=kinesis_endpoint, region_name="us-east-1")
    assert kinesis.describe_stream_summary(StreamName=f"{name}-events")
    wait_for("the consumer Deployment", lambda: apps.read_namespaced_deployment(f"{name}-consumer", NS))
    custom.delete_namespaced_custom_object(G, V, NS, P, name)
    wait_for("the pipeline gone", lambda: not custom.list_namespaced_custom_object(
        G, V, NS, P, field_selector=f"metadata.name={name}")["items"])
    names = kinesis.list_streams()["StreamNames"]
    assert f"{name}-events" not in names
    catalog = load_catalog("eventpipe", **catalog_props)
    assert ("shop_delete",) not in catalog.list_namespaces()
    # The consumers were scaled to zero and maintenance suspended before anything was deleted (no garbage
    # collector runs here, so the children are still there to show it).
    assert apps.read_namespaced_deployment(f"{name}-consumer", NS).spec.replicas == 0
    cron = client.BatchV1Api(apps.api_client).read_namespaced_cron_job(f"{name}-maintenance", NS)
    assert cron.spec.suspend is True


def test_delete_policy_keeps_what_it_did_not_create(operator: Any, custom: client.CustomObjectsApi,
                                                    kinesis_endpoint: str, catalog_props: dict[str, str]) -> None:
    """A table replaced by someone else after the operator created it (a new UUID) is not dropped; an
    existing stream the operator did not create is not deleted; the pipeline still goes. Deleted as soon as
    status records the tables: the finalizer must already be there (it once came one event later, and a
    deletion in between skipped the cleanup)."""
    from eventpipe_common import tables as table_defs

    name = "shop-foreign"
    kinesis = boto3.client("kinesis", endpoint_url=kinesis_endpoint, region_name="us-east-1")
    kinesis.create_stream(StreamName=f"{name}-events", ShardCount=1)
    wait_for("the foreign stream ACTIVE", lambda: kinesis.describe_stream_summary(StreamName=f"{name}-events")[
        "StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE")
    doc = pipeline_doc(name, kinesis_endpoint, catalog_props, deletionPolicy="Delete")
    custom.create_namespaced_custom_object(G, V, NS, P, doc)
    obj = wait_for("tables recorded", lambda: (lambda o: o if ((o.get("status") or {}).get("tables") or {}).get(
        "createdTables") else None)(get(custom, name)))
    # The finalizer came before anything was provisioned: a deletion from here on cannot skip the cleanup.
    assert "eventpipe.io/cleanup" in (obj["metadata"].get("finalizers") or [])
    assert obj["status"]["stream"]["createdByOperator"] is False
    catalog = load_catalog("eventpipe", **catalog_props)
    catalog.drop_table("shop_foreign.raw_events_rejected")
    catalog.create_table("shop_foreign.raw_events_rejected", schema=table_defs.raw_events_rejected_schema())
    custom.delete_namespaced_custom_object(G, V, NS, P, name)
    wait_for("the pipeline gone", lambda: not custom.list_namespaced_custom_object(
        G, V, NS, P, field_selector=f"metadata.name={name}")["items"])
    assert sorted(t[1] for t in catalog.list_tables("shop_foreign")) == ["raw_events_rejected"]
    assert kinesis.describe_stream_summary(StreamName=f"{name}-events")["StreamDescriptionSummary"]


def test_existing_object_of_someone_else_is_not_taken_over(operator: Any, custom: client.CustomObjectsApi,
                                                           apps: client.AppsV1Api, kinesis_endpoint: str,
                                                           catalog_props: dict[str, str]) -> None:
    """Server-side apply with force would take fields over: an existing <name>-ingest Deployment that is not
    the pipeline's is left exactly as it was, and ChildrenOwned=False says so."""
    name = "shop-taken"
    theirs = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{name}-ingest", "namespace": NS},
              "spec": {"replicas": 7, "selector": {"matchLabels": {"app": "theirs"}},
                       "template": {"metadata": {"labels": {"app": "theirs"}},
                                    "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}}
    before = apps.create_namespaced_deployment(NS, theirs)
    custom.create_namespaced_custom_object(G, V, NS, P, pipeline_doc(name, kinesis_endpoint, catalog_props))
    obj = wait_for("ChildrenOwned False", lambda: condition_is(custom, name, "ChildrenOwned", "False"))
    assert condition(obj, "ChildrenOwned")["reason"] == "NotOwned"  # type: ignore[index]
    assert f"Deployment/{name}-ingest" in condition(obj, "ChildrenOwned")["message"]  # type: ignore[index]
    assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
    after = apps.read_namespaced_deployment(f"{name}-ingest", NS)
    assert after.metadata.resource_version == before.metadata.resource_version
    assert after.spec.replicas == 7 and not after.metadata.owner_references
    assert "eventpipe-operator" not in {m.manager for m in after.metadata.managed_fields}
    assert apps.read_namespaced_deployment(f"{name}-consumer", NS).metadata.owner_references  # the rest applied
    custom.delete_namespaced_custom_object(G, V, NS, P, name)
    apps.delete_namespaced_deployment(f"{name}-ingest", NS)


def test_disallowed_catalog_url_is_refused_before_anything_runs(operator: Any, custom: client.CustomObjectsApi,
                                                                apps: client.AppsV1Api, kinesis_endpoint: str,
                                                                catalog_props: dict[str, str]) -> None:
    """A spec cannot make the operator call any URL with its credentials: a catalog URI outside the allowed
    patterns is SpecValid=False and nothing is applied."""
    name = "shop-ssrf"
    props = {**catalog_props, "type": "rest", "uri": "http://169.254.169.254/latest/meta-data"}
    custom.create_namespaced_custom_object(G, V, NS, P, pipeline_doc(name, kinesis_endpoint, props))
    obj = wait_for("SpecValid False", lambda: condition_is(custom, name, "SpecValid", "False"))
    assert "not allowed by the operator's allowedCatalogUris" in condition(obj, "SpecValid")["message"]  # type: ignore[index]
    assert not apps.list_namespaced_deployment(NS, label_selector=f"eventpipe.io/pipeline={name}").items
    custom.delete_namespaced_custom_object(G, V, NS, P, name)


def test_invalid_schema_is_reported_as_a_condition(operator: Any, custom: client.CustomObjectsApi,
                                                   core: client.CoreV1Api, kinesis_endpoint: str,
                                                   catalog_props: dict[str, str]) -> None:
    name = "shop-bad-schema"
    schema = example()["spec"]["schema"]
    schema["fields"][7]["pattern"] = "^[unclosed"
    doc = pipeline_doc(name, kinesis_endpoint, catalog_props, schema=schema)
    custom.create_namespaced_custom_object(G, V, NS, P, doc)
    obj = wait_for("SpecValid False", lambda: condition_is(custom, name, "SpecValid", "False"))
    assert obj["status"]["phase"] == "Failed"
    assert "spec.schema.fields[7].pattern: not a valid regular expression" in condition(obj, "SpecValid")["message"]  # type: ignore[index]
    assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
    assert not core.list_namespaced_config_map(NS, field_selector=f"metadata.name={name}-config").items
    wait_for("a Warning event", lambda: [e for e in events_for(core, name) if e.type == "Warning"])
    custom.delete_namespaced_custom_object(G, V, NS, P, name)


def test_operator_metrics_and_peering(operator: Any, custom: client.CustomObjectsApi) -> None:
    text = urllib.request.urlopen(f"http://127.0.0.1:{OPERATOR_METRICS_PORT}/metrics", timeout=5).read().decode()
    reconciles = [line for line in text.splitlines()
                  if line.startswith("eventpipe_operator_reconciles_total{") and 'result="ok"' in line]
    assert reconciles and sum(float(line.rsplit(" ", 1)[1]) for line in reconciles) >= 1
    assert "eventpipe_operator_reconcile_duration_seconds_bucket" in text
    assert "eventpipe_operator_consumer_scalings_total" in text

    # Per-pipeline series are labelled pipeline_namespace (not namespace, the scrape target's), and a deleted
    # pipeline's series go away (the lifecycle test deleted "shop", whose series it had).
    def series_of_shop() -> list[str]:
        body = urllib.request.urlopen(f"http://127.0.0.1:{OPERATOR_METRICS_PORT}/metrics", timeout=5).read().decode()
        return [line for line in body.splitlines() if line.startswith(("eventpipe_operator_pipeline_ready{",
                                                                        "eventpipe_operator_consumer_lag_seconds{"))
                and 'pipeline="shop"' in line]

    wait_for("the deleted pipeline's series removed", lambda: not series_of_shop())
    assert 'namespace="' not in text.replace('pipeline_namespace="', "")
    from eventpipe_operator import metrics

    assert metrics.PIPELINES._labelnames == metrics.LAG._labelnames == ("pipeline_namespace", "pipeline")
    peering = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", "eventpipe-tests")
    assert len(peering.get("status") or {}) == 1  # this operator announced itself to its peers
