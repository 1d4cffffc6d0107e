"""Fixtures of the operator suite: a real API server (kubecluster.py), the CRDs, the operator in-process.
The helpers they use are in tests/helpers/op_helpers.py and tests/helpers/kubecluster.py.

The operator's settings are environment variables read when its handlers module is imported, so they are
set here, before any test imports it: a 1 s monitor period keeps the scaling and status tests short.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.config import kube_config

from tests.helpers.kubecluster import KubeCluster, start_cluster
from tests.helpers.op_helpers import CRD, OPERATOR_METRICS_PORT, REPO, run_operator

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
        for crd in ("eventpipelines.eventpipe.io", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"):
            kc.wait_crd_established(crd)
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


@pytest.fixture(scope="module")
def operator(cluster: KubeCluster, custom: client.CustomObjectsApi) -> Iterator[Any]:
    with run_operator(custom) as runner:
        yield runner
