"""Fixtures of the dbt suite: real Iceberg tables written by the pipeline's own writer, real dbt builds on
DuckDB through the transform's CLI, and a real fakesnow server for the snowflake target."""

from __future__ import annotations

import datetime as dt
import json
import os
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_writer import PipelineWriter

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
def built_pipelines(tmp_path_factory: pytest.TempPathFactory) -> Callable[[list[list[dict[str, Any]]]], Pipeline]:
    """One build per distinct event set, shared by the property tests that draw the same examples (a build
    costs seconds; the tests only read the result)."""
    cache: dict[str, Pipeline] = {}

    def build(batches: list[list[dict[str, Any]]]) -> Pipeline:
        key = json.dumps(batches, sort_keys=True)
        if key not in cache:
            state = tmp_path_factory.mktemp("shared-pipeline")
            pipeline = Pipeline(state, PipelineWriter(state))
            for batch in batches:
                pipeline.commit(batch)
            assert pipeline.build() == 0, "dbt build failed: see the JSON log lines above"
            cache[key] = pipeline
        return cache[key]
    return build


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
