"""Alerts when a critical expectation fails: a Slack-compatible webhook message and/or an email over SMTP.

The message is composed from the run report only (suite, failed expectations, observed values, where the
report is), so a secret cannot reach it; delivery errors are logged with every configured secret masked.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from eventpipe_common.logging import get_logger

from eventpipe_quality.results import RunReport
from eventpipe_quality.settings import QualitySettings

MAX_LISTED = 20  # Slack caps a section at 3000 characters: list the first failures, count the rest


@dataclass(frozen=True)
class Alert:
    subject: str
    text: str
    report_location: str


def report_location(report: RunReport, settings: QualitySettings) -> str:
    """Where a human finds the Data Docs: under `quality_docs_base_url` when served, else the file path."""
    target = report.docs_index or report.results_path
    if target is None:
        return "(no report written)"
    if settings.quality_docs_base_url:
        try:
            relative = Path(target).resolve().relative_to(settings.quality_dir.resolve())
            return f"{settings.quality_docs_base_url.rstrip('/')}/{relative.as_posix()}"
        except ValueError:
            pass  # the report is outside the served directory: fall back to its path
    return str(Path(target).resolve())


def compose_alert(report: RunReport, location: str) -> Alert | None:
    """The alert for a run, or None when no critical expectation failed (warnings never page anyone)."""
    failures = report.critical_failures
    if not failures:
        return None
    subject = (f"[eventpipe quality] {report.suite} suite: {len(failures)} critical "
               f"expectation{'s' if len(failures) != 1 else ''} failed")
    lines = [f"{subject} (run {report.run_id})", ""]
    for o in failures[:MAX_LISTED]:
        column = f" column {o.column}" if o.column else ""
        observed = json.dumps(o.observed_value, sort_keys=True, default=str)
        sample = f"; failing values: {json.dumps(o.failing_sample[:5], default=str)}" if o.failing_sample else ""
        if o.failing_keys:
            sample += f"; rows: {json.dumps(o.failing_keys[:5], default=str)}"
        lines.append(f"- {o.asset}: {o.expectation}{column}: observed {observed}{sample}")
    if len(failures) > MAX_LISTED:
        lines.append(f"- ... and {len(failures) - MAX_LISTED} more")
    lines += ["", f"Report: {location}"]
    return Alert(subject=subject, text="\n".join(lines), report_location=location)


def webhook_payload(alert: Alert) -> dict[str, object]:
    """Slack's incoming-webhook format: `text` (also the notification fallback) plus blocks."""
    return {
        "text": alert.text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": alert.subject[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": alert.text[:3000]}},
        ],
    }


def send_webhook(url: str, alert: Alert, timeout: float) -> None:
    body = json.dumps(webhook_payload(alert)).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


def send_email(settings: QualitySettings, alert: Alert) -> None:
    if not settings.alert_smtp_host:
        raise ValueError("alert_smtp_host is not set")
    message = EmailMessage()
    message["Subject"] = alert.subject
    message["From"] = settings.alert_email_from
    message["To"] = ", ".join(settings.alert_email_to)
    message.set_content(alert.text)
    with smtplib.SMTP(settings.alert_smtp_host, settings.alert_smtp_port,
                      timeout=settings.alert_timeout_seconds) as smtp:
        if settings.alert_smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.alert_smtp_user and settings.alert_smtp_password is not None:
            smtp.login(settings.alert_smtp_user, settings.alert_smtp_password.get_secret_value())
        smtp.send_message(message)


def _secrets(settings: QualitySettings) -> list[str]:
    values = [s.get_secret_value() for s in (settings.alert_webhook_url, settings.alert_smtp_password,
                                            settings.warehouse_url) if s is not None]
    return [v for v in values if v]


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def dispatch(report: RunReport, settings: QualitySettings) -> list[str]:
    """Send the run's alert on every configured channel; returns the channels that delivered it.

    A failing channel is logged and does not stop the others, nor change the run's verdict.
    """
    alert = compose_alert(report, report_location(report, settings))
    log = get_logger()
    if alert is None:
        return []
    delivered: list[str] = []
    secrets = _secrets(settings)
    if settings.alert_webhook_url is not None:
        try:
            send_webhook(settings.alert_webhook_url.get_secret_value(), alert, settings.alert_timeout_seconds)
            delivered.append("webhook")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.error("alert delivery failed", channel="webhook", run_id=report.run_id,
                      reason=redact(f"{type(exc).__name__}: {exc}", secrets))
    if settings.alert_smtp_host and settings.alert_email_to:
        try:
            send_email(settings, alert)
            delivered.append("email")
        except (smtplib.SMTPException, OSError) as exc:
            log.error("alert delivery failed", channel="email", run_id=report.run_id,
                      reason=redact(f"{type(exc).__name__}: {exc}", secrets))
    if delivered:
        log.info("alert sent", channels=delivered, run_id=report.run_id, suite=report.suite,
                 critical_failed=len(report.critical_failures), report=alert.report_location)
    elif settings.alert_webhook_url is None and not (settings.alert_smtp_host and settings.alert_email_to):
        log.warning("critical expectations failed and no alert channel is configured", run_id=report.run_id)
    return delivered
