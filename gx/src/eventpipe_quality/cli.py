"""`python -m eventpipe_quality`: run a suite as a gate (exit 1 when a critical expectation fails), or fetch the
Data Docs assets once so the reports render offline.

Exit codes: 0 passed (warnings allowed), 1 a critical expectation failed, 2 bad configuration or a dependency
(warehouse, catalog) unavailable.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from eventpipe_common.errors import EventpipeError
from eventpipe_common.logging import configure_logging, get_logger
from pydantic import ValidationError

from eventpipe_quality.settings import QualitySettings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


class Suite(StrEnum):
    staging = "staging"
    marts = "marts"


def _settings(**overrides: Any) -> QualitySettings:
    try:
        return QualitySettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        configure_logging("quality")
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            get_logger().error("invalid setting", field=f"EVENTPIPE_{field.upper()}", problem=error["msg"])
        raise typer.Exit(2) from None


@app.command()
def run(
    suite: Annotated[Suite, typer.Option(help="Which suite to run.")],
    state_dir: Annotated[Path | None, typer.Option(help="State dir (default: EVENTPIPE_STATE_DIR).")] = None,
    warehouse: Annotated[Path | None, typer.Option(help="DuckDB file (default: <state_dir>/warehouse.duckdb).")]
    = None,
    rejected_count: Annotated[int | None, typer.Option(
        min=0, help="Rejected rows, when the caller knows them; otherwise counted in <ns>.raw_events_rejected.")]
    = None,
) -> None:
    """Validate the staging or marts models; exit 1 when a critical expectation fails."""
    settings = _settings(state_dir=state_dir, warehouse_path=warehouse)
    configure_logging("quality", settings.log_level)
    from eventpipe_quality.gate import run_gate  # imports GX: slow, so only when running

    try:
        report = run_gate(settings, suite.value, rejected_count)
    except EventpipeError as exc:
        get_logger().error("quality run could not start", error=exc.message, code=exc.code, **exc.details)
        raise typer.Exit(2) from None
    typer.echo(f"{report.suite}: {'passed' if report.success else 'FAILED'} "
               f"({len(report.critical_failures)} critical, {len(report.failures)} total failures); "
               f"docs: {report.docs_index}; results: {report.results_path}")
    raise typer.Exit(0 if report.success else 1)


@app.command("vendor-assets")
def vendor_assets(
    dest: Annotated[Path | None, typer.Option(help="Assets dir (default: EVENTPIPE_QUALITY_ASSETS_DIR or cache).")]
    = None,
) -> None:
    """Download the pinned CSS/JS the Data Docs use (npm registry, integrity-checked) into the cache."""
    from eventpipe_quality.assets import fetch_assets

    settings = _settings(quality_assets_dir=dest)
    configure_logging("quality", settings.log_level)
    try:
        path = fetch_assets(settings.resolved_assets_dir())
    except EventpipeError as exc:
        get_logger().error("vendoring data docs assets failed", error=exc.message, code=exc.code, **exc.details)
        raise typer.Exit(2) from None
    typer.echo(str(path))


def main() -> None:
    app()
