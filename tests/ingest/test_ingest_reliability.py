"""Issue 14 on a running ingest over real HTTP and a real Kinesis stream (kinesalite): what the table cannot hold is
a reject naming the field (item 1), gzip bodies are read whole or refused (item 4), and a body of many tiny
invalid elements is refused by the event limit before any reject is built (item 5)."""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.ingest_events import held_stream, valid_event
from tests.helpers.ingest_helpers import create_stream, read_stream

FEW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NDJSON = {"Content-Type": "application/x-ndjson"}
GZIP_NDJSON = {**NDJSON, "Content-Encoding": "gzip"}


def ndjson(events: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def published_ids(endpoint: str, stream: str) -> list[str]:
    """The event ids of the events in the stream (reject records excluded)."""
    lines = [json.loads(r["Data"]) for r in read_stream(endpoint, stream)]
    return [line["event_id"] for line in lines if "_reject" not in line]


def rejected_lines(endpoint: str, stream: str) -> list[dict[str, Any]]:
    return [line["_reject"] for line in (json.loads(r["Data"]) for r in read_stream(endpoint, stream))
            if "_reject" in line]


# ---------------------------------------------------------------- item 1: values the table cannot hold
EDGES: list[tuple[dict[str, Any], tuple[str, str] | None]] = [
    ({"timestamp": "0001-01-01T00:00:00Z"}, None),
    ({"timestamp": "9999-12-31T23:59:59.999999Z"}, None),
    ({"timestamp": "0001-01-01T00:30:00+01:00"}, ("timestamp", "timestamp")),
    ({"timestamp": "9999-12-31T23:30:00-01:00"}, ("timestamp", "timestamp")),
    ({"timestamp": "0000-06-01T00:00:00Z"}, ("timestamp", "timestamp")),
    ({"properties": {"n": 2**63 - 1}}, None),
    ({"properties": {"n": 2**63}}, ("properties.n", "range")),
    ({"properties": {"n": -(2**63) - 1}}, ("properties.n", "range")),
    ({"properties": {"x": 1e308}}, None),
    ({"event_id": "\ud800"}, ("event_id", "unicode")),
    ({"properties": {"s": "ok \udfff"}}, ("properties", "unicode")),
    ({"user_id": "\U0001f600 \x00"}, None),
]


@FEW
@given(st.lists(st.sampled_from(range(len(EDGES))), min_size=1, max_size=12))
def test_values_the_table_cannot_hold_are_rejects_naming_the_field(ingest_app: Callable[..., Any],
                                                                   kinesis_endpoint: str, tmp_path_factory: Any,
                                                                   picks: list[int]) -> None:
    """Each edge event is accepted or rejected as the table's ranges say; a reject names the field and travels to
    raw_events_rejected; the stream holds exactly the accepted events."""
    schema = tmp_path_factory.mktemp("schema") / "schema.json"
    schema.write_text(json.dumps({"promote": [{"path": "properties.n", "column": "n", "type": "long"},
                                              {"path": "properties.x", "column": "x", "type": "double"}]}))
    stream = create_stream(kinesis_endpoint, shards=1)
    events = [valid_event(i, **EDGES[k][0]) for i, k in enumerate(picks)]
    with ingest_app(stream_name=stream, schema_path=schema, ingest_partition_key_field="event_id") as client:
        answer = client.post("/api/v1/ingest", content=json.dumps(events).encode(),
                             headers={"Content-Type": "application/json"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    expected = {i + 1: EDGES[k][1] for i, k in enumerate(picks) if EDGES[k][1] is not None}
    got = {r["line"]: (r["violations"][0]["field"], r["violations"][0]["rule"]) for r in body["rejects"]}
    assert got == expected
    assert body["accepted"] == len(picks) - len(expected)
    accepted_ids = [e["event_id"] for i, e in enumerate(events) if i + 1 not in expected]
    assert sorted(published_ids(kinesis_endpoint, stream)) == sorted(accepted_ids)
    assert sorted(r["line"] for r in rejected_lines(kinesis_endpoint, stream)) == sorted(expected)


# ---------------------------------------------------------------- item 4: gzip bodies read whole or refused
@FEW
@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=6),
       garbage=st.one_of(st.just(b""), st.binary(min_size=1, max_size=64).filter(lambda b: b[:2] != b"\x1f\x8b"),
                         st.integers(1, 16).map(lambda n: b"\x00" * n)),
       truncate=st.booleans())
def test_multi_member_gzip_is_read_whole_trailing_data_is_400(ingest_app: Callable[..., Any], kinesis_endpoint: str,
                                                               sizes: list[int], garbage: bytes,
                                                               truncate: bool) -> None:
    """`cat a.gz b.gz ...` is decoded whole (every event of every member accepted); trailing garbage or a truncated
    last member is a 400 naming the problem, and then nothing at all is published."""
    members = [[valid_event(n) for n in range(size)] for size in sizes]
    body = b"".join(gzip.compress(ndjson(m)) for m in members)
    if truncate:
        body = body[:-3]
    body += garbage
    stream = create_stream(kinesis_endpoint, shards=1)
    with ingest_app(stream_name=stream) as client:
        answer = client.post("/api/v1/ingest", content=body, headers=GZIP_NDJSON)
    everything = [e["event_id"] for m in members for e in m]
    if truncate or garbage:
        assert answer.status_code == 400, answer.text
        message = answer.json()["detail"]
        assert ("truncated" in message or "trailing data" in message or "not valid gzip" in message), message
        assert published_ids(kinesis_endpoint, stream) == []
    elif not everything:
        assert answer.status_code == 400 and answer.json()["code"] == "empty_body"
    else:
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == len(everything)
        assert sorted(published_ids(kinesis_endpoint, stream)) == sorted(everything)


def test_too_many_gzip_members_is_400(client: httpx.Client) -> None:
    empty = gzip.compress(b"")
    answer = client.post("/api/v1/ingest", content=gzip.compress(ndjson([valid_event(1)])) + empty * 1100,
                         headers=GZIP_NDJSON)
    assert answer.status_code == 400 and "more than 1024 members" in answer.json()["detail"]


def test_raw_deflate_after_a_member_is_trailing_data(client: httpx.Client) -> None:
    deflate = zlib.compressobj(wbits=-15)
    raw = deflate.compress(ndjson([valid_event(2)])) + deflate.flush()
    answer = client.post("/api/v1/ingest", content=gzip.compress(ndjson([valid_event(1)])) + raw,
                         headers=GZIP_NDJSON)
    assert answer.status_code == 400 and "trailing data after member 1" in answer.json()["detail"]


# ---------------------------------------------------------------- item 5: memory bounded by the limits
TINY_SHAPES = {
    "json": (lambda n: b"[" + b",".join([b"{}"] * n) + b"]", "application/json"),
    "ndjson": (lambda n: b"{}\n" * n, "application/x-ndjson"),
    "csv": (lambda n: b"event_id\n" + b"x\n" * n, "text/csv"),
}


@pytest.mark.parametrize("shape", sorted(TINY_SHAPES))
def test_ten_mib_of_tiny_invalid_events_is_413_before_any_reject(ingest_app: Callable[..., Any],
                                                                   kinesis_endpoint: str, shape: str) -> None:
    """A 10 MiB body of tiny invalid elements (about 20 KB gzipped) is refused by the event limit (413 with the
    count), not answered with millions of rejects; under the limit, each is a reject as usual."""
    build, content_type = TINY_SHAPES[shape]
    limit = 10 * 1024 * 1024
    count = limit // 3 - 10
    body = build(count)
    assert len(body) <= limit
    compressed = gzip.compress(body, 9)
    assert len(compressed) < 64 * 1024
    stream = create_stream(kinesis_endpoint, shards=1)
    with ingest_app(stream_name=stream, ingest_max_events=1000) as client:
        answer = client.post("/api/v1/ingest", content=compressed,
                             headers={"Content-Type": content_type, "Content-Encoding": "gzip"})
        assert answer.status_code == 413, answer.text[:300]
        assert answer.json()["detail"] == f"{count} events in one request; the limit is 1000"
        small = client.post("/api/v1/ingest", content=build(1000), headers={"Content-Type": content_type})
        assert small.status_code == 202, small.text[:300]
        assert small.json()["rejected"] == 1000 and len(small.json()["rejects"]) == 1000
    assert published_ids(kinesis_endpoint, stream) == []
    assert len(rejected_lines(kinesis_endpoint, stream)) == 1000



def test_body_bytes_in_flight_are_capped(ingest_app: Callable[..., Any]) -> None:
    """Item 5: the decoded bytes processed at once are capped (a request that would pass the cap gets 429 with
    Retry-After), a lone request of any allowed size always goes through, and small ones still fit beside a big
    one. The stream is held slow by a wrapper (injected: kinesalite answers at once) so the first request stays
    in flight."""
    release = threading.Event()

    slow = held_stream(release)

    big = json.dumps([valid_event(i, properties={"pad": "x" * 3000}) for i in range(10)]).encode()
    small = json.dumps([valid_event(99)]).encode()
    cap = len(big) + 2 * len(small)
    with ingest_app(wrap_transport=slow, ingest_max_body_bytes_in_flight=len(big) - 1) as lone:
        release.set()
        assert lone.post("/api/v1/ingest", content=big, headers={"Content-Type": "application/json"}).status_code == 202
    release.clear()
    with ingest_app(wrap_transport=slow, ingest_max_body_bytes_in_flight=cap) as client:
        first: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: first.update(r=client.post(
            "/api/v1/ingest", content=big, headers={"Content-Type": "application/json"})))
        thread.start()
        deadline = time.monotonic() + 30
        while "eventpipe_ingest_in_flight_requests 1.0" not in client.get("/api/v1/metrics").text:
            assert time.monotonic() < deadline, "the first request never got in flight"
            time.sleep(0.01)
        second = client.post("/api/v1/ingest", content=big, headers={"Content-Type": "application/json"})
        assert second.status_code == 429 and second.headers["Retry-After"] == "1", second.text
        assert "body bytes are being processed" in second.json()["detail"]
        small_thread = threading.Thread(target=lambda: first.update(s=client.post(
            "/api/v1/ingest", content=small, headers={"Content-Type": "application/json"})))
        small_thread.start()
        time.sleep(0.2)
        release.set()
        thread.join(30)
        small_thread.join(30)
        assert first["r"].status_code == 202 and first["s"].status_code == 202
