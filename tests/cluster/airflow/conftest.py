"""Airflow against the real node (scripts/cluster.sh): the environment Airflow reads when first imported is set
here, before any test imports it — a metadata DB on SQLite in a temporary AIRFLOW_HOME, the factory in kubernetes
mode, and the `kubernetes_default` connection pointing at the node's kubeconfig. Runs in the airflow venv, in
its own pytest process of the cluster stage (scripts/test.sh cluster)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HOME = Path(tempfile.mkdtemp(prefix="eventpipe-airflow-cluster-"))
# The pods' shared state dir (hostPath) and the host's: the same folder at the same path, so the SQLite catalog's
# absolute file paths mean the same on the host and in every pod. Pods run as UID 10001: the folder is theirs too.
STATE = HOME / "state"
STATE.mkdir()
DEFINITIONS = HOME / "definitions"  # the DAG file's folder: dag.test() runs the DAG the DAG file builds from it
DEFINITIONS.mkdir()
HOME.chmod(0o755)
STATE.chmod(0o777)


def cluster_env_file() -> Path | None:
    out = subprocess.run([str(REPO / "scripts" / "cluster.sh"), "env"], capture_output=True, text=True, check=False)
    return Path(out.stdout.strip()) if out.returncode == 0 else None


def _cluster_env() -> dict[str, str]:
    path = cluster_env_file()
    if path is None:
        return {}
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.replace("$PATH", os.environ["PATH"])
    return env


CLUSTER_ENV = _cluster_env()

os.environ.update({
    "AIRFLOW_HOME": str(HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "EVENTPIPE_DAGS_MODE": "kubernetes",
    "EVENTPIPE_DAGS_DEFINITIONS_DIR": str(DEFINITIONS),
    "EVENTPIPE_DAGS_STATE_HOST_PATH": str(STATE),
    "EVENTPIPE_DAGS_RETRIES": "1",
    "EVENTPIPE_DAGS_RETRY_DELAY_SECONDS": "2",
    "EVENTPIPE_DAGS_MAX_RETRY_DELAY_SECONDS": "4",
    "EVENTPIPE_DAGS_POLL_INTERVAL_SECONDS": "0.5",
    "EVENTPIPE_STATE_DIR": str(STATE),
    "EVENTPIPE_NAMESPACE": "shop",
    "EVENTPIPE_PIPELINE_NAME": "shop",
})
if CLUSTER_ENV:
    os.environ.update(CLUSTER_ENV)
    os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = json.dumps({
        "conn_type": "kubernetes",
        "extra": {"kube_config_path": CLUSTER_ENV["KUBECONFIG"], "in_cluster": False}})


@dataclass(frozen=True)
class Node:
    """What the tests need of this session: the cluster's environment (KUBECONFIG, PATH with kubectl), the
    shared state folder, the repository."""

    env: dict[str, str]
    state: Path
    repo: Path
    definitions: Path


@pytest.fixture(scope="session")
def node() -> Node:
    if not CLUSTER_ENV:
        pytest.fail("no cluster: run `scripts/cluster.sh up services operator analytics` first "
                    "(scripts/test.sh cluster does)")
    return Node({**os.environ, **CLUSTER_ENV}, STATE, REPO, DEFINITIONS)
