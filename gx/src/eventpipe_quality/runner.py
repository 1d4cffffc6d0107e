"""Run one suite: load each batch, validate it with GX, build the Data Docs, keep and log the results.

GX runs in an ephemeral context built here from code (no great_expectations.yml, no wizard state): one pandas
data source, one asset + ValidationDefinition + Checkpoint per check, and one Data Docs site per run under
`<state_dir>/quality/runs/<run_id>/docs`. Results go to `<state_dir>/quality/runs/<run_id>/results.json` and to
the `quality_results` table of `<state_dir>/quality/results.duckdb`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
from eventpipe_common.logging import get_logger
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from eventpipe_quality import assets
from eventpipe_quality.results import (
    RESULTS_DB,
    Outcome,
    RunReport,
    append_results,
    jsonable,
    load_failure,
    outcome_from_gx,
    result_rows,
    write_run_json,
)
from eventpipe_quality.suites import Check
from eventpipe_quality.warehouse import BatchLoadError, Warehouse, normalize_frame

DOCS_SITE = "eventpipe_quality"


@dataclass(frozen=True)
class RunOptions:
    quality_dir: Path
    assets_dir: Path
    result_format: str = "COMPLETE"
    sample_size: int = 20


def new_run_id(suite: str, now: dt.datetime) -> str:
    """Sortable by time, unique across concurrent runs."""
    return f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{suite}-{uuid.uuid4().hex[:6]}"


def make_context(docs_dir: Path) -> Any:
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def validate_frame(context: Any, check: Check, frame: pd.DataFrame, run_id: str, result_format: str) -> Any:
    """One GX checkpoint run of `check` on `frame`; returns GX's ExpectationSuiteValidationResult."""
    datasource = context.data_sources.add_or_update_pandas(name="warehouse")
    asset = datasource.add_dataframe_asset(name=check.name)
    batch_definition = asset.add_batch_definition_whole_dataframe(name=f"{check.name}.whole")
    suite = context.suites.add(gx.ExpectationSuite(name=check.name, expectations=list(check.expectations)))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=check.name, data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(name=check.name, validation_definitions=[definition], actions=[],
                      result_format={"result_format": result_format})
    )
    result = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=run_id))
    return next(iter(result.run_results.values()))


def run_checks(suite: str, checks: Sequence[Check], warehouse: Warehouse, options: RunOptions, *,
               rejected_rows: int | None = None, rejected_source: str = "", location: str = "",
               now: dt.datetime | None = None) -> RunReport:
    """Validate every check, build docs, write JSON, append rows. Never raises for bad data: see the report."""
    started = now or dt.datetime.now(dt.UTC)
    run_id = new_run_id(suite, started)
    run_dir = options.quality_dir.resolve() / "runs" / run_id
    docs_dir = run_dir / "docs"
    context = make_context(docs_dir)
    outcomes: list[Outcome] = []
    gx_results: dict[str, Any] = {}
    for check in checks:
        try:
            frame = normalize_frame(warehouse.frame(check.query))
        except BatchLoadError as exc:
            outcomes.append(load_failure(suite, check.name, check.source, exc.message))
            continue
        validation = validate_frame(context, check, frame, run_id, options.result_format)
        gx_results[check.name] = validation.to_json_dict()
        for result in validation.results:
            outcome = outcome_from_gx(suite, check.name, result, options.sample_size)
            outcomes.append(with_keys(outcome, frame, check.key, options.sample_size))

    docs_index = build_docs(context, docs_dir, options)
    report = RunReport(
        run_id=run_id, suite=suite, started_at=started, finished_at=dt.datetime.now(dt.UTC), outcomes=outcomes,
        warehouse=location, rejected_rows=rejected_rows, rejected_rows_source=rejected_source,
        docs_index=docs_index, results_path=run_dir / "results.json",
    )
    write_run_json(report, run_dir / "results.json", gx_results)
    append_results(options.quality_dir / RESULTS_DB, result_rows(report))
    return report


def with_keys(outcome: Outcome, frame: pd.DataFrame, key: str | None, sample_size: int) -> Outcome:
    """Quote the key of the first failing rows (a null's value says nothing; its event_id says where it is)."""
    if key is None or key not in frame.columns or not outcome.unexpected_rows:
        return outcome
    rows = [r for r in outcome.unexpected_rows[:sample_size] if r in frame.index]
    return replace(outcome, failing_keys=jsonable(frame.loc[rows, key].tolist()))


def build_docs(context: Any, docs_dir: Path, options: RunOptions) -> Path | None:
    """Build this run's Data Docs site and make it self-contained (vendored CSS/JS, no remote URL)."""
    context.build_data_docs(site_names=[DOCS_SITE])
    index = docs_dir / "index.html"
    if not index.exists():
        return None
    vendor_dir = options.quality_dir.resolve() / "vendor"
    if not assets.install_vendor_dir(options.assets_dir, vendor_dir):
        get_logger().warning(
            "data docs assets not vendored: pages will render unstyled; run `python -m eventpipe_quality "
            "vendor-assets` once", assets_dir=str(options.assets_dir),
        )
    assets.localize_site(docs_dir, vendor_dir)
    return index


def log_failures(report: RunReport, sample_size: int = 20) -> None:
    """One log line per failed expectation: suite, batch, expectation, column, observed value, failing sample."""
    log = get_logger()
    for o in report.failures:
        emit = log.error if o.severity == "critical" else log.warning
        emit(
            "quality expectation failed",
            run_id=report.run_id,
            suite=report.suite,
            asset=o.asset,
            expectation=o.expectation,
            column=o.column,
            severity=o.severity,
            observed_value=o.observed_value,
            unexpected_count=o.unexpected_count,
            failing_sample=o.failing_sample[:sample_size],
            failing_keys=o.failing_keys[:sample_size],
            failing_rows=o.unexpected_rows[:sample_size],
            error=o.error,
        )

