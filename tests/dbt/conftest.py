"""Fixtures of the dbt suite: real Iceberg tables written by the pipeline's own writer, real dbt builds on
DuckDB through the transform's CLI, and a real fakesnow server for the snowflake target."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import eventpipe_core
import pytest
from eventpipe_transform import cli
from eventpipe_transform.runner import run_dbt
from eventpipe_transform.settings import TransformSettings
from eventpipe_transform.sources import resolve_sources

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compiled_models import CompiledProject, compile_project, failing_tests, materialize, open_engine
from pipeline_writer import NAMESPACE, PipelineWriter

REPO_ROOT = Path(__file__).resolve().parents[2]
FAKESNOW_BIN = REPO_ROOT / ".venvs" / "fakesnow" / "bin" / "fakesnow"
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


@pytest.fixture
def new_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Pipeline]:
    """A fresh state dir with the two Iceberg tables; `schema` is the pipeline schema (default: the shop's)."""
    def make(schema: dict[str, Any] | None = None) -> Pipeline:
        state = tmp_path_factory.mktemp("pipeline")
        writer = PipelineWriter(state) if schema is None else PipelineWriter(state, eventpipe_core.Schema(schema))
        return Pipeline(state, writer)
    return make


@pytest.fixture(scope="session")
def compiled_project(tmp_path_factory: pytest.TempPathFactory) -> CompiledProject:
    """The dbt project compiled once per test run, for an empty shop pipeline (only the data varies after)."""
    state = tmp_path_factory.mktemp("compiled-pipeline")
    return compile_project(PipelineWriter(state))


@pytest.fixture(scope="session")
def engine() -> Iterator[duckdb.DuckDBPyConnection]:
    """The DuckDB the compiled models and data tests run in (compiled_models.open_engine)."""
    connection = open_engine()
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def built_pipelines(tmp_path_factory: pytest.TempPathFactory, compiled_project: CompiledProject,
                    engine: duckdb.DuckDBPyConnection) -> Callable[[list[list[dict[str, Any]]]], Pipeline]:
    """A pipeline per example: the batches committed to its Iceberg tables, then the compiled models built on
    them and the project's data tests run (compiled_models.py: a few queries, where a dbt build costs seconds)."""
    def build(batches: list[list[dict[str, Any]]]) -> Pipeline:
        state = tmp_path_factory.mktemp("example-pipeline")
        pipeline = Pipeline(state, PipelineWriter(state))
        for batch in batches:
            pipeline.commit(batch)
        assert materialize(compiled_project, pipeline.writer, engine) == [], "a data test of the dbt project failed"
        return pipeline
    return build


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


@pytest.fixture(scope="session")
def reused_pipeline(tmp_path_factory: pytest.TempPathFactory, compiled_project: CompiledProject,
                    engine: duckdb.DuckDBPyConnection) -> Callable[[], ReusedPipeline]:
    """An empty pipeline for each example, always in the same state dir (ReusedPipeline)."""
    state = tmp_path_factory.mktemp("reused-pipeline")
    pipeline = ReusedPipeline(state, PipelineWriter(state), compiled_project, engine)

    def fresh() -> ReusedPipeline:
        pipeline.reset()
        return pipeline
    return fresh


def run_cli(state_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The transform's CLI in a subprocess, as the local stack and Airflow run it."""
    return subprocess.run([sys.executable, "-m", "eventpipe_transform", *args, "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
                          check=False)


@pytest.fixture(scope="session")
def fakesnow_port() -> Iterator[int]:
    """fakesnow's server mode (its own virtualenv: it needs DuckDB 2.x) on 127.0.0.1."""
    from servers import free_port, start_process

    subprocess.run([str(REPO_ROOT / "scripts" / "venv.sh"), "fakesnow"], check=True)
    port = free_port()
    server = start_process("fakesnow", [str(FAKESNOW_BIN), "-s", "--host", "127.0.0.1", "-p", str(port)], port)
    yield port
    server.stop()
