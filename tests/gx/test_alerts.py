"""Property 31: critical failures trigger alerts, over a real HTTP webhook receiver and a real SMTP server
(aiosmtpd) on 127.0.0.1, and no secret ever reaches a message or a log line."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from eventpipe_quality.alerts import compose_alert, dispatch
from eventpipe_quality.results import Outcome, RunReport
from eventpipe_quality.settings import QualitySettings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from tests.helpers.gx_receivers import SMTP_PASSWORD, SMTP_USER, MailReceiver, WebhookReceiver
from tests.helpers.gx_support import log_records

# The test SMTP server takes AUTH without TLS on 127.0.0.1; aiosmtpd warns about that on every connection.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

outcomes = st.builds(
    Outcome,
    suite=st.just("staging"),
    asset=st.sampled_from(["staging.stg_events", "staging.stg_users", "staging.ingest_summary"]),
    expectation=st.sampled_from(["expect_column_values_to_not_be_null", "expect_column_values_to_be_between",
                                 "expect_column_values_to_be_of_type"]),
    column=st.sampled_from(["event_id", "amount", "event_ts", "user_id"]),
    success=st.booleans(),
    severity=st.sampled_from(["critical", "warning"]),
    observed_value=st.one_of(st.integers(0, 10**6), st.sampled_from(["str", "float64", "Timestamp"])),
    unexpected_count=st.integers(0, 100),
    failing_sample=st.lists(st.one_of(st.none(), st.integers(-10**6, 10**6)), max_size=5),
)


def make_report(items: list[Outcome], tmp: Path) -> RunReport:
    now = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
    docs = tmp / "quality" / "runs" / "r1" / "docs" / "index.html"
    return RunReport(run_id="20261120T120000Z-staging-abc123", suite="staging", started_at=now, finished_at=now,
                     outcomes=items, warehouse="test", rejected_rows=0, rejected_rows_source="test",
                     docs_index=docs, results_path=docs.parent.parent / "results.json")


def alert_settings(tmp: Path, webhook: WebhookReceiver, smtp: MailReceiver) -> QualitySettings:
    return QualitySettings(
        state_dir=tmp,
        alert_webhook_url=SecretStr(webhook.url),
        alert_smtp_host=smtp.host,
        alert_smtp_port=smtp.port,
        alert_smtp_user=SMTP_USER,
        alert_smtp_password=SecretStr(SMTP_PASSWORD),
        alert_email_to=["oncall@example.com"],
        alert_timeout_seconds=5,
    )


def secrets_of(webhook: WebhookReceiver) -> list[str]:
    return [SMTP_PASSWORD, webhook.url, webhook.url.rsplit("/", 1)[-1]]


@given(items=st.lists(outcomes, max_size=8))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_critical_failures_trigger_alerts(items: list[Outcome], tmp_path: Path, webhook: WebhookReceiver,
                                          smtp_server: MailReceiver, log_stream: io.StringIO) -> None:
    """Property 31: Critical failures trigger alerts — a run with at least one failed critical expectation sends
    one webhook message and one email naming the suite, each failed critical expectation with its observed
    value, and the report's location; a run without one sends nothing; no secret appears in either or in logs."""
    webhook.clear()
    smtp_server.clear()
    log_stream.seek(0)
    log_stream.truncate()
    report = make_report(items, tmp_path)
    config = alert_settings(tmp_path, webhook, smtp_server)

    delivered = dispatch(report, config)

    critical = [o for o in items if not o.success and o.severity == "critical"]
    if not critical:
        assert delivered == [] and webhook.bodies == [] and smtp_server.messages == []
        return
    assert delivered == ["webhook", "email"]
    assert len(webhook.bodies) == 1 and len(smtp_server.messages) == 1
    assert smtp_server.logins == [SMTP_USER]
    text = webhook.bodies[0]["text"]
    mail = smtp_server.messages[0]
    mail_text = mail.get_payload(decode=True).decode()
    assert webhook.bodies[0]["blocks"][0]["type"] == "header"
    for body in (text, mail_text):
        assert "staging suite" in body and report.run_id in body
        assert str(report.docs_index.resolve()) in body  # type: ignore[union-attr]
        for o in critical[:20]:
            assert f"{o.asset}: {o.expectation} column {o.column}: observed " \
                   f"{json.dumps(o.observed_value, sort_keys=True)}" in body
        # warnings are not listed as critical failures
        listed = [line for line in body.splitlines() if line.startswith("- ")]
        assert len(listed) == len(critical)
    assert f"{len(critical)} critical" in mail["Subject"]
    everything = json.dumps(webhook.bodies) + mail.as_string() + log_stream.getvalue() + repr(config)
    for secret in secrets_of(webhook):
        assert secret not in everything


