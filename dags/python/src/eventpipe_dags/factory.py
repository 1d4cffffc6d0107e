"""One Airflow DAG per pipeline definition: resolve snapshot -> dbt build -> GX suites -> publish -> mark.

Default trigger ("on-snapshot"): the DAG is `@continuous` with one active run, and each run's first task is a
deferrable wait (NewSnapshotTrigger, in the triggerer) for a snapshot newer than the last processed one. Chosen
over assets + AssetWatcher because the run itself learns which snapshot it processes (the watcher's event
would have to be mapped back), `dag.test()` runs it inline, and a manual run with a snapshot id takes the very
same path. `trigger: schedule` gives the cron schedule instead, and a run with nothing new is skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, BaseOperator, Param

from eventpipe_dags import sources
from eventpipe_dags.callbacks import RESOLVE_TASK, on_task_failure, on_task_retry
from eventpipe_dags.commands import DBT_TASK, gx_task
from eventpipe_dags.definition import PipelineDag
from eventpipe_dags.operators import (
    AnalyticsPodOperator,
    LocalAnalyticsOperator,
    MarkProcessedOperator,
    PublishResultsOperator,
    ResolveSnapshotOperator,
)
from eventpipe_dags.settings import DagsSettings

START_DATE = datetime(2026, 1, 1)


def run_params(definition: PipelineDag) -> dict[str, Param]:
    """The manual trigger form (Property 21)."""
    return {
        "snapshot_id": Param(None, type=["null", "string"], description="Process this raw_events snapshot."),
        "full_refresh": Param(False, type="boolean", description="Rebuild incremental models from scratch."),
        "models": Param(" ".join(definition.dbt.select), type="string",
                        description="dbt selection (space separated); empty: the pipeline's."),
        "force": Param(False, type="boolean", description="Run even if the snapshot was processed already."),
    }


def default_args(settings: DagsSettings) -> dict[str, Any]:
    """Retries with exponential backoff and the failure/retry log lines (Properties 18, 40)."""
    return {
        "owner": "eventpipe",
        "retries": settings.retries,
        "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(seconds=settings.max_retry_delay_seconds),
        "execution_timeout": timedelta(seconds=settings.task_timeout_seconds),
        "on_failure_callback": on_task_failure,
        "on_retry_callback": on_task_retry,
    }


def analytics_task(definition: PipelineDag, settings: DagsSettings, step: str, verdict: bool) -> BaseOperator:
    if settings.mode == "kubernetes":
        return AnalyticsPodOperator(task_id=step, definition=definition, step=step,
                                    image=settings.analytics_image, verdict=verdict,
                                    state_host_path=settings.state_host_path)
    return LocalAnalyticsOperator(task_id=step, definition=definition, step=step,
                                  python=settings.analytics_python, verdict=verdict)


def build_dag(definition: PipelineDag, settings: DagsSettings) -> DAG:
    cron = definition.cron
    with DAG(
        dag_id=definition.dag_id,
        description=f"eventpipe pipeline {definition.pipeline}: dbt and Great Expectations on each snapshot",
        schedule=cron or "@continuous",
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        params=run_params(definition),
        default_args=default_args(settings),
        tags=["eventpipe", definition.pipeline, settings.mode],
        doc_md=__doc__,
    ) as dag:
        resolve = ResolveSnapshotOperator(task_id=RESOLVE_TASK, definition=definition,
                                          poll_interval=settings.poll_interval_seconds,
                                          wait_timeout=settings.sensor_timeout_seconds, wait_for_new=cron is None)
        dbt = analytics_task(definition, settings, DBT_TASK, verdict=False)
        suites = [analytics_task(definition, settings, gx_task(s), verdict=True) for s in definition.gx.suites]
        publish = PublishResultsOperator(task_id="publish_results", definition=definition,
                                         gx_tasks=[gx_task(s) for s in definition.gx.suites], retries=0)
        mark = MarkProcessedOperator(task_id="mark_processed", definition=definition)
        resolve >> dbt
        previous: BaseOperator = dbt
        for suite in suites:  # staging before marts: a broken staging layer makes the marts' verdict moot
            previous >> suite
            previous = suite
        previous >> publish >> mark
    return dag


def load_definitions(settings: DagsSettings) -> list[PipelineDag]:
    if settings.source == "kubernetes":
        return sources.from_kubernetes(settings.kube_namespace, settings.kubeconfig)
    return sources.from_folder(settings.definitions_dir)


def build_dags(settings: DagsSettings | None = None) -> dict[str, DAG]:
    """Every pipeline's DAG by id; what the DAG file puts in its globals."""
    settings = settings or DagsSettings.model_validate({})
    return {d.dag_id: build_dag(d, settings) for d in load_definitions(settings)}
