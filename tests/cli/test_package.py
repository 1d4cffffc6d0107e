"""The CLI's package declares its own dependencies: in a fresh virtualenv holding only `services/common` and
`services/cli` (and what their pyproject.toml files pull in), `eventpipe --help` works and `eventpipe query` reads
a real Iceberg table (a TIMESTAMPTZ column included: DuckDB needs pytz to hand it to Python)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
from eventpipe_cli.catalog import load_catalog, settings_for
from eventpipe_common.tables import RAW_EVENTS, TABLE_PROPERTIES, raw_events_schema
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.partitioning import PartitionSpec

from tests.helpers.servers import REPO_ROOT


def _table_with_rows(state: Path, n: int) -> None:
    settings = settings_for(state)
    catalog = load_catalog(settings)
    catalog.create_namespace_if_not_exists(settings.namespace)
    table = catalog.create_table(f"{settings.namespace}.{RAW_EVENTS}", schema=raw_events_schema([]),
                                 partition_spec=PartitionSpec(), properties=TABLE_PROPERTIES)
    ts = dt.datetime(2026, 12, 3, 12, 30, tzinfo=dt.UTC)
    rows = [{"event_id": f"e{i}", "event_type": "page_view", "event_ts": ts, "event_date": ts.date(),
             "event_hour": 12, "user_id": "u_1", "session_id": None, "properties": "{}", "schema_version": 1,
             "ingested_at": ts, "job_id": "j", "shard_id": "s", "sequence_number": str(i)} for i in range(n)]
    table.append(pa.Table.from_pylist(rows, schema=schema_to_pyarrow(table.schema())))


@pytest.mark.timeout(900)
def test_the_cli_package_alone_installs_and_queries(tmp_path: Path) -> None:
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")  # where scripts/common.sh installs it
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", "3.11", str(venv)], check=True, timeout=120)
    install = subprocess.run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                              str(REPO_ROOT / "services" / "common"), str(REPO_ROOT / "services" / "cli")],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    eventpipe = venv / "bin" / "eventpipe"
    helped = subprocess.run([str(eventpipe), "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "query" in helped.stdout, helped.stdout + helped.stderr

    state = tmp_path / "state"
    state.mkdir()
    _table_with_rows(state, 7)
    queried = subprocess.run([str(eventpipe), "query", "--state-dir", str(state), "-o", "json",
                              "select count(*) as n, max(event_ts) as last from raw_events"],
                             capture_output=True, text=True, timeout=120)
    assert queried.returncode == 0, queried.stdout + queried.stderr
    answer = json.loads(queried.stdout)
    assert answer["rows"] == [{"n": 7, "last": "2026-12-03T12:30:00+00:00"}]
    # Nothing of the repository's other packages came along: the CLI's own dependencies were enough.
    listed = subprocess.run([uv, "pip", "list", "--python", str(venv / "bin" / "python")], capture_output=True,
                            text=True, check=True, timeout=60).stdout
    assert "eventpipe-ingest" not in listed and "eventpipe-consumer" not in listed and "pytz" in listed