def test_a_failing_channel_does_not_stop_the_other_and_leaks_nothing(
        tmp_path: Path, webhook: WebhookReceiver, smtp_server: MailReceiver, log_stream: io.StringIO) -> None:
    """The webhook answers 500: the email still goes out, the failure is logged with a reason but no secret."""
    webhook.clear()
    smtp_server.clear()
    webhook.status = 500
    failure = Outcome(suite="staging", asset="staging.stg_events", expectation="expect_column_values_to_not_be_null",
                      column="event_id", success=False, severity="critical", observed_value={"unexpected_count": 2})
    try:
        delivered = dispatch(make_report([failure], tmp_path), alert_settings(tmp_path, webhook, smtp_server))
    finally:
        webhook.status = 200
    assert delivered == ["email"]
    errors = [r for r in log_records(log_stream) if r["message"] == "alert delivery failed"]
    assert [e["channel"] for e in errors] == ["webhook"]
    assert "500" in errors[0]["reason"]
    for secret in secrets_of(webhook):
        assert secret not in log_stream.getvalue()


def test_wrong_smtp_password_is_reported_without_the_password(
        tmp_path: Path, webhook: WebhookReceiver, smtp_server: MailReceiver, log_stream: io.StringIO) -> None:
    smtp_server.clear()
    wrong = "Wr0ng-but-still-secret"
    config = alert_settings(tmp_path, webhook, smtp_server).model_copy(
        update={"alert_smtp_password": SecretStr(wrong), "alert_webhook_url": None})
    failure = Outcome(suite="marts", asset="marts.dim_users", expectation="expect_column_values_to_be_unique",
                      column="user_sk", success=False, severity="critical", observed_value={"unexpected_count": 2})
    assert dispatch(make_report([failure], tmp_path), config) == []
    assert smtp_server.messages == []
    errors = [r for r in log_records(log_stream) if r["message"] == "alert delivery failed"]
    assert errors and errors[0]["channel"] == "email" and "SMTPAuthenticationError" in errors[0]["reason"]
    assert wrong not in log_stream.getvalue() and wrong not in repr(config)


def test_warnings_alone_never_alert(tmp_path: Path) -> None:
    warning = Outcome(suite="staging", asset="staging.stg_events", expectation="expect_column_values_to_be_between",
                      column="event_ts", success=False, severity="warning", observed_value={"unexpected_count": 1})
    assert compose_alert(make_report([warning], tmp_path), "here") is None


def test_report_location_uses_the_served_url(tmp_path: Path, webhook: WebhookReceiver,
                                             smtp_server: MailReceiver) -> None:
    webhook.clear()
    config = alert_settings(tmp_path, webhook, smtp_server).model_copy(
        update={"quality_docs_base_url": "http://quality.local/reports/", "alert_smtp_host": None})
    failure = Outcome(suite="staging", asset="staging.stg_events", expectation="expect_column_values_to_not_be_null",
                      column="event_id", success=False, severity="critical", observed_value={"unexpected_count": 1})
    assert dispatch(make_report([failure], tmp_path), config) == ["webhook"]
    assert "Report: http://quality.local/reports/runs/r1/docs/index.html" in webhook.bodies[0]["text"]
