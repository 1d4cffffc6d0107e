"""Failure and retry callbacks (Properties 18, 40): who failed, on which snapshot, which try, and why."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from eventpipe_dags import runlog

RESOLVE_TASK = "resolve_snapshot"
log = logging.getLogger("eventpipe.dags")


def snapshot_of(context: Mapping[str, Any]) -> str | None:
    """The run's snapshot: the resolve task's result, else the manual trigger's parameter."""
    ti = context.get("ti")
    if ti is not None and getattr(ti, "task_id", None) != RESOLVE_TASK:
        try:
            value = ti.xcom_pull(task_ids=RESOLVE_TASK)
        except Exception as exc:  # noqa: BLE001 (no XCom backend reachable: the params still say something)
            log.warning("could not read the run's snapshot: %s", exc)
            value = None
        if isinstance(value, Mapping) and value.get("snapshot_id"):
            return str(value["snapshot_id"])
    params = context.get("params") or {}
    snapshot = params.get("snapshot_id") if isinstance(params, Mapping) else None
    return str(snapshot) if snapshot else None


def failure_record(context: Mapping[str, Any], event: str) -> dict[str, Any]:
    """Pure: the fields every failure line carries."""
    ti = context.get("ti")
    dag = context.get("dag")
    exception = context.get("exception")
    dag_id = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None)
    pipeline = (context.get("params") or {}).get("pipeline") or (
        dag_id.removeprefix("eventpipe_") if isinstance(dag_id, str) else None)
    return {
        "event": event,
        "pipeline": pipeline,
        "dag_id": dag_id,
        "task_id": getattr(ti, "task_id", None),
        "run_id": context.get("run_id") or getattr(ti, "run_id", None),
        "snapshot_id": snapshot_of(context),
        "try_number": getattr(ti, "try_number", None),
        "max_tries": getattr(ti, "max_tries", None),
        "error_type": type(exception).__name__ if exception is not None else None,
        "error": str(exception) if exception is not None else None,
    }


def on_task_failure(context: Mapping[str, Any]) -> None:
    record = failure_record(context, "task_failed")
    log.error("eventpipe task failed: %s", record)
    runlog.append(record)


def on_task_retry(context: Mapping[str, Any]) -> None:
    record = failure_record(context, "task_retry")
    log.warning("eventpipe task will be retried: %s", record)
    runlog.append(record)
