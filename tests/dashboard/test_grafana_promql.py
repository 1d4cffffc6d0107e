"""Every Grafana panel's PromQL against the local stack's Prometheus: it parses and returns series."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.local_stack import LocalStack

DASHBOARDS = Path(__file__).resolve().parents[2] / "helm" / "eventpipe-operator" / "dashboards"
TARGETS = [(path.stem, panel["title"], target["expr"])
           for path in sorted(DASHBOARDS.glob("*.json"))
           for panel in json.loads(path.read_text())["panels"]
           for target in panel["targets"]]


def test_the_dashboards_have_panels() -> None:
    assert {board for board, _, _ in TARGETS} == {"pipeline-overview", "ingest", "quality"}
    assert len(TARGETS) >= 25


@pytest.mark.parametrize(("board", "title", "expr"), TARGETS, ids=[f"{b}:{t}:{e[:40]}" for b, t, e in TARGETS])
def test_panel_query_returns_series(live_stack: LocalStack, board: str, title: str, expr: str) -> None:
    result = live_stack.query(expr)
    assert result, f"{board} / {title}: {expr} returned no series"
