"""The Quality page's data: scorecards and trends per suite and expectation from the quality-results table.

`<state>/quality/results.duckdb`, table `quality_results`, one row per expectation per run (written by
eventpipe_quality, gx/src/eventpipe_quality/results.py). Each run links to its Data Docs page (Property 33).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

COLUMNS = ["run_id", "suite", "asset", "expectation", "column_name", "success", "severity", "observed_value",
           "unexpected_count", "run_at", "docs_path", "results_path"]


class ResultsUnavailableError(RuntimeError):
    """No results to show: no run yet, or the file is being written."""


def read_results(db_path: Path, attempts: int = 20, delay: float = 0.25) -> pd.DataFrame:
    """Every row of quality_results (run_at as UTC instants); an empty frame when no run was recorded yet."""
    import duckdb

    if not db_path.exists():
        return pd.DataFrame(columns=COLUMNS)
    for attempt in range(attempts):
        try:
            connection = duckdb.connect(str(db_path), read_only=True)
        except duckdb.IOException as exc:
            if attempt == attempts - 1:
                raise ResultsUnavailableError(f"the results file is being written: {exc}") from exc
            time.sleep(delay)
            continue
        try:
            connection.execute("SET TimeZone = 'UTC'")
            frame = connection.execute(f"select {', '.join(COLUMNS)} from quality_results order by run_at").df()
        except duckdb.CatalogException:
            return pd.DataFrame(columns=COLUMNS)
        finally:
            connection.close()
        frame["run_at"] = pd.to_datetime(frame["run_at"], utc=True)
        return frame
    raise ResultsUnavailableError("the results file could not be opened")


def docs_link(docs_path: str | None, base_url: str = "") -> str | None:
    """Where a run's Data Docs page is: under the published site when one is set, else the local file."""
    if not docs_path:
        return None
    path = Path(docs_path)
    if base_url:
        parts = path.parts
        tail = "/".join(parts[parts.index("data_docs") + 1:]) if "data_docs" in parts else path.name
        return f"{base_url}/{tail}"
    return path.resolve().as_uri()


def runs(results: pd.DataFrame, base_url: str = "") -> pd.DataFrame:
    """One row per run: suite, run_id, run_at, expectations, passed, failed, critical_failed, pass_rate, docs."""
    if results.empty:
        return pd.DataFrame(columns=["suite", "run_id", "run_at", "expectations", "passed", "failed",
                                     "critical_failed", "pass_rate", "docs"])
    frame = results.assign(
        passed=results["success"].astype(bool).astype(int),
        failed=(~results["success"].astype(bool)).astype(int),
        critical_failed=((~results["success"].astype(bool)) & (results["severity"] == "critical")).astype(int))
    grouped = frame.groupby(["suite", "run_id"], as_index=False).agg(
        run_at=("run_at", "max"), expectations=("expectation", "size"), passed=("passed", "sum"),
        failed=("failed", "sum"), critical_failed=("critical_failed", "sum"), docs_path=("docs_path", "first"))
    grouped["pass_rate"] = grouped["passed"] / grouped["expectations"]
    grouped["docs"] = [docs_link(p, base_url) for p in grouped["docs_path"]]
    ordered = grouped.drop(columns=["docs_path"]).sort_values(["suite", "run_at", "run_id"])
    return ordered.reset_index(drop=True)


def scorecards(results: pd.DataFrame, base_url: str = "") -> pd.DataFrame:
    """The latest run of each suite (the page's scorecards)."""
    every = runs(results, base_url)
    if every.empty:
        return every
    return every.groupby("suite", as_index=False).tail(1).reset_index(drop=True)


def expectations(results: pd.DataFrame, suite: str) -> pd.DataFrame:
    """Per expectation of a suite: its result in the latest run, and its pass rate over every run (trend)."""
    rows = results[results["suite"] == suite]
    if rows.empty:
        return pd.DataFrame(columns=["asset", "expectation", "column_name", "severity", "last_success",
                                     "observed_value", "runs", "pass_rate"])
    latest_run = runs(rows)["run_id"].iloc[-1]  # the scorecard's latest run: by run time, then run id on a tie
    key = ["asset", "expectation", "column_name"]
    keyed = rows.assign(column_name=rows["column_name"].fillna(""), ok=rows["success"].astype(bool).astype(int))
    history = keyed.groupby(key, as_index=False).agg(runs=("run_id", "nunique"), pass_rate=("ok", "mean"))
    last = keyed[keyed["run_id"] == latest_run][[*key, "severity", "success", "observed_value"]]
    last = last.rename(columns={"success": "last_success"})
    merged = last.merge(history, on=key, how="left")
    ordered: pd.DataFrame = merged.sort_values(["last_success", "asset", "expectation", "column_name"])
    return ordered.reset_index(drop=True)


@dataclass(frozen=True)
class Totals:
    suites: int
    runs: int
    failing_suites: int


def totals(results: pd.DataFrame) -> Totals:
    cards = scorecards(results)
    return Totals(int(cards["suite"].nunique()) if not cards.empty else 0,
                  int(results["run_id"].nunique()) if not results.empty else 0,
                  int((cards["critical_failed"] > 0).sum()) if not cards.empty else 0)
