"""Fixtures of the dbt suite: real Iceberg tables written by the pipeline's own writer, real dbt builds on
DuckDB through the transform's CLI, and a real fakesnow server for the snowflake target. The helpers they use are
in tests/helpers/ (dbt_pipelines.py, compiled_models.py, pipeline_writer.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import eventpipe_core
import pytest

from tests.helpers.compiled_models import CompiledProject, compile_project, materialize, open_engine
from tests.helpers.dbt_pipelines import Pipeline, ReusedPipeline
from tests.helpers.pipeline_writer import PipelineWriter
from tests.helpers.servers import free_port, start_process

REPO_ROOT = Path(__file__).resolve().parents[2]
FAKESNOW_BIN = REPO_ROOT / ".venvs" / "fakesnow" / "bin" / "fakesnow"


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


@pytest.fixture(scope="session")
def fakesnow_port() -> Iterator[int]:
    """fakesnow's server mode (its own virtualenv: it needs DuckDB 2.x) on 127.0.0.1."""
    subprocess.run([str(REPO_ROOT / "scripts" / "venv.sh"), "fakesnow"], check=True)
    port = free_port()
    server = start_process("fakesnow", [str(FAKESNOW_BIN), "-s", "--host", "127.0.0.1", "-p", str(port)], port)
    yield port
    server.stop()
