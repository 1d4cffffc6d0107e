"""Property 30 and the results contract: each run keeps its JSON, appends rows to `quality_results`, and builds
Data Docs that render offline; the marts suite finds each injected inconsistency; the rejected share reads the
real Iceberg table."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from eventpipe_common.errors import DependencyUnavailableError
from eventpipe_quality.assets import remote_urls
from eventpipe_quality.rejected import count_rejected
from eventpipe_quality.results import read_results
from eventpipe_quality.settings import QualitySettings
from eventpipe_quality.suites import SuiteParams, marts_suite, staging_suite
from eventpipe_quality.warehouse import BatchLoadError, DuckDBWarehouse, SqlAlchemyWarehouse
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers.gx_support import NOW, gx_examples, run_on
from tests.helpers.warehouse_data import EVENT_TYPES, event_row, marts_rows, user_row, write_marts, write_staging

PARAMS = SuiteParams(now=NOW, event_types=EVENT_TYPES)
LOCAL_REF = re.compile(r"""\b(?:src|href)=["']([^"'#][^"']*)["']""")

# Each inconsistency a dbt bug could leave in the marts, and the one expectation that must catch it.
INJECTIONS: dict[str, tuple[str, str, str]] = {
    "duplicate_user_sk": ("marts.dim_users", "expect_column_values_to_be_unique", "user_sk"),
    "two_current_versions": ("marts.dim_users_current_versions", "expect_column_values_to_be_between",
                             "current_versions"),
    "dangling_product_sk": ("marts.fact_events", "expect_column_values_to_be_in_set", "product_sk_resolves"),
    "lost_fact_row": ("marts.row_count_reconciliation", "expect_column_values_to_be_between", "relative_gap"),
}


def inject(data: dict[str, list[dict[str, Any]]], kind: str) -> None:
    if kind == "duplicate_user_sk":
        # the old version of u1 takes the key of its current version (which the facts reference)
        data["dim_users"][2]["user_sk"] = data["dim_users"][3]["user_sk"]
    elif kind == "two_current_versions":
        data["dim_users"][0]["is_current"] = True
    elif kind == "dangling_product_sk":
        row = next(f for f in data["fact_events"] if f["product_sk"] is not None)
        row["product_sk"] = "ps-unknown"
    elif kind == "lost_fact_row":
        data["fact_events"].pop()


def assert_renders_offline(docs_index: Path) -> None:
    """No page or GX stylesheet names a remote URL, and every local file a page references exists."""
    site = docs_index.parent
    pages = list(site.rglob("*.html"))
    assert pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert remote_urls(text) == [], page
        for ref in LOCAL_REF.findall(text):
            target = (page.parent / ref.split("?")[0]).resolve()
            assert target.exists(), f"{page}: {ref}"
    for css in site.rglob("*.css"):
        assert remote_urls(css.read_text(encoding="utf-8")) == [], css
    vendor = site.parent.parent.parent / "vendor"
    for css in vendor.rglob("*.css"):
        text = css.read_text(encoding="utf-8")
        assert not re.search(r"""@import|url\(\s*["']?(?:https?:)?//""", text), css


@given(kinds=st.sets(st.sampled_from(sorted(INJECTIONS))))
@gx_examples(6)
def test_failures_generate_reports(kinds: set[str], tmp_path_factory: pytest.TempPathFactory,
                                   assets_dir: Path) -> None:
    """Property 30: Validation failures generate reports — for any set of injected marts inconsistencies, exactly
    the expectations that catch them fail, and the run leaves a JSON record, one quality_results row per
    expectation, and Data Docs (one validation page per batch) that render offline."""
    data = marts_rows(n_users=4, n_products=3, n_events=21)
    for kind in kinds:
        inject(data, kind)
    tmp = tmp_path_factory.mktemp("p30")
    write_marts(tmp / "warehouse.duckdb", data)

    report = run_on(tmp / "warehouse.duckdb", "marts", marts_suite(PARAMS), tmp / "quality", assets_dir)

    expected = {INJECTIONS[k] for k in kinds}
    assert {(o.asset, o.expectation, o.column) for o in report.failures} == expected
    assert report.success == (not expected)

    assert report.results_path is not None and report.results_path.is_file()
    document = json.loads(report.results_path.read_text())
    assert document["run_id"] == report.run_id and document["success"] == report.success
    assert {(o["asset"], o["expectation"], o["column"]) for o in document["outcomes"] if not o["success"]} == expected
    assert set(document["gx_results"]) == {c.name for c in marts_suite(PARAMS)}

    rows = read_results(tmp / "quality" / "results.duckdb", report.run_id)
    assert len(rows) == len(report.outcomes)
    assert {(r["asset"], r["expectation"], r["column_name"]) for r in rows if not r["success"]} == expected
    for row in rows:
        assert row["suite"] == "marts" and row["severity"] in ("critical", "warning")
        assert row["docs_path"] == str(report.docs_index)
        if not row["success"]:
            assert json.loads(row["observed_value"]) is not None and row["unexpected_count"]

    assert report.docs_index is not None and report.docs_index.is_file()
    index = report.docs_index.read_text()
    for check in marts_suite(PARAMS):
        pages = list((report.docs_index.parent / "validations").rglob(f"*{check.name}.html"))
        assert len(pages) == 1, check.name
        assert check.name.split(".")[1] in index
    assert_renders_offline(report.docs_index)


