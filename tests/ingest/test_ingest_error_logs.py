"""Property 38 for ingest: every failure path logs the component, the request (and its job id once it has one),
the reason the client was told and the error behind it. Real HTTP, a real Kinesis stream (kinesalite); the
publish failure is real too: the stream is deleted under a running ingest."""

from __future__ import annotations

import gzip
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from eventpipe_common.logging import configure_logging
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.ingest_events import valid_event
from tests.helpers.ingest_helpers import create_stream, kinesis_client

JSON = {"Content-Type": "application/json"}


class LogBuffer(io.TextIOBase):
    """A stream the served app's JSON log lines are written to (the server runs in a thread of this process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text: list[str] = []

    def write(self, s: str) -> int:
        with self._lock:
            self._text.append(s)
        return len(s)

    def lines(self) -> list[dict[str, Any]]:
        with self._lock:
            text = "".join(self._text)
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def logs() -> Iterator[LogBuffer]:
    buffer = LogBuffer()
    configure_logging("ingest", "INFO", stream=buffer)
    try:
        yield buffer
    finally:
        configure_logging("ingest", "INFO")


# Each failure kind: how to send it (client, unauthenticated client), the status it gets, and whether a job id
# was given to the request before it failed.
def _send(kind: str, client: httpx.Client, anonymous: httpx.Client, gone: httpx.Client) -> httpx.Response:
    event = json.dumps([valid_event(1)]).encode()
    if kind == "unauthorized":
        return anonymous.post("/api/v1/ingest", content=event, headers=JSON)
    if kind == "media_type":
        return client.post("/api/v1/ingest", content=event, headers={"Content-Type": "text/plain"})
    if kind == "encoding":
        return client.post("/api/v1/ingest", content=event, headers={**JSON, "Content-Encoding": "br"})
    if kind == "too_large":
        return client.post("/api/v1/ingest", content=b"[" + b" " * 5000 + b"]", headers=JSON)
    if kind == "bad_gzip":
        return client.post("/api/v1/ingest", content=gzip.compress(event) + b"junk",
                           headers={**JSON, "Content-Encoding": "gzip"})
    if kind == "parse":
        return client.post("/api/v1/ingest", content=b'[{"event_id": ', headers=JSON)
    if kind == "empty":
        return client.post("/api/v1/ingest", content=b"[]", headers=JSON)
    if kind == "too_many":
        return client.post("/api/v1/ingest", json=[valid_event(i) for i in range(4)])
    if kind == "invalid_whole":
        return client.post("/api/v1/ingest", json=[valid_event(1, timestamp="0000-01-01T00:00:00Z")])
    if kind == "publish":
        return gone.post("/api/v1/ingest", content=event, headers=JSON)
    raise AssertionError(kind)


EXPECTED: dict[str, tuple[int, bool]] = {
    "unauthorized": (401, False), "media_type": (415, False), "encoding": (415, False), "too_large": (413, False),
    "bad_gzip": (400, False), "parse": (400, True), "empty": (400, True), "too_many": (413, True),
    "invalid_whole": (422, True), "publish": (503, True),
}


def test_property_38_every_failure_is_logged_with_details(ingest_app: Callable[..., Any], kinesis_endpoint: str,
                                                          logs: LogBuffer) -> None:
    """Property 38: each failed request (any failure path of ingest, in any order) writes one log line with
    component "ingest", the request, the job id when the request had one, the reason it was answered and the
    error (the exception behind it, or the refusal's code); 5xx at error level, 4xx at info."""
    gone_stream = create_stream(kinesis_endpoint, shards=1)
    limits = {"ingest_reject_mode": "whole", "ingest_max_events": 3, "ingest_max_body_bytes": 4096,
              "ingest_publish_deadline_seconds": 2.0}
    with ingest_app(**limits) as client, ingest_app(stream_name=gone_stream, **limits) as gone, \
            httpx.Client(base_url=str(client.base_url), timeout=30) as anonymous:
        # The stream is deleted under a running ingest: a real publish failure (not injected).
        kinesis_client(kinesis_endpoint).delete_stream(StreamName=gone_stream)

        @settings(max_examples=25, deadline=None)
        @given(st.lists(st.sampled_from(sorted(EXPECTED)), min_size=1, max_size=6))
        def check(kinds: list[str]) -> None:
            marker = str(uuid.uuid4())
            before = len(logs.lines())
            answers = [(kind, _send(kind, client, anonymous, gone)) for kind in kinds]
            failures = [line for line in logs.lines()[before:]
                        if line.get("message") in ("request refused", "request failed")]
            assert len(failures) == len(answers), (marker, failures)
            for (kind, answer), line in zip(answers, failures, strict=True):
                status, has_job = EXPECTED[kind]
                assert answer.status_code == status, (kind, answer.text)
                body = answer.json()
                assert line["component"] == "ingest"
                assert line["status"] == status and line["code"] == body["code"]
                assert line["reason"] == body["detail"] and line["reason"]
                assert line["error"]
                assert line["request"] == "POST /api/v1/ingest" and line["peer"].startswith("127.0.0.1:")
                assert line["level"] == ("error" if status >= 500 else "info")
                if has_job:
                    uuid.UUID(line["job_id"])
                    if "job_id" in body:
                        assert body["job_id"] == line["job_id"]
                else:
                    assert line["job_id"] is None
                if kind in ("bad_gzip", "parse", "publish"):
                    assert ":" in line["error"], line  # the exception behind it: "Type: detail"
        check()
