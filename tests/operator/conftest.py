"""Fixtures of the operator suite: a real API server (kubecluster.py), the CRDs, the operator in-process.

The operator's settings are environment variables read when its handlers module is imported, so they are
set here, before any test imports it: a 1 s monitor period keeps the scaling and status tests short.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubecluster import KubeCluster, start_cluster
from kubernetes import client, config
from kubernetes.config import kube_config
from op_helpers import CRD, REPO
from servers import free_port

OPERATOR_METRICS_PORT = free_port()
os.environ.update({
    "EVENTPIPE_OPERATOR_MONITOR_INTERVAL_SECONDS": "1",
    "EVENTPIPE_OPERATOR_MONITOR_INITIAL_DELAY_SECONDS": "0.5",
    "EVENTPIPE_OPERATOR_METRICS_PORT": str(OPERATOR_METRICS_PORT),
    "EVENTPIPE_OPERATOR_METRICS_HOST": "127.0.0.1",
    "EVENTPIPE_OPERATOR_PEERING_NAME": "eventpipe-tests",
    "EVENTPIPE_OPERATOR_SERVICES_IMAGE": "ghcr.io/eventpipe/services:test",
    "EVENTPIPE_OPERATOR_ANALYTICS_IMAGE": "ghcr.io/eventpipe/analytics:test",
    "EVENTPIPE_OPERATOR_PROVISION_TIMEOUT_SECONDS": "30",
    # What the operator may call with its own credentials: the tests' SQLite catalogs and local kinesalite.
    "EVENTPIPE_OPERATOR_ALLOWED_CATALOG_URIS": json.dumps(["sqlite:///.*"]),
    "EVENTPIPE_OPERATOR_ALLOWED_KINESIS_ENDPOINTS": json.dumps([r"http://127\.0\.0\.1:[0-9]+"]),
})


@pytest.fixture(scope="session")
def cluster() -> Iterator[KubeCluster]:
    workdir = Path(tempfile.mkdtemp(prefix="eventpipe-k8s-"))
    kc = start_cluster(workdir)
    os.environ["KUBECONFIG"] = str(kc.kubeconfig)
    # The kubernetes client (which kopf logs in with) read KUBECONFIG when it was imported: point it here too.
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kc.kubeconfig)
    try:
        kc.kubectl("apply", "--server-side", "-f", str(CRD), "-f", str(REPO / "crds" / "kopf-peering.yaml"))
        kc.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                   "crd/eventpipelines.eventpipe.io", "crd/clusterkopfpeerings.kopf.dev", "crd/kopfpeerings.kopf.dev")
        yield kc
    finally:
        kc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def api(cluster: KubeCluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture(scope="session")
def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


@pytest.fixture(scope="session")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


def ensure_namespace(core: client.CoreV1Api, name: str) -> None:
    try:
        core.create_namespace({"metadata": {"name": name}})
    except client.ApiException as exc:
        if exc.status != 409:
            raise


@contextlib.contextmanager
def run_operator(custom: client.CustomObjectsApi, priority: int = 0) -> Iterator[Any]:
    """The operator in this process (kopf's KopfRunner), watching every namespace, with peering on."""
    from kopf.testing import KopfRunner

    try:
        custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings",
                                            {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                                             "metadata": {"name": "eventpipe-tests"}})
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    with KopfRunner(["run", "-A", "--peering", "eventpipe-tests", "--priority", str(priority),
                     "-m", "eventpipe_operator.handlers"], timeout=60) as runner:
        yield runner
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output


@pytest.fixture(scope="module")
def operator(cluster: KubeCluster, custom: client.CustomObjectsApi) -> Iterator[Any]:
    with run_operator(custom) as runner:
        yield runner


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.25) -> Any:
    """Poll until probe() returns something truthy; fail with the last value (or error) otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except client.ApiException as exc:
            last = f"{exc.status} {exc.reason}"
            if exc.status not in (404, 409):
                raise
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