def test_results_accumulate_across_runs(tmp_path: Path, assets_dir: Path) -> None:
    events = [event_row(i) for i in range(10)]
    write_staging(tmp_path / "warehouse.duckdb", events, [user_row(0)])
    first = run_on(tmp_path / "warehouse.duckdb", "staging", staging_suite(PARAMS), tmp_path / "q", assets_dir)
    events[2]["event_id"] = None
    write_staging(tmp_path / "warehouse.duckdb", events, [user_row(0)])
    second = run_on(tmp_path / "warehouse.duckdb", "staging", staging_suite(PARAMS), tmp_path / "q", assets_dir)
    assert first.success and not second.success
    rows = read_results(tmp_path / "q" / "results.duckdb")
    assert {r["run_id"] for r in rows} == {first.run_id, second.run_id}
    assert len(rows) == len(first.outcomes) + len(second.outcomes)
    assert first.results_path and second.results_path and first.results_path != second.results_path
    assert first.results_path.is_file() and second.results_path.is_file()
    assert_renders_offline(second.docs_index)  # type: ignore[arg-type]


def test_a_missing_table_is_a_critical_failure_not_a_crash(tmp_path: Path, assets_dir: Path) -> None:
    write_staging(tmp_path / "warehouse.duckdb", [event_row(0)], [user_row(0)])  # staging only: no marts yet
    report = run_on(tmp_path / "warehouse.duckdb", "marts", marts_suite(PARAMS), tmp_path / "q", assets_dir)
    assert not report.success
    loads = [o for o in report.failures if o.expectation == "batch_loads"]
    assert {o.asset for o in loads} == {c.name for c in marts_suite(PARAMS)}
    assert all("marts.dim_users" in (o.error or "") or "marts." in (o.error or "") for o in loads)


def write_rejected(settings: QualitySettings, count: int) -> None:
    from eventpipe_common.tables import RAW_EVENTS_REJECTED, raw_events_rejected_schema
    from pyiceberg.catalog import load_catalog

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    catalog = load_catalog(settings.catalog_name, **settings.resolved_catalog_properties())
    catalog.create_namespace_if_not_exists(settings.namespace)
    schema = raw_events_rejected_schema()
    # Unpartitioned: pyiceberg's partitioned append needs pyiceberg-core, which the analytics image does not
    # carry (the consumer writes through the Rust core); the count does not depend on the layout.
    table = catalog.create_table((settings.namespace, RAW_EVENTS_REJECTED), schema=schema)
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    rows = pa.Table.from_pylist(
        [{"raw": f"{{bad {i}", "reasons": "[]", "line": i + 1, "source": "ingest", "job_id": "j",
          "shard_id": None, "sequence_number": None, "rejected_at": now} for i in range(count)],
        schema=schema.as_arrow(),
    )
    table.append(rows)


def test_rejected_share_reads_the_iceberg_table(tmp_path: Path, assets_dir: Path) -> None:
    """7 rejected against 10 accepted: the share (7/17) is above the 5% threshold, a critical failure."""
    config = QualitySettings(state_dir=tmp_path / "state", namespace="shop")
    with pytest.raises(DependencyUnavailableError, match="--rejected-count"):
        count_rejected(config)
    write_rejected(config, 7)
    assert count_rejected(config) == 7

    write_staging(tmp_path / "warehouse.duckdb", [event_row(i) for i in range(10)], [user_row(0)])
    params = SuiteParams(now=NOW, event_types=EVENT_TYPES, rejected_rows=count_rejected(config))
    report = run_on(tmp_path / "warehouse.duckdb", "staging", staging_suite(params), tmp_path / "q", assets_dir)
    [share] = [o for o in report.outcomes if o.column == "rejected_share"]
    assert not share.success and share.severity == "critical"
    assert share.failing_sample == [pytest.approx(7 / 17)]
    assert [o.column for o in report.failures] == ["rejected_share"]


def test_allowed_event_types_follow_the_pipeline_schema(tmp_path: Path) -> None:
    assert QualitySettings().allowed_event_types() == list(EVENT_TYPES)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"event_types": ["click", "view"]}))
    assert QualitySettings(schema_path=schema).allowed_event_types() == ["click", "view"]
    schema.write_text(json.dumps({"fields": []}))
    assert QualitySettings(schema_path=schema).allowed_event_types() is None  # any type, as in the core
    checks = staging_suite(SuiteParams(now=NOW, event_types=None))
    assert not any(e.expectation_type == "expect_column_values_to_be_in_set" for e in checks[0].expectations)
    schema.write_text('{\n  "event_types": [\n')
    with pytest.raises(Exception, match="line 3"):
        QualitySettings(schema_path=schema).allowed_event_types()


def test_sqlalchemy_warehouse_reads_frames_and_hides_passwords(tmp_path: Path) -> None:
    """The remote-warehouse path (Snowflake in production) on a real SQLite database through SQLAlchemy."""
    import sqlite3

    db = tmp_path / "w.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (a INTEGER, b TEXT)")
        con.execute("INSERT INTO t VALUES (1, 'x'), (2, NULL)")
    warehouse = SqlAlchemyWarehouse(f"sqlite:///{db}")
    try:
        frame = warehouse.frame("SELECT a, b FROM t ORDER BY a")
        assert frame["a"].tolist() == [1, 2]
        with pytest.raises(BatchLoadError, match="no such table"):
            warehouse.frame("SELECT * FROM missing")
    finally:
        warehouse.close()
    with pytest.raises(DependencyUnavailableError) as info:
        SqlAlchemyWarehouse("nosuchdriver://user:Hunter2-secret@host/db")
    assert "Hunter2-secret" not in str(info.value)


def test_duckdb_warehouse_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DependencyUnavailableError, match="does not exist"):
        DuckDBWarehouse(tmp_path / "absent.duckdb")
