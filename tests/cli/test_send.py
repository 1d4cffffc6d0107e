"""`eventpipe send` against a real HTTP server on 127.0.0.1: batching, the key header, backpressure retries,
the summary, and waiting for committed jobs (re-sends of earlier requests count as done when first sends are)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eventpipe_cli import send as sender
from eventpipe_cli.generator import GeneratorConfig, generate
from eventpipe_cli.main import app
from typer.testing import CliRunner


class FakeIngest:
    """Answers like the ingest's contract: 202 {job_id, received, accepted, rejected, rejects}; 429 first."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.keys: list[str | None] = []
        self.throttle_next = 1
        self.jobs: dict[str, dict[str, Any]] = {}


@pytest.fixture()
def ingest() -> Iterator[tuple[str, FakeIngest]]:
    state = FakeIngest()

    class Handler(BaseHTTPRequestHandler):
        def _json(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            state.keys.append(self.headers.get("X-API-Key"))
            if state.throttle_next:
                state.throttle_next -= 1
                self._json(429, {"type": "about:blank", "title": "Too many requests in flight", "status": 429,
                                 "detail": "busy", "instance": "/api/v1/ingest", "code": "too_many_requests"},
                           {"Retry-After": "0"})
                return
            state.bodies.append(body)
            lines = [line for line in body.splitlines() if line]
            bad = [n for n, line in enumerate(lines, 1) if '"DOGE"' in line]
            job = f"job-{len(state.bodies)}"
            state.jobs[job] = {"job_id": job, "state": "published", "accepted": len(lines) - len(bad),
                               "committed": len(lines) - len(bad) - 1}
            self._json(202, {"job_id": job, "received": len(lines), "accepted": len(lines) - len(bad),
                             "rejected": len(bad), "duplicates": 0,
                             "rejects": [{"line": n, "reason": "currency", "violations": []} for n in bad]})

        def do_GET(self) -> None:
            self._json(200, state.jobs[self.path.rsplit("/", 1)[1]])

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def test_send_batches_retries_and_summarises(ingest: tuple[str, FakeIngest]) -> None:
    base, state = ingest
    lines = list(generate(GeneratorConfig(seed=1, start=datetime(2026, 1, 1, tzinfo=UTC), invalid_share=0.1,
                                          invalid_kinds=("bad_currency",)), 250))
    summary = sender.send(f"{base}/api/v1/ingest", "secret-key", lines, batch_size=100)
    assert [len(body.splitlines()) for body in state.bodies] == [100, 100, 50]
    assert "".join(state.bodies).splitlines() == [line.text for line in lines]
    assert set(state.keys) == {"secret-key"}
    assert summary.retries == 1 and summary.statuses[429] == 1
    invalid = sum(1 for line in lines if line.kind == "invalid")
    assert (summary.lines, summary.requests, summary.rejected) == (250, 3, invalid)
    assert summary.accepted == 250 - invalid
    assert summary.job_ids == ["job-1", "job-2", "job-3"]


def test_wait_committed_waits_for_state_committed(ingest: tuple[str, FakeIngest]) -> None:
    """A job is done when its state is committed (or failed): committed reaches accepted for every job, re-sends
    of earlier requests included, so no client-side count of first sends is needed."""
    base, state = ingest
    state.throttle_next = 0
    summary = sender.send(f"{base}/api/v1/ingest", "k", list(generate(GeneratorConfig(seed=2), 20)))
    with pytest.raises(TimeoutError, match="1 of 1 jobs not committed"):
        sender.wait_committed(base, "k", summary.job_ids, timeout=0.5)
    job = state.jobs[summary.job_ids[0]]
    job.update(state="committed", committed=job["accepted"])
    done = sender.wait_committed(base, "k", summary.job_ids, timeout=5)
    assert list(done) == summary.job_ids and done[summary.job_ids[0]]["committed"] == 20


def test_rate_limit_spaces_requests(ingest: tuple[str, FakeIngest]) -> None:
    base, state = ingest
    state.throttle_next = 0
    summary = sender.send(f"{base}/api/v1/ingest", "k", [line.text for line in generate(GeneratorConfig(), 300)],
                          batch_size=100, rate=400)
    # burst = max(batch, rate) = 400 tokens: the first 300 go at once; the limit only shows in the long run.
    assert summary.requests == 3
    slow = sender.send(f"{base}/api/v1/ingest", "k", [line.text for line in generate(GeneratorConfig(), 300)],
                       batch_size=100, rate=200)
    assert slow.seconds >= 0.4  # 300 events at 200/s with a 200-token burst: the last 100 wait 0.5 s


def test_send_without_a_key_says_how_to_get_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["send", "--state-dir", str(tmp_path), "--url", "http://127.0.0.1:9",
                                      "--count", "1"], env={"COLUMNS": "200", "EVENTPIPE_API_KEY": ""})
    assert result.exit_code == 2
    assert "eventpipe up" in result.output and "EVENTPIPE_API_KEY" in result.output
