"""The Pipeline page's EventPipelines (EVENTPIPE_DASHBOARD_KUBERNETES=1) under Streamlit's AppTest, against a real
kube-apiserver and etcd on free ports (tests/helpers/kubecluster.py, as the operator suite runs them) with the
project's CRD applied: an EventPipeline whose status subresource was patched shows that status, one without a
status shows Pending, and a missing configuration is said instead of a traceback."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from kubernetes import client, config
from kubernetes.config import kube_config
from streamlit.testing.v1 import AppTest

from tests.helpers.kubecluster import start_cluster
from tests.helpers.servers import REPO_ROOT, free_port

PAGES = REPO_ROOT / "dashboard" / "views"
CRD = REPO_ROOT / "crds" / "eventpipelines.eventpipe.io.yaml"
EXAMPLE = REPO_ROOT / "examples" / "shop-pipeline.yaml"
GROUP, VERSION, PLURAL = "eventpipe.io", "v1alpha1", "eventpipelines"
STATUS = {
    "phase": "Degraded",
    "message": "1 of 2 consumers ready",
    "conditions": [
        {"type": "Ready", "status": "False", "reason": "ConsumersNotReady", "message": "1 of 2 consumers ready",
         "lastTransitionTime": "2026-12-03T10:00:00Z"},
        {"type": "StreamReady", "status": "True", "reason": "Active", "message": "stream active",
         "lastTransitionTime": "2026-12-03T09:00:00Z"},
    ],
    "stream": {"name": "shop-events", "openShards": 4},
    "consumers": {"replicas": 2, "lagSeconds": 7.5},
}


def pipeline(name: str, namespace: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"] = {"name": name, "namespace": namespace}
    return doc


@pytest.fixture(scope="module")
def kube() -> Iterator[Path]:
    """A real API server with two EventPipelines: shop/shop with a status, clicks/web without; yields its
    kubeconfig."""
    workdir = Path(tempfile.mkdtemp(prefix="eventpipe-dash-k8s-"))
    cluster = start_cluster(workdir)
    try:
        cluster.kubectl("apply", "--server-side", "-f", str(CRD))
        cluster.wait_crd_established("eventpipelines.eventpipe.io")
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        for namespace in ("shop", "clicks"):
            core.create_namespace({"metadata": {"name": namespace}})
        custom.create_namespaced_custom_object(GROUP, VERSION, "shop", PLURAL, pipeline("shop", "shop"))
        custom.create_namespaced_custom_object(GROUP, VERSION, "clicks", PLURAL, pipeline("web", "clicks"))
        # What the operator does: the status through the status subresource (the main resource ignores it).
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, "shop", PLURAL, "shop", {"status": STATUS})
        stored = custom.get_namespaced_custom_object(GROUP, VERSION, "shop", PLURAL, "shop")
        assert stored["status"]["phase"] == "Degraded", stored
        yield Path(cluster.kubeconfig)
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def pipeline_page(monkeypatch: pytest.MonkeyPatch, state: Path, kubeconfig: Path) -> AppTest:
    monkeypatch.setenv("EVENTPIPE_DASHBOARD_KUBERNETES", "1")
    monkeypatch.setenv("EVENTPIPE_STATE_DIR", str(state))
    monkeypatch.setenv("EVENTPIPE_PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")  # closed: unreachable
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # The kubernetes client read KUBECONFIG when it was imported: point it at this one too.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    return AppTest.from_file(str(PAGES / "pipeline.py"), default_timeout=60).run()


def test_pipeline_page_shows_the_eventpipelines_status(kube: Path, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    at = pipeline_page(monkeypatch, tmp_path, kube)
    assert not at.exception
    assert any("Prometheus is unreachable" in w.value for w in at.warning), "the Kubernetes part stands alone"
    assert [h.value for h in at.subheader] == ["EventPipelines"]
    frame: pd.DataFrame = at.dataframe[0].value
    rows = {row["name"]: row for row in frame.to_dict("records")}
    assert set(rows) == {"shop", "web"}
    shop = rows["shop"]
    assert (shop["namespace"], shop["phase"], shop["ready"], shop["message"]) == (
        "shop", "Degraded", "False", "1 of 2 consumers ready")
    assert (shop["open shards"], shop["consumers"], shop["lag (s)"]) == (4, 2, 7.5)
    web = rows["web"]
    assert (web["namespace"], web["phase"], web["ready"], web["message"]) == ("clicks", "Pending", "Unknown", "")


def test_pipeline_page_without_a_kubernetes_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = pipeline_page(monkeypatch, tmp_path, tmp_path / "no-such-kubeconfig")
    assert not at.exception
    assert any("no Kubernetes configuration" in w.value for w in at.warning), [w.value for w in at.warning]
