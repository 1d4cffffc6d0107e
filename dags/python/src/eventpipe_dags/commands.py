"""What each analytics step runs: one pure function for both launchers (subprocess locally, pod in a cluster).

The commands are the ones the local transform loop runs (services/cli transform_loop.py): `eventpipe_transform
build` and `eventpipe_quality run --suite S`. Exit codes follow those tools: 0 ok, 1 a model/test or a critical
expectation failed, 2 configuration or a dependency unavailable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventpipe_dags.definition import PipelineDag

DBT_TASK = "dbt_build"


def gx_task(suite: str) -> str:
    return f"gx_{suite}"


@dataclass(frozen=True)
class RunParams:
    """A run's parameters (manual trigger form or defaults): Property 21."""

    snapshot_id: str | None = None
    full_refresh: bool = False
    models: tuple[str, ...] = ()
    force: bool = False

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any]) -> RunParams:
        snapshot = params.get("snapshot_id")
        models = params.get("models") or ()
        if isinstance(models, str):
            models = tuple(models.split())
        return cls(snapshot_id=str(snapshot) if snapshot not in (None, "") else None,
                   full_refresh=bool(params.get("full_refresh", False)),
                   models=tuple(str(m) for m in models), force=bool(params.get("force", False)))


def dbt_command(definition: PipelineDag, params: RunParams) -> list[str]:
    """`dbt build` on the pipeline's target; the run's models replace the definition's selection."""
    argv = ["-m", "eventpipe_transform", "build", "--target", definition.dbt.target,
            "--namespace", definition.catalog.namespace]
    selection = params.models or tuple(definition.dbt.select)
    if selection:
        argv += ["--select", " ".join(selection)]
    if params.full_refresh:
        argv.append("--full-refresh")
    return argv


def gx_command(suite: str) -> list[str]:
    """One GX suite as a gate; it sends the alerts itself when a critical expectation fails."""
    return ["-m", "eventpipe_quality", "run", "--suite", suite]


def step_command(step: str, definition: PipelineDag, params: RunParams) -> list[str]:
    """The analytics step's arguments after `python`; the launcher supplies the interpreter."""
    if step == DBT_TASK:
        return dbt_command(definition, params)
    for suite in definition.gx.suites:
        if step == gx_task(suite):
            return gx_command(suite)
    raise ValueError(f"no such step {step!r} in DAG {definition.dag_id}")


def gx_verdict(exit_code: int) -> bool:
    """True when the suite passed, False on a critical failure; any other code is an error (retried)."""
    if exit_code in (0, 1):
        return exit_code == 0
    raise RuntimeError(f"the quality step could not run (exit code {exit_code})")
