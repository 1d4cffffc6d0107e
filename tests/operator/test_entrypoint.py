"""The image's entry point, run exactly as the Helm chart runs it, reconciles a pipeline on the real API server.

The command, arguments and environment come from the chart's rendered Deployment (`helm template`), once with
`replicaCount: 1` (the chart adds `--standalone`) and once with the default two replicas (peering through the
ClusterKopfPeering the chart creates). Only what cannot be the same outside a pod is changed, and each change is
named: the interpreter is this venv's python, and the 0.0.0.0 binds of the pod become 127.0.0.1 on free ports.
The process is a real `python -m eventpipe_operator` child, logged in through KUBECONFIG, stopped by its PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from test_operator import NS, G, P, condition, pipeline_doc

from tests.helpers.kubecluster import KubeCluster
from tests.helpers.op_helpers import CHART, ensure_namespace, wait_for
from tests.helpers.servers import free_port

V_ = "v1alpha1"


# What the operator may call in these tests (the tests' SQLite catalogs, kinesalite), set as chart values.
ALLOWED = ["--set-json", 'operator.allowedCatalogUris=["sqlite:///.*"]',
           "--set-json", r'operator.allowedKinesisEndpoints=["http://127\\.0\\.0\\.1:[0-9]+"]']


def chart_container(cluster: KubeCluster, *sets: str) -> dict[str, Any]:
    out = cluster.helm("template", "ep", str(CHART), "-n", "eventpipe-system", *ALLOWED,
                       *[f"--set={s}" for s in sets])
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def local_command(container: dict[str, Any], liveness_port: int, metrics_port: int) -> tuple[list[str], dict[str, str]]:
    """The chart's command line and environment, with the pod-only parts made local (see the module doc)."""
    command = list(container["command"])
    assert command[:3] == ["python", "-m", "eventpipe_operator"], command
    args = [a.replace("0.0.0.0:8081", f"127.0.0.1:{liveness_port}") for a in container.get("args", [])]
    env = {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}
    assert env.pop("EVENTPIPE_OPERATOR_METRICS_HOST") == "0.0.0.0"
    env["EVENTPIPE_OPERATOR_METRICS_HOST"] = "127.0.0.1"
    env["EVENTPIPE_OPERATOR_METRICS_PORT"] = str(metrics_port)
    env["EVENTPIPE_OPERATOR_MONITOR_INTERVAL_SECONDS"] = "1"
    return [sys.executable, *command[1:], *args], env


class EntryPoint:
    """`python -m eventpipe_operator ...` as a child process, its output in a file for the failure message."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        full_env = {**os.environ, **env}
        self.fh = open(log, "w", encoding="utf-8")  # closed in stop()
        self.proc = subprocess.Popen(argv, env=full_env, stdout=self.fh, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        self.fh.close()
        return code


@pytest.fixture(scope="module", autouse=True)
def namespace(core: client.CoreV1Api) -> None:
    ensure_namespace(core, NS)


def run_and_reconcile(cluster: KubeCluster, custom: client.CustomObjectsApi, apps: client.AppsV1Api,
                      tmp_path: Path, kinesis_endpoint: str, name: str, *sets: str) -> list[str]:
    liveness_port, metrics_port = free_port(), free_port()
    container = chart_container(cluster, *sets)
    argv, env = local_command(container, liveness_port, metrics_port)
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    catalog = {"type": "sql", "uri": f"sqlite:///{tmp_path / 'catalog.db'}", "warehouse": warehouse.as_uri()}
    entry = EntryPoint(argv, env, tmp_path / "operator.log")
    try:
        custom.create_namespaced_custom_object(G, V_, NS, P, pipeline_doc(name, kinesis_endpoint, catalog))

        def reconciled() -> Any:
            if entry.proc.poll() is not None:
                raise AssertionError(f"the operator exited with {entry.proc.returncode}:\n{entry.output()}")
            obj = custom.get_namespaced_custom_object(G, V_, NS, P, name)
            cond = condition(obj, "SpecValid")
            return obj if cond and cond["status"] == "True" else None

        try:
            wait_for(f"{name} reconciled by the entry point", reconciled, timeout=90)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- operator output ---\n{entry.output()}") from exc
        assert apps.read_namespaced_deployment(f"{name}-ingest", NS).metadata.owner_references[0].name == name
        with urllib.request.urlopen(f"http://127.0.0.1:{liveness_port}/healthz", timeout=10) as resp:
            assert resp.status == 200
    finally:
        custom.delete_namespaced_custom_object(G, V_, NS, P, name)
        code = entry.stop()
    assert code == 0, entry.output()
    return argv


def test_standalone_entry_point_reconciles(cluster: KubeCluster, custom: client.CustomObjectsApi,
                                           apps: client.AppsV1Api, tmp_path: Path, kinesis_endpoint: str) -> None:
    """replicaCount 1: the chart runs --standalone; no peering object is needed or read."""
    argv = run_and_reconcile(cluster, custom, apps, tmp_path, kinesis_endpoint, "entry-standalone",
                             "replicaCount=1", "peering.name=entry-standalone-nonexistent",
                             f"watchNamespaces={{{NS}}}")
    assert "--standalone" in argv and f"--namespace={NS}" in argv


def test_peering_entry_point_reconciles(cluster: KubeCluster, custom: client.CustomObjectsApi,
                                        apps: client.AppsV1Api, tmp_path: Path, kinesis_endpoint: str) -> None:
    """The default two replicas, cluster-wide: peering through the ClusterKopfPeering the chart creates."""
    peering = "entry-peering"
    try:
        custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", {
            "apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": peering}})
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    argv = run_and_reconcile(cluster, custom, apps, tmp_path, kinesis_endpoint, "entry-peering",
                             f"peering.name={peering}", "rbac.clusterWide=true")
    assert "--standalone" not in argv and not [a for a in argv if a.startswith("--namespace")]
