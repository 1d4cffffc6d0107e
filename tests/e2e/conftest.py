"""The whole local stack as subprocesses (`eventpipe up`), plus a real HTTP receiver for quality alerts.
The helpers they use are in tests/helpers/local_stack.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.helpers.local_stack import AlertReceiver, LocalStack, start, stop
from tests.helpers.servers import free_port, stack_env


@pytest.fixture(scope="session")
def alert_receiver() -> Iterator[AlertReceiver]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield AlertReceiver(f"http://127.0.0.1:{server.server_address[1]}/hook", received)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, alert_receiver: AlertReceiver) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("e2e") / "state"
    # Lines refused by the ingest count as rejected too: up to ~8% of the generated traffic is invalid, so the
    # staging suite's rejected-share bar is raised from 5% to 12% (the injected flood still goes over it).
    env = stack_env(EVENTPIPE_ALERT_WEBHOOK_URL=alert_receiver.url, EVENTPIPE_QUALITY_MAX_REJECTED_SHARE="0.12")
    running = start(state, env, monitoring=False)
    yield running
    stop(running)
