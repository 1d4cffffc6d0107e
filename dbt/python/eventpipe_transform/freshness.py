"""Source freshness of the raw tables: `dbt source freshness` before each build, its verdict kept in
`<state_dir>/freshness.json` for `eventpipe status` and logged (warn/error as the thresholds say).

A stale source does not stop the build (the models are still right for the data there is); it is reported.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

from eventpipe_common.logging import get_logger

from eventpipe_transform.runner import invoke_dbt
from eventpipe_transform.settings import TransformSettings


@dataclass(frozen=True)
class SourceFreshness:
    """One source's verdict: pass, warn, error or runtime error."""

    source: str
    status: str
    max_loaded_at: str | None
    age_seconds: float | None
    message: str | None = None


@dataclass(frozen=True)
class FreshnessReport:
    checked_at: str
    warn_after_minutes: int
    error_after_minutes: int
    sources: list[SourceFreshness]

    @property
    def status(self) -> str:
        """The worst verdict: error (or runtime error) > warn > pass; 'none' when no source has a check."""
        statuses = {s.status for s in self.sources}
        for worst in ("runtime error", "error", "warn", "pass"):
            if worst in statuses:
                return worst
        return "none"

    def to_dict(self) -> dict[str, Any]:
        return {"checked_at": self.checked_at, "status": self.status, "warn_after_minutes": self.warn_after_minutes,
                "error_after_minutes": self.error_after_minutes, "sources": [asdict(s) for s in self.sources]}


def _source(result: Any) -> SourceFreshness:
    node = result.node
    max_loaded_at = getattr(result, "max_loaded_at", None)
    age = getattr(result, "age", None)
    return SourceFreshness(
        source=f"{node.source_name}.{node.name}",
        status=str(result.status),
        max_loaded_at=max_loaded_at.isoformat() if isinstance(max_loaded_at, dt.datetime) else None,
        age_seconds=round(float(age), 3) if isinstance(age, (int, float)) else None,
        message=getattr(result, "message", None),
    )


def check_freshness(settings: TransformSettings, dbt_vars: dict[str, Any]) -> FreshnessReport:
    """Run `dbt source freshness`, write the report next to the warehouse, log one line per source."""
    log = get_logger()
    result = invoke_dbt(["source", "freshness"], settings, dbt_vars)  # dbt's own report: target/sources.json
    results = getattr(result.result, "results", None) or []
    report = FreshnessReport(
        checked_at=dt.datetime.now(dt.UTC).isoformat(),
        warn_after_minutes=settings.freshness_warn_after_minutes,
        error_after_minutes=settings.freshness_error_after_minutes,
        sources=[_source(item) for item in results],
    )
    if not report.sources and result.exception is not None:
        report = FreshnessReport(report.checked_at, report.warn_after_minutes, report.error_after_minutes,
                                 [SourceFreshness("eventpipe", "runtime error", None, None, str(result.exception))])
    for source in report.sources:
        level = {"pass": "info", "warn": "warning"}.get(source.status, "error")
        getattr(log, level)("source freshness", source=source.source, status=source.status,
                            max_loaded_at=source.max_loaded_at, age_seconds=source.age_seconds,
                            detail=source.message)
    settings.freshness_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = settings.freshness_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report.to_dict(), indent=2))
    tmp.replace(settings.freshness_path)
    return report
