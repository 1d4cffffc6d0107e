"""Every KubernetesPodOperator task's pod, rendered by the provider itself (build_pod_request_obj, dry run):
image, command, envFrom, service account, resources, security, and secrets only as references."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.airflow_helpers import definition, operator_config_maps

IMAGE = "registry.example/eventpipe/analytics:test"
SECRET_ENV = ("EVENTPIPE_ALERT_WEBHOOK_URL", "EVENTPIPE_JOB_STORE_DSN")


def cluster_definition(**overrides: Any) -> Any:
    from eventpipe_dags.definition import PipelineDag

    data = definition("shop", dbt={"target": "snowflake", "select": ["+fact_events", "+dim_users"]},
                      alerts=[{"type": "slack", "severity": "critical",
                               "urlSecretRef": {"name": "shop-alerts", "key": "slack-webhook"}},
                              {"type": "email", "severity": "warning", "to": "data@example.com"}],
                      pods={"serviceAccount": "shop-transform", "catalogSecretRef": "shop-catalog",
                            "jobStoreDsnSecretRef": {"name": "shop-db", "key": "dsn"},
                            "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "6Gi"}}})
    data.update(overrides)
    return PipelineDag.model_validate(data)


def pod_tasks(definition_: Any) -> dict[str, Any]:
    from eventpipe_dags.factory import build_dag
    from eventpipe_dags.operators import AnalyticsPodOperator
    from eventpipe_dags.settings import DagsSettings

    dag = build_dag(definition_, DagsSettings(mode="kubernetes", analytics_image=IMAGE))
    return {t.task_id: t for t in dag.tasks if isinstance(t, AnalyticsPodOperator)}


_DEFAULT_TASKS: dict[str, Any] = {}


def default_pod_tasks() -> dict[str, Any]:
    """The default definition's tasks, built once (a DAG build costs seconds on a busy machine)."""
    if not _DEFAULT_TASKS:
        _DEFAULT_TASKS.update(pod_tasks(cluster_definition()))
    return _DEFAULT_TASKS


def render(task: Any, params: dict[str, Any], snapshot: str) -> Any:
    task.prepare(params, snapshot)
    return task.build_pod_request_obj(dry_run=True)


def test_every_pod_task_renders_the_pipelines_pod() -> None:
    tasks = pod_tasks(cluster_definition())
    assert sorted(tasks) == ["dbt_build", "gx_marts", "gx_staging"]
    for task_id, task in tasks.items():
        pod = render(task, {"models": "", "full_refresh": False}, "4242")
        assert pod.metadata.namespace == "shop"
        assert pod.metadata.labels["eventpipe.io/pipeline"] == "shop"
        spec = pod.spec
        assert spec.service_account_name == "shop-transform"
        assert spec.security_context.run_as_non_root is True
        base = next(c for c in spec.containers if c.name == "base")
        assert base.image == IMAGE
        assert base.resources.requests == {"cpu": "1", "memory": "1Gi"}
        assert base.resources.limits == {"cpu": "2", "memory": "6Gi"}
        assert base.security_context.read_only_root_filesystem is True
        assert base.security_context.allow_privilege_escalation is False
        sources = [(e.prefix, e.config_map_ref and e.config_map_ref.name, e.secret_ref and e.secret_ref.name)
                   for e in base.env_from]
        assert sources == [(None, "shop-config", None), ("EVENTPIPE_CATALOG_PROPERTIES__", None, "shop-catalog")]
        env = {e.name: e for e in base.env}
        assert env["EVENTPIPE_SNAPSHOT_ID"].value == "4242"
        assert env["EVENTPIPE_ALERT_EMAIL_TO"].value == '["data@example.com"]'
        for name in SECRET_ENV:  # secrets by reference only: no value in the pod
            assert env[name].value is None
            assert env[name].value_from.secret_key_ref.name in ("shop-alerts", "shop-db")
        if task_id == "dbt_build":
            assert base.command == ["python"]
            assert base.args == ["-m", "eventpipe_transform", "build", "--target", "snowflake",
                                 "--namespace", "shop", "--select", "+fact_events +dim_users"]
            assert [c.name for c in spec.containers] == ["base"]
        else:
            suite = task_id.removeprefix("gx_")
            assert base.command == ["/bin/sh", "-c"]
            assert base.args[2:] == ["-m", "eventpipe_quality", "run", "--suite", suite]
            assert "/airflow/xcom/return.json" in base.args[0]
            sidecar = next(c for c in spec.containers if c.name == "airflow-xcom-sidecar")
            assert (sidecar.image, sidecar.image_pull_policy) == (IMAGE, base.image_pull_policy)
        assert {v.name: v.empty_dir is not None for v in spec.volumes}.items() >= {"tmp": True, "state": True}.items()


