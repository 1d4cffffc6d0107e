"""The DAG file loads every pipeline's DAG, from dag.json files and from the operator's ConfigMaps on a real
kube-apiserver; adding or removing a pipeline changes the DAGs at the next parse, with no new DAG file."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.airflow_helpers import REPO, definition, operator_config_maps, write_definition

TASKS = ["resolve_snapshot", "dbt_build", "gx_staging", "gx_marts", "publish_results", "mark_processed"]


def load_bag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dags_from_files_follow_the_folder(definitions_dir: Path) -> None:
    write_definition(definitions_dir, definition("shop"))
    write_definition(definitions_dir, definition("clicks", trigger="schedule", schedule="0 * * * *",
                                                 gx={"suites": ["marts"]}))
    (definitions_dir / "broken.json").write_text('{"pipeline": "broken"')

    bag = load_bag()
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["eventpipe_clicks", "eventpipe_shop"]
    shop, clicks = bag.dags["eventpipe_shop"], bag.dags["eventpipe_clicks"]
    assert [t.task_id for t in shop.topological_sort()] == TASKS
    assert [t.task_id for t in clicks.topological_sort()] == [
        "resolve_snapshot", "dbt_build", "gx_marts", "publish_results", "mark_processed"]
    assert shop.schedule == "@continuous" and shop.max_active_runs == 1
    assert clicks.schedule == "0 * * * *"

    # A pipeline removed and another added: the next parse follows, the DAG file is untouched.
    (definitions_dir / "clicks.json").unlink()
    write_definition(definitions_dir, definition("orders"))
    assert sorted(load_bag().dag_ids) == ["eventpipe_orders", "eventpipe_shop"]


def _pipeline(name: str, namespace: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 1},
            "spec": {"iceberg": {"namespace": name},
                     "transform": {"dbt": {"target": "duckdb", "select": ["+fact_events"]},
                                   "gx": {"suites": ["staging", "marts"]}}}}


@pytest.fixture(scope="module")
def kube() -> Iterator[Any]:
    from tests.helpers.kubecluster import start_cluster

    workdir = Path(tempfile.mkdtemp(prefix="eventpipe-airflow-k8s-"))
    cluster = start_cluster(workdir)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_dags_from_operator_config_maps(kube: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(kube.kubeconfig))
    core = client.CoreV1Api(api)
    for namespace in ("shop", "web"):
        core.create_namespace({"metadata": {"name": namespace}})
    maps = operator_config_maps([_pipeline("shop", "shop"), _pipeline("clicks", "web")],
                                "registry.example/eventpipe/analytics:kube")
    for cm in maps:
        cm["metadata"].pop("ownerReferences")  # no EventPipeline object exists for the garbage collector
        core.create_namespaced_config_map(cm["metadata"]["namespace"], cm)
    core.create_namespaced_config_map("web", {"metadata": {"name": "unrelated"}, "data": {"dag.json": "{}"}})

    monkeypatch.setenv("EVENTPIPE_DAGS_SOURCE", "kubernetes")
    monkeypatch.setenv("EVENTPIPE_DAGS_KUBECONFIG", str(kube.kubeconfig))
    monkeypatch.setenv("EVENTPIPE_DAGS_MODE", "kubernetes")
    bag = load_bag()
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["eventpipe_clicks", "eventpipe_shop"]
    for dag in bag.dags.values():
        assert [t.task_id for t in dag.topological_sort()] == TASKS
        dbt = dag.get_task("dbt_build")
        assert type(dbt).__name__ == "AnalyticsPodOperator"
        assert dbt.image == "registry.example/eventpipe/analytics:kube"  # the operator's pods.image
        assert dbt.service_account_name == f"{dag.dag_id.removeprefix('eventpipe_')}-transform"

    core.delete_namespaced_config_map("clicks-dag", "web")
    assert load_bag().dag_ids == ["eventpipe_shop"]
    api.close()
    assert os.environ["EVENTPIPE_DAGS_SOURCE"] == "kubernetes"
