"""The HTTP API's interface over real HTTP (issue 20): every error as RFC 9457 problem details, FastAPI's own
404/405/422 included; the 202's Location; metrics on a port of their own; a refused large body answered so the
client can read the answer; the lone-surrogate reject saying what is wrong."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from eventpipe_cli import send as sender
from eventpipe_ingest.models import Problem

from tests.helpers.ingest_events import valid_event
from tests.helpers.servers import free_port

PROBLEM_JSON = "application/problem+json"


def check_problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The answer is a problem details object of this status and code, with every standard member."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = answer.json()
    Problem.model_validate(body)  # the schema the OpenAPI spec declares
    assert body["status"] == status and body["code"] == code
    assert body["type"].endswith("#problem-" + code.replace("_", "-"))
    assert body["title"] and body["detail"]
    assert body["instance"] == answer.request.url.path
    return body


def test_every_error_is_a_problem(ingest_app: Callable[..., Any], api_key: str) -> None:
    with ingest_app(ingest_max_events=3) as client:
        body = check_problem(client.post("/api/v1/ingest", json=[valid_event(1)], headers={"Authorization": ""}),
                             401, "unauthorized")
        assert "API key" in body["detail"]
        body = check_problem(client.get("/api/v1/status/no-such-job"), 404, "not_found")
        assert body["job_id"] == "no-such-job"
        body = check_problem(client.get("/api/v1/nothing-here"), 404, "not_found")
        assert "/api/v1/nothing-here" in body["detail"]
        answer = client.get("/api/v1/ingest")
        body = check_problem(answer, 405, "method_not_allowed")
        assert answer.headers["allow"] == "POST" and "GET" in body["detail"]
        body = check_problem(client.get("/api/v1/status/" + "x" * 65), 422, "invalid_request")
        assert body["errors"][0]["loc"] == ["path", "job_id"] and "64" in body["errors"][0]["message"]
        body = check_problem(client.post("/api/v1/ingest", content=b'{"a": 1\n{"b": ',
                                         headers={"Content-Type": "application/x-ndjson"}), 400, "parse_error")
        assert body["line"] == 1 and body["column"] >= 1
        body = check_problem(client.post("/api/v1/ingest", json=[]), 400, "empty_body")
        body = check_problem(client.post("/api/v1/ingest", json=[valid_event(i) for i in range(4)]),
                             413, "payload_too_large")
        assert body["limit"] == 3
        body = check_problem(client.post("/api/v1/ingest", content=b"x", headers={"Content-Type": "text/plain"}),
                             415, "unsupported_media_type")
        assert "text/plain" in body["detail"]
    with ingest_app(ingest_reject_mode="whole") as client:
        body = check_problem(client.post("/api/v1/ingest", json=[valid_event(1), {"event_id": "x"}]),
                             422, "invalid_events")
        assert (body["received"], body["rejected"]) == (2, 1)
        assert body["rejects"][0]["line"] == 2 and body["rejects"][0]["violations"]
    with ingest_app(stream_name="no-such-stream") as client:
        answer = client.post("/api/v1/ingest", json=[valid_event(1)])
        body = check_problem(answer, 503, "publish_failed")
        assert answer.headers["retry-after"] == "1" and body["job_id"]
        body = check_problem(client.get("/api/v1/ready"), 503, "not_ready")
        assert body["checks"]["stream"].startswith("unavailable") and body["checks"]["job_store"] == "ok"


def test_eventpipe_send_reports_the_problem(ingest_app: Callable[..., Any]) -> None:
    """The CLI's `send` (a client of the old error shape before) reports code and detail of a refusal."""
    with ingest_app(ingest_max_events=2) as client:
        url = str(client.base_url.join("/api/v1/ingest"))
        wrong_key = sender.send(url, "not-a-key", [json.dumps(valid_event(1))])
        too_many = sender.send(url, client.headers["Authorization"].removeprefix("Bearer "),
                               [json.dumps(valid_event(i)) for i in range(3)])
    assert wrong_key.errors == ["HTTP 401 unauthorized: a valid API key is required "
                                "(Authorization: Bearer <key> or X-API-Key: <key>)"]
    assert too_many.errors == ["HTTP 413 payload_too_large: 3 events in one request; the limit is 2"]


def test_202_names_the_jobs_status_url(client: httpx.Client) -> None:
    answer = client.post("/api/v1/ingest", json=[valid_event(1), valid_event(2)])
    assert answer.status_code == 202
    job_id = answer.json()["job_id"]
    assert answer.headers["location"] == f"/api/v1/status/{job_id}"
    status = client.get(answer.headers["location"])
    assert status.status_code == 200 and status.json()["job_id"] == job_id


