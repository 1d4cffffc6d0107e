"""Helpers of the dbt tests: a pipeline's state dir with its Iceberg tables built by the transform's CLI or by the
models compiled once (compiled_models.py), and the CLI run as a subprocess."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from eventpipe_transform import cli
from eventpipe_transform.runner import run_dbt
from eventpipe_transform.settings import TransformSettings
from eventpipe_transform.sources import resolve_sources

from tests.helpers.compiled_models import CompiledProject, failing_tests, materialize
from tests.helpers.pipeline_writer import NAMESPACE, PipelineWriter

COMMIT_EPOCH = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


@dataclass
class Pipeline:
    """One pipeline's state dir: its Iceberg tables and, after build(), its warehouse.duckdb."""

    state_dir: Path
    writer: PipelineWriter

    def commit(self, events: Sequence[dict[str, Any]]) -> None:
        """A consumer commit, ingested one minute after the previous one."""
        self.writer.commit(events, COMMIT_EPOCH + dt.timedelta(minutes=self.writer.commits))

    def build(self, *extra: str) -> int:
        """`python -m eventpipe_transform build --state-dir ...`, in-process (the CLI's own main)."""
        return cli.main(["build", "--state-dir", str(self.state_dir), *extra])

    def query(self, sql: str) -> list[dict[str, Any]]:
        with duckdb.connect(str(self.state_dir / "warehouse.duckdb"), read_only=True) as conn:
            cursor = conn.execute(sql)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@dataclass
class ReusedPipeline(Pipeline):
    """A pipeline in one fixed state dir, emptied for each example, built by real dbt runs whose command line
    never changes: the sources are copies of the tables' current metadata files at fixed paths. dbt then parses
    the project once per test run (partial parsing: same files, vars, profile and target dir) instead of once
    per build, and a build costs what dbt's incremental run itself costs."""

    project: CompiledProject
    engine: duckdb.DuckDBPyConnection

    def reset(self) -> None:
        """Drop the tables and the warehouse; dbt's target dir (the parsed project) stays."""
        for name in ("catalog.db", "warehouse.duckdb", "warehouse.duckdb.wal"):
            (self.state_dir / name).unlink(missing_ok=True)
        for name in ("warehouse", "current"):
            shutil.rmtree(self.state_dir / name, ignore_errors=True)
        self.writer = PipelineWriter(self.state_dir)

    def load(self) -> None:
        """A first build from the compiled models (what dbt's first run creates, compiled_models.materialize);
        dbt itself runs the incremental builds after it."""
        failures = materialize(self.project, self.writer, self.engine)
        assert failures == [], failures

    def build(self, *extra: str) -> int:
        """`dbt run`, then the project's data tests as compiled once (compiled_models.failing_tests): what
        `dbt build` checks, without a second pass of dbt over the project."""
        dbt_vars = resolve_sources(self.writer.catalog, NAMESPACE).dbt_vars()
        current = self.state_dir / "current"
        current.mkdir(exist_ok=True)
        for var in ("raw_events_metadata", "raw_events_rejected_metadata"):
            stable = current / f"{var.removesuffix('_metadata')}.metadata.json"
            shutil.copyfile(Path(dbt_vars[var].removeprefix("file://")), stable)
            dbt_vars[var] = stable.as_uri()
        outcome = run_dbt(["run"], TransformSettings(state_dir=self.state_dir), dbt_vars, extra)
        if not outcome.ok:
            return 1
        failures = failing_tests(self.project, self.writer, self.engine)
        assert failures == [], failures
        return 0


def run_cli(state_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The transform's CLI in a subprocess, as the local stack and Airflow run it."""
    return subprocess.run([sys.executable, "-m", "eventpipe_transform", *args, "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
                          check=False)
