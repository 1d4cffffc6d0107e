"""Run dbt in-process (dbtRunner) with the pipeline's vars, and report each node's result as a JSON log line."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dbt.cli.main import dbtRunner, dbtRunnerResult
from eventpipe_common.logging import get_logger

from eventpipe_transform.settings import TransformSettings

FAILED_STATUSES = {"error", "fail", "runtime error"}


@dataclass
class NodeOutcome:
    """One model, seed or test of the build."""

    unique_id: str
    status: str
    seconds: float
    message: str | None
    rows_affected: int | None = None


@dataclass
class BuildOutcome:
    """What `dbt <command>` did; `ok` is False when dbt failed or any node errored or failed."""

    ok: bool
    nodes: list[NodeOutcome] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> list[NodeOutcome]:
        return [node for node in self.nodes if node.status in FAILED_STATUSES]


def dbt_args(command: Sequence[str], settings: TransformSettings, dbt_vars: dict[str, Any],
             extra: Sequence[str] = ()) -> list[str]:
    """The dbt command line: project, profile, target, vars, and target/log paths under the state dir."""
    work = settings.dbt_work_dir
    profiles_dir = settings.dbt_profiles_dir or settings.dbt_project_dir
    return [
        *command,
        "--project-dir", str(settings.dbt_project_dir),
        "--profiles-dir", str(profiles_dir),
        "--target", settings.dbt_target,
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--threads", str(settings.dbt_threads),
        "--vars", json.dumps(dbt_vars),
        # Our own JSON lines report each node; dbt's console shows only warnings and errors, as JSON too.
        "--log-format", "json",
        "--log-level", "warn",
        "--log-level-file", "info",
        *extra,
    ]


def _node_outcome(result: Any) -> NodeOutcome:
    response = getattr(result, "adapter_response", None) or {}
    rows = response.get("rows_affected") if isinstance(response, dict) else None
    return NodeOutcome(
        # build/run/test give RunResult (with .node); run-operation gives RunResultOutput (with .unique_id).
        unique_id=result.node.unique_id if hasattr(result, "node") else str(result.unique_id),
        status=str(result.status),
        seconds=round(float(result.execution_time or 0.0), 3),
        message=result.message,
        rows_affected=rows if isinstance(rows, int) else None,
    )


def release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open at class level after an invocation (it only drops its
    reference, and a failed run's results still hold one), so that readers in this process can open the
    warehouse file right after an in-process build."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()  # type: ignore[no-untyped-call]  # dbt-duckdb is untyped


def invoke_dbt(command: Sequence[str], settings: TransformSettings, dbt_vars: dict[str, Any],
               extra: Sequence[str] = ()) -> dbtRunnerResult:
    """Invoke dbt once and return its raw result; the profile reads EVENTPIPE_STATE_DIR, so it is set to the
    resolved state dir."""
    log = get_logger()
    os.environ["EVENTPIPE_STATE_DIR"] = str(settings.state_dir.resolve())
    settings.dbt_work_dir.mkdir(parents=True, exist_ok=True)
    args = dbt_args(command, settings, dbt_vars, extra)
    log.info("dbt started", command=" ".join(command), target=settings.dbt_target, vars=dbt_vars)
    try:
        return dbtRunner().invoke(args)
    finally:
        release_duckdb()


def run_dbt(command: Sequence[str], settings: TransformSettings, dbt_vars: dict[str, Any],
            extra: Sequence[str] = ()) -> BuildOutcome:
    """Invoke dbt once and log one line per node."""
    log = get_logger()
    result = invoke_dbt(command, settings, dbt_vars, extra)
    nodes = []
    if result.result is not None and hasattr(result.result, "results"):
        nodes = [_node_outcome(item) for item in result.result.results]
    for node in nodes:
        level = "error" if node.status in FAILED_STATUSES else "info"
        getattr(log, level)("dbt node finished", node=node.unique_id, status=node.status, seconds=node.seconds,
                            rows_affected=node.rows_affected, detail=node.message)
    error = str(result.exception) if result.exception is not None else None
    outcome = BuildOutcome(ok=bool(result.success) and error is None, nodes=nodes, error=error)
    if outcome.ok:
        log.info("dbt finished", command=" ".join(command), nodes=len(nodes))
    else:
        log.error("dbt failed", command=" ".join(command), nodes=len(nodes), failed=len(outcome.failed),
                  error=error)
    return outcome
