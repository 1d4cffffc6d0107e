"""The alert and recording rules (helm/eventpipe-operator/rules) with promtool, and what every alert must carry.

`promtool test rules` runs tests/eventpipe.rules.test.yaml: each alert fires on series that should fire it and
stays quiet on series that should not. The checks here keep that file complete: a new alert without a unit
test, a runbook section or one of its annotations fails.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "helm" / "eventpipe-operator" / "rules" / "eventpipe.rules.yaml"
RULE_TESTS = REPO / "helm" / "eventpipe-operator" / "rules" / "tests" / "eventpipe.rules.test.yaml"
DASHBOARDS = REPO / "helm" / "eventpipe-operator" / "dashboards"
RUNBOOKS = REPO / "docs" / "runbooks.md"
REQUIRED_ALERTS = {
    "EventPipeConsumerLagHigh", "EventPipeConsumerShardsStopped", "EventPipeConsumerFailedBatches",
    "EventPipeConsumerCommitFailures", "EventPipeIngestPublishFailures", "EventPipeKinesisThrottling",
    "EventPipeIngestErrorRatioHigh", "EventPipeIngestLatencyHigh", "EventPipeJobStoreErrors",
    "EventPipeOperatorReconcileErrors", "EventPipeNoCommitWhileEventsArrive", "EventPipeQualityFailure",
}


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: scripts/tools.sh prometheus installs it"
    return found


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_rules() -> None:
    out = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_unit_tests_pass() -> None:
    out = subprocess.run([promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                         cwd=RULE_TESTS.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_promtool_unit_tests_fail_on_a_broken_rule(tmp_path: Path) -> None:
    """The unit tests can fail: with the lag threshold raised above the test's lag, the 'fires' case fails."""
    broken = tmp_path / "rules" / "eventpipe.rules.yaml"
    broken.parent.mkdir()
    text = RULES.read_text()
    threshold = "(eventpipe_consumer_lag_seconds) > 300\n"
    assert threshold in text
    broken.write_text(text.replace(threshold, threshold.replace("300", "900")))
    tests = tmp_path / "rules" / "tests"
    tests.mkdir()
    shutil.copy(RULE_TESTS, tests / RULE_TESTS.name)
    out = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], capture_output=True, text=True, cwd=tests)
    assert out.returncode != 0
    assert "EventPipeConsumerLagHigh" in out.stdout + out.stderr


def test_every_required_alert_exists_with_severity_annotations_and_runbook() -> None:
    found = {rule["alert"]: rule for rule in alerts()}
    assert REQUIRED_ALERTS <= found.keys()
    anchors = {heading.strip().lower() for heading in re.findall(r"^## (.+)$", RUNBOOKS.read_text(), re.M)}
    for name, rule in found.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        for key in ("summary", "description", "runbook_url"):
            assert rule["annotations"].get(key), f"{name} has no {key}"
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert rule["annotations"]["runbook_url"].split("#")[0].endswith("docs/runbooks.md"), name
        assert anchor == name.lower() and anchor in anchors, f"{name}: no section in docs/runbooks.md"


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
            for expected in check["exp_alerts"]:
                # The "ok"/"idle" series of the same case must not fire: only "bad" is expected.
                assert expected["exp_labels"].get("namespace", "bad") == "bad"
    names = {rule["alert"] for rule in alerts()}
    assert names <= fires, f"no firing test: {names - fires}"
    assert names <= quiet, f"no early quiet test: {names - quiet}"


def test_dashboards_are_provisioning_ready_json() -> None:
    files = sorted(DASHBOARDS.glob("*.json"))
    assert {f.stem for f in files} == {"pipeline-overview", "ingest", "quality"}
    uids = set()
    for path in files:
        board = json.loads(path.read_text())
        assert board["uid"] not in uids and board["title"].startswith("eventpipe / ")
        uids.add(board["uid"])
        assert "id" not in board or board["id"] is None
        assert any(v["type"] == "datasource" for v in board["templating"]["list"])
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.stem)
def test_every_panel_query_parses(path: Path, tmp_path: Path) -> None:
    """promtool parses each panel's PromQL (the live-data check is tests/dashboard/test_grafana_promql.py)."""
    for panel in json.loads(path.read_text())["panels"]:
        for target in panel["targets"]:
            rule = {"groups": [{"name": "parse", "rules": [{"record": "parse:check", "expr": target["expr"]}]}]}
            check = tmp_path / f"panel-{panel['id']}-{target['refId']}.yaml"
            check.write_text(yaml.safe_dump(rule))
            out = subprocess.run([promtool(), "check", "rules", str(check)], capture_output=True, text=True)
            assert out.returncode == 0, f"{path.name} panel {panel['title']!r}: {out.stdout}{out.stderr}"
