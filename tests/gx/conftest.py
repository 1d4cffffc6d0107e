"""Fixtures of the GX tests: real receivers for alerts (HTTP, SMTP) on 127.0.0.1, vendored assets, log capture.

GX imports slowly (10-30 s), so every GX test runs in this one pytest process and shares these session
fixtures; the only subprocess is the test of `python -m eventpipe_quality` itself. The helpers are in
tests/helpers/ (gx_receivers.py, gx_support.py, warehouse_data.py).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.helpers.gx_receivers import SMTP_PASSWORD, SMTP_USER, MailReceiver, WebhookReceiver
from tests.helpers.servers import free_port


@pytest.fixture(scope="session")
def webhook() -> Iterator[WebhookReceiver]:
    port = free_port()
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{port}/services/T000/B000/s3cr3t-webhook-token")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.paths.append(self.path)
            receiver.bodies.append(json.loads(body))
            self.send_response(receiver.status)
            self.end_headers()
            self.wfile.write(b"ok")
            receiver.received.set()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


class _Handler:
    def __init__(self, receiver: MailReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.receiver.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[MailReceiver]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that requires AUTH PLAIN with the test credentials."""
    receiver = MailReceiver(host="127.0.0.1", port=free_port())

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER
              and auth_data.password.decode() == SMTP_PASSWORD)
        if ok:
            receiver.logins.append(SMTP_USER)
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself

    controller = Controller(_Handler(receiver), hostname=receiver.host, port=receiver.port,
                            authenticator=authenticate, auth_require_tls=False, auth_required=True,
                            # smtplib falls back from PLAIN to LOGIN after a refusal, and aiosmtpd's LOGIN
                            # then waits for a reply smtplib never sends: offer PLAIN only.
                            auth_exclude_mechanism=["LOGIN"])
    controller.start()
    yield receiver
    controller.stop()


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    """The vendored Data Docs CSS/JS, fetched once into the shared cache (npm registry, integrity-checked)."""
    from eventpipe_quality.assets import fetch_assets
    from eventpipe_quality.settings import QualitySettings

    return fetch_assets(QualitySettings().resolved_assets_dir())


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """JSON log lines of the quality component, captured."""
    from eventpipe_common.logging import configure_logging

    stream = io.StringIO()
    configure_logging("quality", stream=stream)
    yield stream
    configure_logging("quality")
