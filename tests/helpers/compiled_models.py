"""The dbt project compiled once (`eventpipe_transform compile`, dbt's own compiler), then run on DuckDB for
each example's data: the property tests check the real models' SQL on many examples at the cost of a few
queries each, instead of a dbt invocation (seconds) per example.

Only the data changes between examples: the compiled SQL names the Iceberg metadata files of the pipeline it was
compiled for, and `materialize` points it at another pipeline's files. A first build of every model is
`create table|view <relation> as <compiled select>` whatever its materialization (an incremental model's first
run is a plain create); the project's data tests then run as `dbt build` runs them (count the rows a test of
severity error selects; any is a failure). Incremental runs are dbt's own: Property 37 runs real dbt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import yaml
from eventpipe_transform import cli
from eventpipe_transform.duckdb_plugin import load_iceberg
from eventpipe_transform.settings import DEFAULT_PROJECT_DIR
from eventpipe_transform.sources import SourceTables, resolve_sources

from tests.helpers.pipeline_writer import PipelineWriter


@dataclass(frozen=True)
class CompiledNode:
    """A model or data test as compiled by dbt."""

    unique_id: str
    sql: str
    materialized: str
    relation: str | None
    schema: str


@dataclass(frozen=True)
class CompiledProject:
    """Models in dependency order and data tests, compiled for the pipeline whose sources are `sources`, into
    the DuckDB database `database` (the warehouse file's name)."""

    sources: SourceTables
    database: str
    models: list[CompiledNode]
    tests: list[CompiledNode]

    def sql_for(self, node: CompiledNode, sources: SourceTables) -> str:
        """The node's SQL reading `sources` instead of the compiled-for pipeline's tables."""
        sql = node.sql
        for var in ("raw_events_metadata", "raw_events_rejected_metadata"):
            sql = sql.replace(f"'{getattr(self.sources, var)}'", f"'{getattr(sources, var)}'")
        return sql


def duckdb_settings() -> dict[str, Any]:
    """The `settings` of profiles.yml's duckdb target (time zone, no extension autoloading), applied to each
    example's connection as dbt-duckdb applies them."""
    profile = yaml.safe_load((DEFAULT_PROJECT_DIR / "profiles.yml").read_text())
    settings: dict[str, Any] = profile["eventpipe"]["outputs"]["duckdb"]["settings"]
    return settings


def _in_dependency_order(models: dict[str, dict[str, Any]]) -> list[str]:
    order: list[str] = []

    def visit(unique_id: str) -> None:
        if unique_id in order:
            return
        for parent in models[unique_id]["depends_on"]["nodes"]:
            if parent in models:
                visit(parent)
        order.append(unique_id)

    for unique_id in sorted(models):
        visit(unique_id)
    return order


def compile_project(writer: PipelineWriter) -> CompiledProject:
    """`python -m eventpipe_transform compile` for the pipeline of `writer` (its tables must exist), read back
    from dbt's manifest."""
    state_dir = writer.state_dir
    assert cli.main(["compile", "--state-dir", str(state_dir)]) == 0, "dbt compile failed: see the log above"
    manifest = json.loads((state_dir / "dbt" / "target" / "manifest.json").read_text())
    nodes = manifest["nodes"]

    def node(unique_id: str) -> CompiledNode:
        raw = nodes[unique_id]
        return CompiledNode(unique_id=unique_id, sql=raw["compiled_code"], materialized=raw["config"]["materialized"],
                            relation=raw.get("relation_name"), schema=raw["schema"])

    models = {k: v for k, v in nodes.items() if v["resource_type"] == "model"}
    # As `dbt build` fails: only tests of severity error (a warn test's rows are a warning).
    tests = sorted(k for k, v in nodes.items()
                   if v["resource_type"] == "test" and v["config"]["severity"].lower() == "error")
    sources = resolve_sources(writer.catalog, "shop")
    compiled = [node(k) for k in _in_dependency_order(models)]
    for location in (sources.raw_events_metadata, sources.raw_events_rejected_metadata):
        assert any(f"'{location}'" in model.sql for model in compiled), f"no model reads {location}"
    [database] = {nodes[k]["database"] for k in models}
    return CompiledProject(sources=sources, database=database, models=compiled,
                           tests=[node(k) for k in tests])


def open_engine() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB for every example, with the profile's settings and the extensions loaded once:
    loading the iceberg extension costs more than an example's queries. Each example's warehouse is attached
    to it in turn."""
    engine = duckdb.connect()
    for name, value in duckdb_settings().items():
        engine.execute(f"set {name} = {json.dumps(value) if isinstance(value, bool) else repr(str(value))}")
    load_iceberg(engine)
    return engine


def materialize(project: CompiledProject, writer: PipelineWriter, engine: duckdb.DuckDBPyConnection) -> list[str]:
    """Build every model into `<state_dir>/warehouse.duckdb` from the pipeline's tables, then run the data tests;
    returns the unique ids of the tests that failed (`failing_tests`)."""
    sources = resolve_sources(writer.catalog, "shop")
    with attached(project, writer, engine):
        for model in project.models:
            assert model.relation is not None, model.unique_id
            kind = "view" if model.materialized == "view" else "table"
            engine.execute(f'create schema if not exists "{project.database}"."{model.schema}"')
            engine.execute(f"create {kind} {model.relation} as {project.sql_for(model, sources)}")
    return failing_tests(project, writer, engine)


def failing_tests(project: CompiledProject, writer: PipelineWriter, engine: duckdb.DuckDBPyConnection) -> list[str]:
    """The project's data tests on the pipeline's warehouse (however it was built): the unique ids of those that
    selected rows, the failures as `dbt build` counts them."""
    sources = resolve_sources(writer.catalog, "shop")
    failures = []
    with attached(project, writer, engine):
        for test in project.tests:
            row = engine.execute(f"select count(*) from ({project.sql_for(test, sources)}) as dbt_internal_test")
            count = row.fetchone()
            if count is None or count[0] != 0:
                failures.append(test.unique_id)
    return failures


@contextmanager
def attached(project: CompiledProject, writer: PipelineWriter, engine: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """`<state_dir>/warehouse.duckdb` attached under the compiled database name, then detached again, so that
    the test (or dbt) can open the file on its own, as GX and the dashboard do."""
    path = str(writer.state_dir / "warehouse.duckdb").replace("'", "''")
    engine.execute(f"attach '{path}' as \"{project.database}\"")
    try:
        yield
    finally:
        engine.execute(f'detach "{project.database}"')
