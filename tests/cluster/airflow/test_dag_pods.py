"""One DAG run whose dbt and GX tasks run as real KubernetesPodOperator pods on the node (scripts/cluster.sh):
the analytics image imported into the node's containerd, the pipeline's settings ConfigMap as envFrom, its
service account, the run's snapshot in the pod's environment.

Local-node choice: the DuckDB target does not carry between pods (each has its own emptyDir), so here every
step's pod mounts one host folder as its state dir (EVENTPIPE_DAGS_STATE_HOST_PATH, hostPath, at the same path
as on the host, where the test commits the snapshot to the SQLite catalog the pods read). A real cluster leaves
it unset and uses the `snowflake` target. Airflow itself runs here, in this process (`dag.test()`), talking to
the node's kube-apiserver through the `kubernetes_default` connection (conftest.py).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

K8S_NS = "eventpipe-dags"  # not the pipeline tests' `shop` namespace, which they delete when they finish
STEPS = ("dbt_build", "gx_staging", "gx_marts")


@dataclass
class Kube:
    node: Any

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(["kubectl", *args], env=self.node.env, capture_output=True, text=True, input=stdin,
                             timeout=120, check=False)
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {out.stdout}\n{out.stderr}")
        return out

    def scheduled_pods(self) -> dict[str, str]:
        """Pods the scheduler placed in the namespace (from its events: succeeded pods are deleted), by name."""
        events = json.loads(self.kubectl("get", "events", "-n", K8S_NS, "-o", "json").stdout)["items"]
        return {e["involvedObject"]["name"]: e["message"] for e in events
                if e["reason"] == "Scheduled" and e["involvedObject"]["kind"] == "Pod"}


def analytics_image(repo: Path) -> str:
    """The analytics image's tag in the node's containerd: its input hash (scripts/images.sh prints the archive,
    cached; scripts/cluster.sh imported it under that name)."""
    out = subprocess.run([str(repo / "scripts" / "images.sh"), "build", "analytics"], capture_output=True,
                         text=True, check=True, timeout=3600)
    name, archive = out.stdout.split()[-2:]
    return f"ghcr.io/eventpipe/{name}:{Path(archive).stem.removeprefix(name + '-')}"


@pytest.fixture(scope="module")
def kube(node: Any) -> Iterator[Kube]:
    """The pipeline's namespace on the node: its settings ConfigMap and the `<pipeline>-transform` account."""
    kube = Kube(node)
    manifests = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": K8S_NS}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "shop-transform", "namespace": K8S_NS}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shop-config", "namespace": K8S_NS},
         "data": {"EVENTPIPE_PIPELINE_NAME": "shop", "EVENTPIPE_NAMESPACE": "shop", "EVENTPIPE_LOG_LEVEL": "INFO"}},
    ]
    for manifest in manifests:
        kube.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    yield kube
    kube.kubectl("delete", "namespace", K8S_NS, "--wait=false", check=False)


def analytics_python(repo: Path) -> str:
    return str(repo / ".venvs" / "analytics" / "bin" / "python")


def commit_snapshot(repo: Path, state: Path, count: int, seed: int) -> str:
    """A consumer-style commit (Rust core + pyiceberg, tests/helpers/write_snapshot.py) into the shared folder,
    which the pods (UID 10001) then read and write."""
    out = subprocess.run([analytics_python(repo), "-m", "tests.helpers.write_snapshot", str(state), str(count),
                          str(seed)], check=True, capture_output=True, text=True, timeout=300, cwd=repo)
    subprocess.run(["chmod", "-R", "a+rwX", str(state)], check=True)
    return out.stdout.strip().splitlines()[-1]


def definition(image: str) -> dict[str, Any]:
    """The dag.json the operator writes for pipeline `shop`, with its `pods` block: the imported image, never
    pulled, the pipeline's service account, small requests for a shared machine."""
    return {
        "apiVersion": "eventpipe.io/v1alpha1", "kind": "PipelineDag", "pipeline": "shop", "k8sNamespace": K8S_NS,
        "enabled": True, "trigger": "on-snapshot", "schedule": None, "settingsConfigMap": "shop-config",
        "catalog": {"name": "eventpipe", "namespace": "shop"},
        "tables": {"rawEvents": "shop.raw_events", "rejected": "shop.raw_events_rejected"},
        "dbt": {"target": "duckdb", "select": []}, "gx": {"suites": ["staging", "marts"]},
        "alerts": [{"type": "log", "severity": "warning"}],
        "pods": {"image": image, "imagePullPolicy": "Never", "serviceAccount": "shop-transform",
                 "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "3Gi"}}},
    }


def analytics_query(repo: Path, state: Path, sql: str) -> str:
    script = ("import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
              "print(c.execute(sys.argv[2]).fetchone()[0])")
    return subprocess.run([analytics_python(repo), "-c", script, str(state / "warehouse.duckdb"), sql], check=True,
                          capture_output=True, text=True, timeout=120).stdout.strip()


def test_one_dag_run_runs_dbt_and_gx_as_pods_on_the_node(node: Any, kube: Kube) -> None:
    from eventpipe_dags.definition import PipelineDag
    from eventpipe_dags.factory import build_dag
    from eventpipe_dags.pods import RUN_AS_USER
    from eventpipe_dags.settings import DagsSettings

    repo, state = node.repo, node.state
    subprocess.run([str(repo / ".venvs" / "airflow" / "bin" / "airflow"), "db", "migrate"], check=True,
                   capture_output=True, timeout=600)
    image = analytics_image(repo)
    snapshot = commit_snapshot(repo, state, 300, seed=11)
    settings = DagsSettings()
    assert (settings.mode, settings.state_host_path) == ("kubernetes", str(state))
    data = definition(image)
    (node.definitions / "shop.json").write_text(json.dumps(data))  # what the operator's ConfigMap would carry
    dag = build_dag(PipelineDag.model_validate(data), settings)

    run = dag.test()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {t: "success" for t in ("resolve_snapshot", *STEPS, "publish_results", "mark_processed")}, (
        states, kube.kubectl("get", "events", "-n", K8S_NS, check=False).stdout[-4000:])

    # Each step ran as a pod of this namespace on the node (the scheduler's events outlive the deleted pods).
    placed = kube.scheduled_pods()
    for step in STEPS:
        prefix = f"shop-{step.replace('_', '-')}"
        names = [n for n in placed if n.startswith(prefix)]
        assert names and "eventpipe-node" in placed[names[0]], (step, placed)

    # dbt built the warehouse inside a pod (files owned by the pods' UID, not by this root process), from the
    # run's snapshot, and checked the source's freshness there; GX kept its results beside it.
    assert (state / "warehouse.duckdb").stat().st_uid == RUN_AS_USER
    assert int(analytics_query(repo, state, "select count(*) from marts.fact_events")) > 0
    run_results = json.loads((state / "dbt" / "target" / "run_results.json").read_text())
    assert run_results["args"]["vars"]["raw_events_snapshot_id"] == snapshot
    assert json.loads((state / "freshness.json").read_text())["status"] == "pass"
    results = list((state / "quality").rglob("*.json"))
    assert results and all(p.stat().st_uid == RUN_AS_USER for p in results)
    verdicts = [json.loads(line) for line in (state / "airflow" / "runs.jsonl").read_text().splitlines()]
    assert [r["snapshot_id"] for r in verdicts if r["event"] == "run_succeeded"] == [snapshot]
