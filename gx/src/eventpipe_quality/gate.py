"""The quality gate: settings in, a verdict out (report kept, failures logged, alerts sent).

`run_gate` is what the CLI, the local stack and Airflow call through `python -m eventpipe_quality run`.
"""

from __future__ import annotations

import datetime as dt

from eventpipe_common.logging import get_logger

from eventpipe_quality import alerts
from eventpipe_quality.rejected import count_rejected
from eventpipe_quality.results import RunReport
from eventpipe_quality.runner import RunOptions, log_failures, run_checks
from eventpipe_quality.settings import QualitySettings
from eventpipe_quality.suites import SuiteName, SuiteParams, build_suite
from eventpipe_quality.warehouse import DuckDBWarehouse, SqlAlchemyWarehouse, Warehouse


def suite_params(settings: QualitySettings, now: dt.datetime, rejected_rows: int) -> SuiteParams:
    return SuiteParams(
        now=now,
        event_types=settings.allowed_event_types(),
        max_clock_skew=dt.timedelta(seconds=settings.quality_max_clock_skew_seconds),
        amount_min=settings.quality_amount_min,
        amount_max=settings.quality_amount_max,
        max_rejected_share=settings.quality_max_rejected_share,
        row_count_tolerance=settings.quality_row_count_tolerance,
        rejected_rows=rejected_rows,
    )


def open_warehouse(settings: QualitySettings) -> Warehouse:
    if settings.warehouse_url is not None:
        return SqlAlchemyWarehouse(settings.warehouse_url.get_secret_value())
    return DuckDBWarehouse(settings.resolved_warehouse_path())


def run_gate(settings: QualitySettings, suite: SuiteName, rejected_count: int | None = None) -> RunReport:
    """Run `suite`; the rejected count is the caller's when given, else read from Iceberg (staging only)."""
    log = get_logger()
    now = dt.datetime.now(dt.UTC)
    rejected_rows: int | None = None
    rejected_source = "not used"
    if suite == "staging":
        if rejected_count is not None:
            rejected_rows, rejected_source = rejected_count, "caller"
        else:
            rejected_rows = count_rejected(settings)
            rejected_source = f"iceberg:{settings.namespace}.raw_events_rejected"
    checks = build_suite(suite, suite_params(settings, now, rejected_rows or 0))
    options = RunOptions(
        quality_dir=settings.quality_dir,
        assets_dir=settings.resolved_assets_dir(),
        result_format=settings.quality_result_format,
        sample_size=settings.quality_failure_sample_size,
    )
    warehouse = open_warehouse(settings)
    try:
        location = getattr(warehouse, "location", "")
        log.info("quality run started", suite=suite, warehouse=location, checks=[c.name for c in checks],
                 rejected_rows=rejected_rows, rejected_rows_source=rejected_source)
        report = run_checks(suite, checks, warehouse, options, rejected_rows=rejected_rows,
                            rejected_source=rejected_source, location=location, now=now)
    finally:
        warehouse.close()
    log_failures(report, settings.quality_failure_sample_size)
    log.info("quality run finished", **report.summary())
    if not report.success:
        alerts.dispatch(report, settings)
    return report
