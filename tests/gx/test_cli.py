"""`python -m eventpipe_quality run`: the gate Airflow and the local stack call — exit 0 on pass, 1 when a
critical expectation fails (with alerts sent), 2 when it cannot run (bad setting, missing warehouse/catalog)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eventpipe_quality.cli import app
from eventpipe_quality.results import read_results
from typer.testing import CliRunner

from tests.helpers.gx_receivers import SMTP_PASSWORD, SMTP_USER, MailReceiver, WebhookReceiver
from tests.helpers.warehouse_data import event_row, marts_rows, user_row, write_marts, write_staging

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def quality_env(monkeypatch: pytest.MonkeyPatch, assets_dir: Path) -> None:
    """A clean EVENTPIPE_* environment: vendored assets, no alert channel, no schema."""
    for key in list(os.environ):
        if key.startswith("EVENTPIPE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("EVENTPIPE_QUALITY_ASSETS_DIR", str(assets_dir))


def test_passing_marts_exit_zero(tmp_path: Path, quality_env: None) -> None:
    write_marts(tmp_path / "warehouse.duckdb", marts_rows(n_users=3, n_products=2, n_events=14))
    result = CliRunner().invoke(app, ["run", "--suite", "marts", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "marts: passed" in result.output
    rows = read_results(tmp_path / "quality" / "results.duckdb")
    assert rows and all(r["success"] for r in rows)


def test_staging_without_catalog_or_count_exits_two(tmp_path: Path, quality_env: None) -> None:
    write_staging(tmp_path / "warehouse.duckdb", [event_row(0)], [user_row(0)])
    result = CliRunner().invoke(app, ["run", "--suite", "staging", "--state-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["run", "--suite", "staging", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--rejected-count" in result.output


def test_missing_warehouse_and_bad_settings_exit_two(tmp_path: Path, quality_env: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["run", "--suite", "marts", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2 and "does not exist" in result.output
    monkeypatch.setenv("EVENTPIPE_QUALITY_MAX_REJECTED_SHARE", "2")
    result = CliRunner().invoke(app, ["run", "--suite", "marts", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2 and "EVENTPIPE_QUALITY_MAX_REJECTED_SHARE" in result.output


def test_module_gate_fails_alerts_and_keeps_secrets(tmp_path: Path, assets_dir: Path, webhook: WebhookReceiver,
                                                    smtp_server: MailReceiver) -> None:
    """The real command in its own process: a null event_id fails the staging gate (exit 1), the webhook and
    the SMTP server each receive the alert, and neither output stream carries a secret."""
    webhook.clear()
    smtp_server.clear()
    events = [event_row(i) for i in range(12)]
    events[5]["event_id"] = None
    write_staging(tmp_path / "warehouse.duckdb", events, [user_row(0)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTPIPE_")}
    env.update({
        "EVENTPIPE_QUALITY_ASSETS_DIR": str(assets_dir),
        "EVENTPIPE_ALERT_WEBHOOK_URL": webhook.url,
        "EVENTPIPE_ALERT_SMTP_HOST": smtp_server.host,
        "EVENTPIPE_ALERT_SMTP_PORT": str(smtp_server.port),
        "EVENTPIPE_ALERT_SMTP_USER": SMTP_USER,
        "EVENTPIPE_ALERT_SMTP_PASSWORD": SMTP_PASSWORD,
        "EVENTPIPE_ALERT_EMAIL_TO": json.dumps(["oncall@example.com"]),
    })
    proc = subprocess.run(
        [sys.executable, "-m", "eventpipe_quality", "run", "--suite", "staging", "--state-dir", str(tmp_path),
         "--rejected-count", "0"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    [failure] = [r for r in lines if r["message"] == "quality expectation failed"]
    assert failure["column"] == "event_id" and failure["failing_rows"] == [5]
    assert any(r["message"] == "alert sent" and r["channels"] == ["webhook", "email"] for r in lines)
    assert len(webhook.bodies) == 1 and "staging.stg_events" in webhook.bodies[0]["text"]
    assert len(smtp_server.messages) == 1
    for secret in (SMTP_PASSWORD, webhook.url, webhook.url.rsplit("/", 1)[-1]):
        assert secret not in proc.stdout and secret not in proc.stderr
    runs = list((tmp_path / "quality" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "results.json").is_file() and (runs[0] / "docs" / "index.html").is_file()