def test_metrics_on_a_port_of_their_own(ingest_app: Callable[..., Any]) -> None:
    """With a metrics port, the API port serves no metrics (nothing unauthenticated but health and readiness)."""
    port = free_port()
    with ingest_app(ingest_metrics_port=port) as client:
        assert client.post("/api/v1/ingest", json=[valid_event(1)]).status_code == 202
        check_problem(client.get("/api/v1/metrics"), 404, "not_found")
        assert "/api/v1/metrics" not in client.get("/api/v1/openapi.json").json()["paths"]
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
        assert metrics.status_code == 200
        assert 'eventpipe_ingest_requests_total{method="POST",route="/api/v1/ingest",status="202"} 1.0' in metrics.text
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)  # stopped with the app


@pytest.mark.parametrize("fmt", ["ndjson", "json"])
def test_a_lone_surrogate_is_named_as_such(client: httpx.Client, fmt: str) -> None:
    """The reject says what is wrong (not "event_id must be a string, got string")."""
    bad = json.dumps(valid_event(1)).replace('"page_view"', '"page_view", "session_id": "\\ud800x"')
    good = json.dumps(valid_event(2))
    body, content_type = ((f"{bad}\n{good}", "application/x-ndjson") if fmt == "ndjson"
                          else (f"[{bad},{good}]", "application/json"))
    answer = client.post("/api/v1/ingest", content=body.encode(), headers={"Content-Type": content_type})
    assert answer.status_code == 202, answer.text
    [reject] = answer.json()["rejects"]
    [violation] = reject["violations"]
    assert (violation["field"], violation["rule"]) == ("session_id", "unicode")
    assert "lone UTF-16 surrogate" in violation["message"] and "must be a string" not in violation["message"]


@pytest.fixture
def small_limit(ingest_app: Callable[..., Any]) -> Iterator[httpx.Client]:
    with ingest_app(ingest_max_body_bytes=64 * 1024) as client:
        yield client


BIG = 32 * 1024 * 1024  # far more than the kernel's socket buffers hold: unread, the sender would be reset


def send_whole_then_read(base_url: str, head: str, body_chunks: Iterator[bytes]) -> tuple[int, dict[str, str], bytes]:
    """A plain client on a raw socket: it sends the whole request, then reads the answer (as curl without Expect,
    or Python's http.client do; httpx would read an early answer after a failed send, so it cannot tell)."""
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        sock.sendall(head.replace("{host}", url.netloc).encode())
        for chunk in body_chunks:
            sock.sendall(chunk)  # ConnectionResetError / BrokenPipeError here if the server stopped reading
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        raw_head, _, body = answer.partition(b"\r\n\r\n")
        lines = raw_head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        while len(body) < int(headers["content-length"]):
            body += sock.recv(65536)
    return int(lines[0].split(" ")[1]), headers, body


def blanks(total: int, chunked: bool) -> Iterator[bytes]:
    for _ in range(total // 65536):
        yield b"10000\r\n" + b" " * 65536 + b"\r\n" if chunked else b" " * 65536
    if chunked:
        yield b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_the_limit_gets_a_413_the_client_reads(small_limit: httpx.Client, api_key: str,
                                                           framing: str) -> None:
    """The server refuses before reading the body (declared length) or as soon as it passes the limit (chunked),
    then reads and drops the rest: the client finishes sending and reads the 413, instead of having its
    connection reset mid-send."""
    length = f"Content-Length: {BIG}" if framing == "content-length" else "Transfer-Encoding: chunked"
    head = (f"POST /api/v1/ingest HTTP/1.1\r\nHost: {{host}}\r\nAuthorization: Bearer {api_key}\r\n"
            f"Content-Type: application/json\r\n{length}\r\n\r\n")
    status, headers, body = send_whole_then_read(str(small_limit.base_url), head,
                                                 blanks(BIG, framing == "chunked"))
    assert status == 413 and headers["content-type"] == PROBLEM_JSON
    assert json.loads(body)["limit"] == 64 * 1024
    # Any refusal before the body is read: the same (here 401, a wrong key); httpx as the client.
    check_problem(small_limit.post("/api/v1/ingest", content=b" " * BIG, headers={
        "Content-Type": "application/json", "Authorization": "Bearer wrong"}), 401, "unauthorized")
    assert small_limit.post("/api/v1/ingest", json=[valid_event(1)]).status_code == 202


def test_expect_100_continue_gets_the_413_without_sending_the_body(small_limit: httpx.Client, api_key: str) -> None:
    """A raw socket (httpx does not send Expect): the client waits for 100 Continue; the server answers 413 at
    once, never asks for the body, and closes the connection."""
    url = urlsplit(str(small_limit.base_url))
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(f"POST /api/v1/ingest HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {api_key}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {10 * 1024 ** 3}\r\n"
                     "Expect: 100-continue\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.1 413 "), lines[0]
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    assert headers["content-type"] == PROBLEM_JSON and headers["connection"] == "close"
    assert json.loads(body)["code"] == "payload_too_large"