OPERATOR_IMAGE = "registry.example/eventpipe/analytics:from-operator"


def operator_pipeline() -> dict[str, Any]:
    """An EventPipeline as the API server returns it, with every part that reaches the task pods."""
    return {"metadata": {"name": "shop", "namespace": "shop", "uid": "uid-shop", "generation": 1},
            "spec": {"image": {"pullPolicy": "Always"},
                     "aws": {"credentialsSecretRef": {"name": "shop-aws"},
                             "transformRoleArn": "arn:aws:iam::123456789012:role/eventpipe-shop-transform"},
                     "iceberg": {"namespace": "shop", "catalogSecretRef": {"name": "shop-catalog"}},
                     "jobStore": {"dsnSecretRef": {"name": "shop-db", "key": "dsn"}},
                     "transform": {"dbt": {"target": "snowflake", "select": ["+fact_events"]},
                                   "resources": {"requests": {"cpu": 1}, "limits": {"memory": "6Gi"}},
                                   "alerts": [{"type": "slack", "urlSecretRef": {"name": "shop-alerts",
                                                                                 "key": "slack-webhook"}}]}}}


def test_operator_built_config_map_renders_exactly_its_pods() -> None:
    """The operator's `<name>-dag` ConfigMap (its own builder) read the way the factory reads ConfigMaps from the
    API: every pod task has exactly the image, pull policy, service account, resources, envFrom and Secret
    references the operator wrote, and no secret value."""
    from eventpipe_dags.sources import config_map_texts, from_texts
    from kubernetes.client import models as k8s

    (cm,) = operator_config_maps([operator_pipeline()], OPERATOR_IMAGE)
    assert cm["metadata"]["labels"]["eventpipe.io/dag"] == "true"
    written = json.loads(cm["data"]["dag.json"])["pods"]
    assert written["image"] == OPERATOR_IMAGE and written["serviceAccount"] == "shop-transform"
    listed = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=cm["metadata"]["name"],
                                                       namespace=cm["metadata"]["namespace"]), data=cm["data"])
    (parsed,) = from_texts(config_map_texts([listed]))
    tasks = pod_tasks(parsed)  # the factory's own image (IMAGE) is not used: the definition names one
    assert sorted(tasks) == ["dbt_build", "gx_marts", "gx_staging"]
    for task in tasks.values():
        pod = render(task, {}, "77")
        assert pod.metadata.namespace == "shop"
        assert pod.spec.service_account_name == written["serviceAccount"]
        base = next(c for c in pod.spec.containers if c.name == "base")
        assert (base.image, base.image_pull_policy) == (OPERATOR_IMAGE, "Always")
        assert base.resources.requests == written["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
        assert base.resources.limits == written["resources"]["limits"] == {"cpu": "2", "memory": "6Gi"}
        sources = [(e.prefix, e.config_map_ref and e.config_map_ref.name, e.secret_ref and e.secret_ref.name)
                   for e in base.env_from]
        assert sources == [(None, "shop-config", None), ("EVENTPIPE_CATALOG_PROPERTIES__", None, "shop-catalog"),
                           (None, None, "shop-aws")]
        env = {e.name: e for e in base.env}
        assert env["EVENTPIPE_SNAPSHOT_ID"].value == "77"
        refs = {name: (e.value, e.value_from.secret_key_ref.name, e.value_from.secret_key_ref.key)
                for name, e in env.items() if e.value_from is not None}
        assert refs == {"EVENTPIPE_JOB_STORE_DSN": (None, "shop-db", "dsn"),
                        "EVENTPIPE_ALERT_WEBHOOK_URL": (None, "shop-alerts", "slack-webhook")}
        if not task.verdict:  # dbt: the spec's target and selection
            assert base.args == ["-m", "eventpipe_transform", "build", "--target", "snowflake",
                                 "--namespace", "shop", "--select", "+fact_events"]


def test_definition_image_and_defaults() -> None:
    """Without a `pods` block: the factory's image, `<pipeline>-transform`, default resources, no secrets."""
    tasks = pod_tasks(cluster_definition(pods={"image": "other/analytics:1"}, alerts=[]))
    pod = render(tasks["dbt_build"], {}, "1")
    base = pod.spec.containers[0]
    assert base.image == "other/analytics:1"
    assert pod.spec.service_account_name == "shop-transform"
    assert base.resources.requests == {"cpu": "500m", "memory": "1Gi"}
    assert [e.name for e in base.env] == ["EVENTPIPE_SNAPSHOT_ID"]
    assert len(base.env_from) == 1


def test_a_local_node_shares_one_host_folder_as_every_pods_state_dir() -> None:
    """EVENTPIPE_DAGS_STATE_HOST_PATH (one local node only): every step's pod mounts the same host folder at its
    own path and names it EVENTPIPE_STATE_DIR, so GX reads the DuckDB warehouse dbt built in another pod."""
    from eventpipe_dags.factory import build_dag
    from eventpipe_dags.operators import AnalyticsPodOperator
    from eventpipe_dags.settings import DagsSettings

    dag = build_dag(cluster_definition(), DagsSettings(mode="kubernetes", analytics_image=IMAGE,
                                                       state_host_path="/srv/eventpipe/shop"))
    for task in (t for t in dag.tasks if isinstance(t, AnalyticsPodOperator)):
        pod = render(task, {}, "7")
        state = next(v for v in pod.spec.volumes if v.name == "state")
        assert (state.empty_dir, state.host_path.path, state.host_path.type) == (None, "/srv/eventpipe/shop",
                                                                                 "Directory")
        base = next(c for c in pod.spec.containers if c.name == "base")
        assert {m.name: m.mount_path for m in base.volume_mounts}["state"] == "/srv/eventpipe/shop"
        assert {e.name: e.value for e in base.env}["EVENTPIPE_STATE_DIR"] == "/srv/eventpipe/shop"


@settings(max_examples=40, deadline=None)
@given(models=st.lists(st.from_regex(r"\+?[a-z][a-z_]{0,12}", fullmatch=True), max_size=4),
       full_refresh=st.booleans(), snapshot=st.integers(min_value=1, max_value=2**63 - 1))
def test_manual_params_reach_the_pod(models: list[str], full_refresh: bool, snapshot: int) -> None:
    """Property 21: Manual triggers start workflows — a manual run's params (snapshot id, models, full refresh)
    decide the pod's command and environment, and only those."""
    tasks = default_pod_tasks()
    pod = render(tasks["dbt_build"], {"models": " ".join(models), "full_refresh": full_refresh,
                                      "snapshot_id": str(snapshot)}, str(snapshot))
    args = pod.spec.containers[0].args
    expected_select = " ".join(models) if models else "+fact_events +dim_users"
    assert args[args.index("--select") + 1] == expected_select
    assert ("--full-refresh" in args) == full_refresh
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert env["EVENTPIPE_SNAPSHOT_ID"] == str(snapshot)
