"""Turn GX validation results into flat outcomes, and keep them: one JSON file per run, rows in a DuckDB table.

The quality-results table lives in `<state_dir>/quality/results.duckdb` (table `quality_results`), apart from
`warehouse.duckdb`, so dbt (writing the warehouse) and GX (writing results) never wait on DuckDB's single-writer
lock. The dashboard opens it read-only.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

RESULTS_DB = "results.duckdb"
RESULTS_TABLE = "quality_results"

RESULTS_DDL = f"""
CREATE TABLE IF NOT EXISTS {RESULTS_TABLE} (
    run_id VARCHAR NOT NULL,
    suite VARCHAR NOT NULL,
    asset VARCHAR NOT NULL,
    expectation VARCHAR NOT NULL,
    column_name VARCHAR,
    success BOOLEAN NOT NULL,
    severity VARCHAR NOT NULL,
    observed_value VARCHAR,
    unexpected_count BIGINT,
    run_at TIMESTAMPTZ NOT NULL,
    docs_path VARCHAR,
    results_path VARCHAR
)
"""


@dataclass(frozen=True)
class Outcome:
    """One expectation's result on one batch, with what a human needs to find the bad rows."""

    suite: str
    asset: str
    expectation: str
    column: str | None
    success: bool
    severity: str
    observed_value: Any
    unexpected_count: int | None = None
    element_count: int | None = None
    unexpected_rows: list[int] = field(default_factory=list)
    failing_sample: list[Any] = field(default_factory=list)
    failing_keys: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def critical_failure(self) -> bool:
        return not self.success and self.severity == "critical"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunReport:
    """Everything one `run` produced; `success` means no critical expectation failed."""

    run_id: str
    suite: str
    started_at: dt.datetime
    finished_at: dt.datetime
    outcomes: list[Outcome]
    warehouse: str
    rejected_rows: int | None
    rejected_rows_source: str
    docs_index: Path | None = None
    results_path: Path | None = None

    @property
    def critical_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.critical_failure]

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def success(self) -> bool:
        return not self.critical_failures

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "suite": self.suite,
            "success": self.success,
            "expectations": len(self.outcomes),
            "failed": len(self.failures),
            "critical_failed": len(self.critical_failures),
            "docs_index": str(self.docs_index) if self.docs_index else None,
            "results_path": str(self.results_path) if self.results_path else None,
        }


def jsonable(value: Any) -> Any:
    """A JSON-ready copy: NaN/NaT become None, timestamps ISO text, numpy scalars Python numbers."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        try:
            return value.isoformat()
        except ValueError:  # pandas NaT formats as an error on some versions
            return None
    if hasattr(value, "item"):  # numpy scalar
        return jsonable(value.item())
    text = str(value)
    return None if text in ("NaT", "<NA>", "nan") else text


def outcome_from_gx(suite: str, asset: str, result: Any, sample_size: int) -> Outcome:
    """Flatten one GX ExpectationValidationResult."""
    config = result.expectation_config
    kwargs = dict(config.kwargs)
    meta = dict(config.meta or {})
    res: dict[str, Any] = dict(result.result or {})
    exception = result.exception_info or {}
    error = exception.get("exception_message") if exception.get("raised_exception") else None
    unexpected_list = res.get("unexpected_list", res.get("partial_unexpected_list", []))
    observed = res.get("observed_value")
    if observed is None and "unexpected_count" in res:
        observed = {
            "unexpected_count": res.get("unexpected_count"),
            "element_count": res.get("element_count"),
            "unexpected_percent": res.get("unexpected_percent"),
        }
    if error is not None and observed is None:
        observed = {"error": error}
    rows = [int(i) for i in res.get("unexpected_index_list") or [] if isinstance(i, (int, float))]
    return Outcome(
        suite=suite,
        asset=asset,
        expectation=config.type,
        column=kwargs.get("column"),
        success=bool(result.success),
        severity=str(meta.get("severity", "critical")),
        observed_value=jsonable(observed),
        unexpected_count=res.get("unexpected_count"),
        element_count=res.get("element_count"),
        unexpected_rows=rows,
        failing_sample=jsonable(list(unexpected_list)[:sample_size]),
        kwargs=jsonable({k: v for k, v in kwargs.items() if k not in ("batch_id",)}),
        error=error,
    )


def load_failure(suite: str, asset: str, source: str, message: str) -> Outcome:
    """A batch that could not be loaded is itself a critical failure: nothing downstream can be trusted."""
    return Outcome(
        suite=suite,
        asset=asset,
        expectation="batch_loads",
        column=None,
        success=False,
        severity="critical",
        observed_value={"error": message},
        kwargs={"source": source},
        error=message,
    )


def write_run_json(report: RunReport, path: Path, gx_results: Mapping[str, Any]) -> Path:
    """The run's complete record: our outcomes plus GX's own validation results, as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **report.summary(),
        "started_at": report.started_at.isoformat(),
        "finished_at": report.finished_at.isoformat(),
        "warehouse": report.warehouse,
        "rejected_rows": report.rejected_rows,
        "rejected_rows_source": report.rejected_rows_source,
        "outcomes": [o.to_dict() for o in report.outcomes],
        "gx_results": jsonable(dict(gx_results)),
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def result_rows(report: RunReport) -> list[tuple[Any, ...]]:
    docs = str(report.docs_index) if report.docs_index else None
    results = str(report.results_path) if report.results_path else None
    return [
        (report.run_id, report.suite, o.asset, o.expectation, o.column, o.success, o.severity,
         json.dumps(o.observed_value, sort_keys=True, default=str), o.unexpected_count, report.finished_at,
         docs, results)
        for o in report.outcomes
    ]


def append_results(db_path: Path, rows: Sequence[tuple[Any, ...]]) -> int:
    """Append rows to `quality_results` in one transaction (the file is created on first use)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db_path))
    try:
        con.execute(RESULTS_DDL)
        con.execute("BEGIN")
        if rows:
            con.executemany(f"INSERT INTO {RESULTS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(rows))
        con.execute("COMMIT")
    finally:
        con.close()
    return len(rows)


def read_results(db_path: Path, run_id: str | None = None) -> list[dict[str, Any]]:
    """Rows of the results table (one run's, or all), as dicts: what the dashboard reads."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        query = f"SELECT * FROM {RESULTS_TABLE}"
        params: list[Any] = []
        if run_id is not None:
            query += " WHERE run_id = ?"
            params.append(run_id)
        cursor = con.execute(query + " ORDER BY run_at, asset, expectation, column_name", params)
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()

