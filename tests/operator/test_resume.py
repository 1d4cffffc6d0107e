"""Operator restarts: changes made while no operator ran are applied when one starts again (kopf resume and
update causes), the monitor loop comes back, and a stopped operator leaves the peering object."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.helpers.kubecluster import KubeCluster
from tests.helpers.op_helpers import ensure_namespace, example, merge, run_operator, wait_for

G, V, P = "eventpipe.io", "v1alpha1", "eventpipelines"
NS = "resume"


@pytest.fixture(scope="module", autouse=True)
def namespace(core: client.CoreV1Api) -> None:
    ensure_namespace(core, NS)


def test_changes_while_stopped_are_applied_on_restart(cluster: KubeCluster, custom: client.CustomObjectsApi,
                                                      apps: client.AppsV1Api, kinesis_endpoint: str) -> None:
    doc = example()
    doc["metadata"] = {"name": "restart", "namespace": NS}
    doc["spec"] = merge(doc["spec"], {"aws": {"kinesisEndpointUrl": kinesis_endpoint, "region": "us-east-1"},
                                      "stream": {"name": "restart-events", "shards": 1},
                                      "iceberg": {"createTables": False}, "consumer": {"minReplicas": 1}})

    def replicas() -> Any:
        return apps.read_namespaced_deployment("restart-ingest", NS).spec.replicas

    def monitored(generation: int) -> Any:
        obj = custom.get_namespaced_custom_object(G, V, NS, P, "restart")
        status = obj.get("status") or {}
        return obj if status.get("observedGeneration") == generation and "lagSource" in (
            status.get("consumers") or {}) else None

    with run_operator(custom):
        custom.create_namespaced_custom_object(G, V, NS, P, doc)
        wait_for("the ingest Deployment", lambda: replicas() == 2)
        wait_for("reconciled and monitored", lambda: monitored(1))  # stop only once both have run
    peering = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", "eventpipe-tests")
    assert not (peering.get("status") or {}), "a stopped operator must leave the peering object"

    custom.patch_namespaced_custom_object(G, V, NS, P, "restart", {"spec": {"ingest": {"replicas": 4}}})
    assert replicas() == 2  # nobody is running

    with run_operator(custom):
        wait_for("the change applied after the restart", lambda: replicas() == 4)
        obj = wait_for("reconciled and monitored again", lambda: monitored(2))
        assert obj["status"]["stream"]["openShards"] == 1
        peering = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", "eventpipe-tests")
        assert len(peering.get("status") or {}) == 1
        custom.delete_namespaced_custom_object(G, V, NS, P, "restart")
        wait_for("the pipeline gone", lambda: not custom.list_namespaced_custom_object(
            G, V, NS, P, field_selector="metadata.name=restart")["items"])


def test_two_replicas_one_active_then_fail_over(cluster: KubeCluster, custom: client.CustomObjectsApi,
                                                apps: client.AppsV1Api, kinesis_endpoint: str) -> None:
    """Two operators peer: both announce themselves in the peering object (with their priorities), and when the
    higher-priority one stops, the other goes on and handles the next change."""
    doc = example()
    doc["metadata"] = {"name": "peers", "namespace": NS}
    doc["spec"] = merge(doc["spec"], {"aws": {"kinesisEndpointUrl": kinesis_endpoint, "region": "us-east-1"},
                                      "stream": {"name": "peers-events", "shards": 1},
                                      "iceberg": {"createTables": False}})

    def replicas() -> Any:
        return apps.read_namespaced_deployment("peers-ingest", NS).spec.replicas

    def peers() -> dict[str, Any]:
        found = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", "eventpipe-tests")
        return dict(found.get("status") or {})

    def monitored() -> Any:
        status = custom.get_namespaced_custom_object(G, V, NS, P, "peers").get("status") or {}
        return status.get("observedGeneration") == 1 and "lagSource" in (status.get("consumers") or {})

    with run_operator(custom, priority=0):
        with run_operator(custom, priority=100):
            wait_for("two peers", lambda: len(peers()) == 2)
            assert sorted(p["priority"] for p in peers().values()) == [0, 100]
            custom.create_namespaced_custom_object(G, V, NS, P, doc)
            wait_for("the ingest Deployment", lambda: replicas() == 2)
            wait_for("reconciled and monitored", monitored)
        wait_for("one peer left", lambda: len(peers()) == 1)
        custom.patch_namespaced_custom_object(G, V, NS, P, "peers", {"spec": {"ingest": {"replicas": 3}}})
        wait_for("the standby took over", lambda: replicas() == 3)
        custom.delete_namespaced_custom_object(G, V, NS, P, "peers")
        wait_for("the pipeline gone", lambda: not custom.list_namespaced_custom_object(
            G, V, NS, P, field_selector="metadata.name=peers")["items"])
