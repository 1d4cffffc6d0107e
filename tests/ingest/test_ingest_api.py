"""The ingest API over real HTTP, against kinesalite and a SQLite job store: Properties 1-4 and the edges."""

from __future__ import annotations

import gzip
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from eventpipe_common.errors import ConfigurationError
from eventpipe_common.jobstore import JobStore
from eventpipe_ingest.app import create_app
from eventpipe_ingest.auth import hash_key
from eventpipe_ingest.settings import IngestSettings
from eventpipe_ingest.transport import PutRecordsTransport, Record, RecordResult, StreamError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.helpers.ingest_events import batches, encode, held_stream, invalid_event, line_of, valid_event
from tests.helpers.ingest_helpers import create_stream, read_stream, shard_of_key

HYPOTHESIS = settings(max_examples=12, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


REJECT_PREFIX = b'{"_reject":'


def records_of_job(endpoint: str, stream: str, job_id: str) -> list[dict[str, Any]]:
    """The job's events in the stream, each with the shard it is on as "__shard" (reject records, told apart by
    their first bytes, are left out)."""
    events = [json.loads(r["Data"]) | {"__shard": r["ShardId"]} for r in read_stream(endpoint, stream)
              if not r["Data"].startswith(REJECT_PREFIX)]
    return [e for e in events if e.get("_job_id") == job_id]


def reject_records_of_job(endpoint: str, stream: str, job_id: str) -> list[dict[str, Any]]:
    """The job's reject records: the `_reject` member, with the shard it is on as "__shard"."""
    out = []
    for record in read_stream(endpoint, stream):
        if record["Data"].startswith(REJECT_PREFIX):
            value = json.loads(record["Data"])
            assert list(value) == ["_reject", "_job_id"], value
            if value["_job_id"] == job_id:
                out.append(value["_reject"] | {"__shard": record["ShardId"]})
    return out


# ---------------------------------------------------------------- Property 1
@HYPOTHESIS
@given(batch=batches(), fmt=st.sampled_from(["json", "ndjson", "csv"]))
def test_property_1_valid_ingestion_returns_job_id(client: httpx.Client, batch: list[tuple[dict[str, Any], bool]],
                                                    fmt: str) -> None:
    """Property 1: a request with valid events gets 202 and a job id (UUID); counts add up; every rejected
    event is reported with its line and reasons."""
    events = [e for e, _ in batch]
    body, content_type = encode(events, fmt)
    answer = client.post("/api/v1/ingest", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == 202, answer.text
    out = answer.json()
    assert str(uuid.UUID(out["job_id"])) == out["job_id"]
    n_valid = sum(1 for _, ok in batch if ok)
    assert out["received"] == len(batch)
    assert out["accepted"] == n_valid
    assert out["rejected"] == len(batch) - n_valid
    assert out["duplicates"] == 0
    assert out["state"] == ("published" if n_valid else "committed")
    expected_lines = [line_of(i, fmt) for i, (_, ok) in enumerate(batch) if not ok]
    assert [r["line"] for r in out["rejects"]] == expected_lines
    for reject in out["rejects"]:
        assert reject["reason"]
        assert reject["violations"] and all(v["field"] or v["rule"] for v in reject["violations"])


def test_duplicates_within_a_request_are_counted(client: httpx.Client) -> None:
    event = valid_event(1)
    answer = client.post("/api/v1/ingest", json=[event, dict(event), valid_event(2)])
    assert answer.status_code == 202, answer.text
    out = answer.json()
    assert (out["received"], out["accepted"], out["rejected"], out["duplicates"]) == (3, 2, 0, 1)


# ---------------------------------------------------------------- Property 2
@HYPOTHESIS
@given(batch=batches(max_size=40))
def test_property_2_ingested_events_appear_in_kinesis(client: httpx.Client, kinesis_endpoint: str, stream: str,
                                                     batch: list[tuple[dict[str, Any], bool]]) -> None:
    """Property 2: after a 202, every accepted event is in the stream (read back with GetRecords), once, as
    single-line JSON with "_job_id", on the shard its user_id routes to (event_id without one); no rejected event is
    there as an event: each rejected line is there once as a reject record (its line, raw text and reasons, on
    the shard of the job id)."""
    body, content_type = encode([e for e, _ in batch], "ndjson")
    answer = client.post("/api/v1/ingest", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    sent_lines = body.decode().splitlines()
    reject_records = sorted(reject_records_of_job(kinesis_endpoint, stream, job_id), key=lambda r: r["line"])
    assert [r["line"] for r in reject_records] == [n + 1 for n, (_, ok) in enumerate(batch) if not ok]
    assert [r["line"] for r in reject_records] == [r["line"] for r in answer.json()["rejects"]]
    for record, reject in zip(reject_records, answer.json()["rejects"], strict=True):
        assert record["raw"] == sent_lines[record["line"] - 1]
        assert record["reasons"] == reject["violations"] and record["source"] == "ingest"
        assert record["__shard"] == shard_of_key(kinesis_endpoint, stream, job_id)
    in_stream = records_of_job(kinesis_endpoint, stream, job_id)
    valid = [e for e, ok in batch if ok]
    assert sorted(r["event_id"] for r in in_stream) == sorted(e["event_id"] for e in valid)
    by_id = {e["event_id"]: e for e in valid}
    for record in in_stream:
        shard = record.pop("__shard")
        sent = by_id[record["event_id"]]
        assert shard == shard_of_key(kinesis_endpoint, stream, sent.get("user_id", sent["event_id"]))
        assert {k: v for k, v in record.items() if k != "_job_id"} == sent


def flaky(seed: int, failure_rate: float,
          throttle_calls: int = 1) -> Callable[[PutRecordsTransport], PutRecordsTransport]:
    """Partial failures and throttling injected at the client boundary: kinesalite never produces them.

    The first `throttle_calls` calls fail whole (ProvisionedThroughputExceeded); after that each
    call sends a random subset to the real stream and reports the rest as failed, the way Kinesis does.
    """
    rng = random.Random(seed)
    calls = {"n": 0}

    def wrap(real: PutRecordsTransport) -> PutRecordsTransport:
        async def put(entries: list[Record], /) -> list[RecordResult]:
            calls["n"] += 1
            if calls["n"] <= throttle_calls:
                raise StreamError("ProvisionedThroughputExceededException", "Rate exceeded", 400)
            fail = [rng.random() < failure_rate for _ in entries]
            sent = [e for e, f in zip(entries, fail, strict=True) if not f]
            real_results = iter(await real(sent) if sent else [])
            return [RecordResult(error_code=rng.choice(["ProvisionedThroughputExceededException", "InternalFailure"]),
                                 error_message="injected") if f else next(real_results) for f in fail]

        return put

    return wrap


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 1200), pack_max_bytes=st.sampled_from([0, 1024, 256 * 1024]))
@example(seed=1, n=1001, pack_max_bytes=0).via("several calls without packing")
@example(seed=2, n=1200, pack_max_bytes=1024).via("many small packs, some failing")
def test_property_2_with_partial_failures_and_throttling(ingest_app: Callable[..., Any], kinesis_endpoint: str,
                                                         stream: str, seed: int, n: int, pack_max_bytes: int) -> None:
    """Property 2: with throttling and partial PutRecords failures, a 202 still means every event is in the
    stream exactly once (the failed records, and only those, were sent again), packed or not; without packing,
    requests over 500 events use several calls."""
    with ingest_app(wrap_transport=flaky(seed, 0.3), ingest_retry_base_seconds=0.001,
                    ingest_retry_max_seconds=0.01, ingest_pack_max_bytes=pack_max_bytes) as client:
        events = [valid_event(i % 7) for i in range(n)]
        answer = client.post("/api/v1/ingest", json=events)
        assert answer.status_code == 202, answer.text
        metrics = client.get("/api/v1/metrics").text
    assert "eventpipe_ingest_kinesis_throttles_total" in metrics
    assert _metric(metrics, "eventpipe_ingest_kinesis_throttles_total") >= 1
    if pack_max_bytes == 0:
        assert _metric(metrics, "eventpipe_ingest_kinesis_put_records_calls_total") >= 1 + (n + 499) // 500
    in_stream = records_of_job(kinesis_endpoint, stream, answer.json()["job_id"])
    assert sorted(r["event_id"] for r in in_stream) == sorted(e["event_id"] for e in events)


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


def test_never_202_when_kinesis_does_not_acknowledge(ingest_app: Callable[..., Any], kinesis_endpoint: str,
                                                     stream: str, job_store_dsn: str) -> None:
    """Property 2: a stream that keeps throttling (injected: kinesalite does not throttle) gets 503 with
    Retry-After within the deadline, the job is failed, and nothing of it is in the stream."""
    with ingest_app(wrap_transport=flaky(0, 1.0, throttle_calls=10**9), ingest_publish_deadline_seconds=0.5,
                    ingest_retry_base_seconds=0.01, ingest_retry_max_seconds=0.05) as client:
        answer = client.post("/api/v1/ingest", json=[valid_event(1), valid_event(2)])
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "1"
        body = answer.json()
        assert body["code"] == "publish_timeout" and "0.5s" in body["detail"]
        status = client.get(f"/api/v1/status/{body['job_id']}").json()
        assert status["state"] == "failed" and "did not acknowledge" in status["reason"]
    assert records_of_job(kinesis_endpoint, stream, body["job_id"]) == []


@pytest.mark.parametrize("kinesis_client", ["lean", "aiobotocore"])
def test_each_kinesis_client_publishes_every_event(ingest_app: Callable[..., Any], kinesis_endpoint: str,
                                                   stream: str, kinesis_client: str) -> None:
    """Property 2: both PutRecords paths (the lean signed call and aiobotocore's client) deliver every event
    of a request that needs several calls."""
    events = [valid_event(i % 13) for i in range(1100)]
    with ingest_app(ingest_kinesis_client=kinesis_client) as client:
        answer = client.post("/api/v1/ingest", json=events)
    assert answer.status_code == 202, answer.text
    in_stream = records_of_job(kinesis_endpoint, stream, answer.json()["job_id"])
    assert sorted(r["event_id"] for r in in_stream) == sorted(e["event_id"] for e in events)


@pytest.mark.parametrize("kinesis_client", ["lean", "aiobotocore"])
def test_missing_stream_is_503_and_job_failed(ingest_app: Callable[..., Any], kinesis_client: str) -> None:
    with ingest_app(stream_name="no-such-stream", ingest_kinesis_client=kinesis_client) as client:
        answer = client.post("/api/v1/ingest", json=[valid_event(1)])
        assert answer.status_code == 503
        assert answer.json()["code"] == "publish_failed"
        assert "ResourceNotFoundException" in answer.json()["detail"]
        assert client.get(f"/api/v1/status/{answer.json()['job_id']}").json()["state"] == "failed"
        assert client.get("/api/v1/ready").status_code == 503


# ---------------------------------------------------------------- Property 3
@HYPOTHESIS
@given(batch=batches(max_size=10), unknown=st.uuids())
def test_property_3_status_lookup(client: httpx.Client, job_store_dsn: str,
                                  batch: list[tuple[dict[str, Any], bool]], unknown: uuid.UUID) -> None:
    """Property 3: the status of an ingested job is found with its state and counts; it becomes committed
    when the consumer records every accepted event; an unknown id gets 404."""
    answer = client.post("/api/v1/ingest", json=[e for e, _ in batch]).json()
    status = client.get(f"/api/v1/status/{answer['job_id']}")
    assert status.status_code == 200
    got = status.json()
    assert got["job_id"] == answer["job_id"]
    assert got["state"] == answer["state"]
    for key in ("received", "accepted", "rejected", "duplicates"):
        assert got[key] == answer[key]
    assert got["committed"] == 0
    if answer["accepted"]:
        store = JobStore.from_dsn(job_store_dsn)
        store.record_committed({answer["job_id"]: answer["accepted"]})
        store.close()
        got = client.get(f"/api/v1/status/{answer['job_id']}").json()
        assert (got["state"], got["committed"]) == ("committed", answer["accepted"])
    missing = client.get(f"/api/v1/status/{unknown}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


# ---------------------------------------------------------------- Property 4
def _truncated_array(events: list[dict[str, Any]], cut: float) -> bytes:
    text = json.dumps(events)
    return text[:max(1, int(len(text) * cut))].encode()


garbage = st.one_of(
    # A JSON array cut short: the core cannot parse it at all (ParseError with line and column).
    st.builds(_truncated_array, st.lists(st.builds(valid_event, st.integers(1, 9)), min_size=1, max_size=5),
              st.floats(0.05, 0.95)),
    # Lines of text of which none is JSON (letters chosen so that no line spells true/false/null).
    st.lists(st.text(alphabet="xyzXYZ#%=<> ", min_size=1, max_size=30).filter(str.strip), min_size=1, max_size=5)
    .map(lambda lines: "\n".join(lines).encode()),
    # Not UTF-8.
    st.binary(max_size=30).filter(lambda b: b"\n" not in b).map(lambda b: b"\xff\xfe" + b),
)


@HYPOTHESIS
@given(body=garbage, content_type=st.sampled_from(["application/json", "application/x-ndjson"]))
def test_property_4_unparsable_body_is_400_with_line_and_column(client: httpx.Client, body: bytes,
                                                               content_type: str) -> None:
    """Property 4: a body of which nothing can be parsed gets 400 naming the line and column; nothing is
    accepted."""
    if content_type == "application/x-ndjson" and body.startswith(b"["):
        body = body.replace(b"\n", b" ")  # one line that is not JSON: still nothing parses
    answer = client.post("/api/v1/ingest", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == 400, answer.text
    out = answer.json()
    assert out["code"] == "parse_error"
    assert out["line"] >= 1 and out["column"] >= 1, out


def test_property_4_a_json_array_with_a_broken_element_is_400(client: httpx.Client, kinesis_endpoint: str,
                                                               stream: str) -> None:
    """Property 4: a JSON array is one JSON text: a broken element (after a valid one) makes the body unparsable,
    400 with the line and column of the break, and nothing is published (the core splits arrays by structure and
    falls back to the full parse for the error)."""
    marker = f"broken-array-{uuid.uuid4()}"
    body = ("[" + json.dumps(valid_event(1, marker=marker)) + ',\n {"event_id": tru}]').encode()
    answer = client.post("/api/v1/ingest", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    out = answer.json()
    assert (out["code"], out["line"]) == ("parse_error", 2) and out["column"] >= 1
    assert not any(marker.encode() in r["Data"] for r in read_stream(kinesis_endpoint, stream))


def test_property_4_one_bad_line_does_not_sink_the_batch(client: httpx.Client) -> None:
    """Property 4: in NDJSON a line that is not JSON is a reject with its line; the valid lines go through."""
    body = (json.dumps(valid_event(1)) + "\n{not json\n" + json.dumps(valid_event(2)) + "\n").encode()
    answer = client.post("/api/v1/ingest", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert answer.status_code == 202, answer.text
    out = answer.json()
    assert (out["accepted"], out["rejected"]) == (2, 1)
    assert out["rejects"][0]["line"] == 2 and out["rejects"][0]["violations"][0]["rule"] == "json"


@HYPOTHESIS
@given(content_type=st.sampled_from(["text/plain", "application/xml", "application/octet-stream", "",
                                     "multipart/form-data; boundary=x"]))
def test_property_4_unsupported_content_type_is_415(client: httpx.Client, content_type: str) -> None:
    """Property 4: a Content-Type other than JSON, NDJSON or CSV gets 415 naming the supported ones."""
    answer = client.post("/api/v1/ingest", content=b"[]", headers={"Content-Type": content_type})
    assert answer.status_code == 415
    assert "application/x-ndjson" in answer.json()["detail"]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.integers(1, 5000), gzipped=st.booleans())
def test_property_4_oversize_body_is_413(ingest_app: Callable[..., Any], extra: int, gzipped: bool) -> None:
    """Property 4: a body over the size limit (also once decompressed) gets 413; nothing is accepted."""
    limit = 2000
    body = json.dumps([valid_event(1, properties={"pad": "x" * (limit + extra)})]).encode()
    headers = {"Content-Type": "application/json"}
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    with ingest_app(ingest_max_body_bytes=limit) as client:
        answer = client.post("/api/v1/ingest", content=body, headers=headers)
    assert answer.status_code == 413, answer.text
    assert str(limit) in answer.json()["detail"]


def test_property_4_too_many_events_is_413(ingest_app: Callable[..., Any]) -> None:
    """Property 4: more events than the configured count gets 413."""
    with ingest_app(ingest_max_events=5) as client:
        answer = client.post("/api/v1/ingest", json=[valid_event(i) for i in range(6)])
        assert answer.status_code == 413
        assert "limit is 5" in answer.json()["detail"]
        assert client.post("/api/v1/ingest", json=[valid_event(i) for i in range(5)]).status_code == 202


# ---------------------------------------------------------------- encodings, modes, auth, limits
def test_gzip_body_is_accepted(client: httpx.Client) -> None:
    body, content_type = encode([valid_event(1), valid_event(2)], "ndjson")
    answer = client.post("/api/v1/ingest", content=gzip.compress(body),
                         headers={"Content-Type": content_type, "Content-Encoding": "gzip"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 2


def test_bad_gzip_is_400_and_unknown_encoding_415(client: httpx.Client) -> None:
    bad = client.post("/api/v1/ingest", content=b"not gzip at all",
                      headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert bad.status_code == 400 and "gzip" in bad.json()["detail"]
    other = client.post("/api/v1/ingest", content=b"[]",
                        headers={"Content-Type": "application/json", "Content-Encoding": "br"})
    assert other.status_code == 415


def test_whole_reject_mode_refuses_and_publishes_nothing(ingest_app: Callable[..., Any], kinesis_endpoint: str,
                                                         stream: str) -> None:
    good = valid_event(1)
    bad = invalid_event("bad_timestamp")
    with ingest_app(ingest_reject_mode="whole") as client:
        answer = client.post("/api/v1/ingest", json=[good, bad])
        assert answer.status_code == 422, answer.text
        out = answer.json()
        assert (out["received"], out["rejected"]) == (2, 1)
        assert out["rejects"][0]["line"] == 2
        assert client.post("/api/v1/ingest", json=[valid_event(2)]).status_code == 202
    in_stream = read_stream(kinesis_endpoint, stream)
    assert all(json.loads(r["Data"]).get("event_id") != good["event_id"] for r in in_stream)
    assert not any(bad["event_id"].encode() in r["Data"] for r in in_stream), "no reject record either"


def test_rejected_lines_reach_the_stream_as_reject_records(ingest_app: Callable[..., Any], kinesis_endpoint: str,
                                                          stream: str) -> None:
    """The lines refused in partial mode are published (read back with GetRecords) with the events; the 202's
    rejects and the stream's reject records agree; a request of only invalid lines publishes its rejects too;
    a request refused whole (422) publishes nothing."""
    bad = invalid_event("bad_timestamp")
    body = "\n".join([json.dumps(valid_event(1)), "{not json", json.dumps(bad)]) + "\n"
    with ingest_app() as client:
        answer = client.post("/api/v1/ingest", content=body, headers={"Content-Type": "application/x-ndjson"})
        assert answer.status_code == 202, answer.text
        only_bad = client.post("/api/v1/ingest", content="{nope\n" + json.dumps(bad) + "\n",
                               headers={"Content-Type": "application/x-ndjson"})
        assert only_bad.status_code == 202, only_bad.text
        assert only_bad.json()["state"] == "committed" and only_bad.json()["accepted"] == 0
        status = client.get(f"/api/v1/status/{only_bad.json()['job_id']}").json()
        assert (status["state"], status["rejected"]) == ("committed", 2)
    refused_marker = f"refused-{uuid.uuid4()}"
    with ingest_app(ingest_reject_mode="whole") as client:
        refused = client.post("/api/v1/ingest", headers={"Content-Type": "application/x-ndjson"},
                              content=f"{json.dumps(valid_event(3))}\n{{{refused_marker}\n")
        assert refused.status_code == 422
    job_id = answer.json()["job_id"]
    records = sorted(reject_records_of_job(kinesis_endpoint, stream, job_id), key=lambda r: r["line"])
    assert [(r["line"], r["raw"]) for r in records] == [(2, "{not json"), (3, json.dumps(bad))]
    assert records[0]["reasons"][0]["rule"] == "json"
    assert any(v["field"] == "timestamp" for v in records[1]["reasons"])
    assert len(records_of_job(kinesis_endpoint, stream, job_id)) == 1
    # The consumer reads an event's job id from its first bytes: "_job_id" must be the first member.
    prefix = b'{"_job_id":"' + job_id.encode() + b'",'
    assert sum(1 for r in read_stream(kinesis_endpoint, stream) if r["Data"].startswith(prefix)) == 1
    only = reject_records_of_job(kinesis_endpoint, stream, only_bad.json()["job_id"])
    assert sorted(r["line"] for r in only) == [1, 2]
    marker = refused_marker.encode()
    assert not any(marker in r["Data"] for r in read_stream(kinesis_endpoint, stream)), "422 published something"


def test_oversize_event_is_rejected_with_its_line(client: httpx.Client, kinesis_endpoint: str, stream: str) -> None:
    """An event over 1 MiB is a reject; its reject record fits one Kinesis record: the raw text truncated,
    marked, and a "truncated" reason saying so."""
    big = valid_event(1, properties={"blob": "x" * (1024 * 1024 + 10)})
    answer = client.post("/api/v1/ingest", json=[valid_event(2), big])
    assert answer.status_code == 202, answer.text
    out = answer.json()
    assert (out["accepted"], out["rejected"]) == (1, 1)
    assert out["rejects"][0]["line"] == 2 and "limit" in out["rejects"][0]["reason"]
    [record] = [r for r in read_stream(kinesis_endpoint, stream) if r["Data"].startswith(REJECT_PREFIX)
                and json.loads(r["Data"])["_job_id"] == out["job_id"]]
    assert record["RecordBytes"] <= 1024 * 1024
    reject = json.loads(record["Data"])["_reject"]
    assert reject["line"] == 2 and reject["raw"].endswith(" [truncated by ingest]")
    assert reject["raw"].startswith('{"event_id":"' + big["event_id"] + '"')
    assert [v["rule"] for v in reject["reasons"]] == ["max_record_size", "truncated"]


def test_partition_key_field_is_configurable(ingest_app: Callable[..., Any], kinesis_endpoint: str,
                                             stream: str) -> None:
    with ingest_app(ingest_partition_key_field="event_type") as client:
        answer = client.post("/api/v1/ingest", json=[valid_event(n, event_type="purchase") for n in range(20)]).json()
    records = records_of_job(kinesis_endpoint, stream, answer["job_id"])
    # 20 users would spread over both shards; keyed by event_type they all go where "purchase" routes.
    assert [r["__shard"] for r in records] == [shard_of_key(kinesis_endpoint, stream, "purchase")] * 20


def test_auth_required_and_both_headers_work(ingest_app: Callable[..., Any], api_key: str) -> None:
    with ingest_app(auth=False) as client:
        assert client.post("/api/v1/ingest", json=[valid_event(1)]).status_code == 401
        wrong = client.post("/api/v1/ingest", json=[valid_event(1)], headers={"X-API-Key": api_key + "x"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
        assert client.get(f"/api/v1/status/{uuid.uuid4()}").status_code == 401
        ok = client.post("/api/v1/ingest", json=[valid_event(1)], headers={"X-API-Key": api_key})
        assert ok.status_code == 202
        other = client.post("/api/v1/ingest", json=[valid_event(1)], headers={"Authorization": "Bearer another-key"})
        assert other.status_code == 202
        # The ingest route reads the headers itself (not through FastAPI's security dependencies, which the
        # status route keeps): the same rules on both routes.
        for headers, status in (({"Authorization": "bearer another-key"}, 202), ({"Authorization": "Basic xyz"}, 401),
                                ({"Authorization": "Bearer"}, 401), ({"Authorization": f"Token {api_key}"}, 401),
                                ({"X-API-Key": api_key, "Authorization": "Bearer nope"}, 202)):
            answer = client.post("/api/v1/ingest", json=[valid_event(1)], headers=headers)
            assert answer.status_code == status, (headers, answer.text)
            job = answer.json()["job_id"] if status == 202 else uuid.uuid4()
            assert client.get(f"/api/v1/status/{job}", headers=headers).status_code == (200 if status == 202 else 401)
        assert client.get("/api/v1/health").status_code == 200
        assert client.get("/api/v1/metrics").status_code == 200


def test_keys_from_env_var_entries(ingest_app: Callable[..., Any]) -> None:
    with ingest_app(auth=False, ingest_api_keys_file=None,
                    ingest_api_keys=f"a:{hash_key('k-one')},b:{hash_key('k-two')}") as client:
        assert client.post("/api/v1/ingest", json=[valid_event(1)], headers={"X-API-Key": "k-two"}).status_code == 202
        assert client.post("/api/v1/ingest", json=[valid_event(1)], headers={"X-API-Key": "k-3"}).status_code == 401


def test_backpressure_429_when_too_many_in_flight(ingest_app: Callable[..., Any]) -> None:
    """A slow stream (injected: kinesalite answers at once) with one request allowed in flight: the second
    concurrent request gets 429 with Retry-After instead of queueing."""
    release = threading.Event()

    slow = held_stream(release)

    with ingest_app(wrap_transport=slow, ingest_max_concurrent_requests=1) as client:
        first: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: first.update(
            r=client.post("/api/v1/ingest", json=[valid_event(1)])))
        thread.start()
        deadline = time.monotonic() + 30  # the first request must be inside the publish step before we go on
        while _metric(client.get("/api/v1/metrics").text, "eventpipe_ingest_in_flight_requests") < 1:
            assert time.monotonic() < deadline, "the first request never got in flight"
            time.sleep(0.01)
        second = client.post("/api/v1/ingest", json=[valid_event(2)])
        assert second.status_code == 429
        assert second.headers["Retry-After"] == "1"
        release.set()
        thread.join(10)
        assert first["r"].status_code == 202
        assert _metric(client.get("/api/v1/metrics").text, "eventpipe_ingest_backpressure_total") == 1


def test_health_ready_metrics_cors(ingest_app: Callable[..., Any]) -> None:
    with ingest_app(ingest_cors_origins=["https://app.example"]) as client:
        assert client.get("/api/v1/health").json() == {"status": "ok"}
        ready = client.get("/api/v1/ready")
        assert ready.status_code == 200 and ready.json()["checks"] == {"stream": "ok", "job_store": "ok"}
        client.post("/api/v1/ingest", json=[valid_event(1), invalid_event("bad_timestamp")])
        text = client.get("/api/v1/metrics").text
        for name in ("eventpipe_ingest_requests_total", "eventpipe_ingest_events_accepted_total",
                     "eventpipe_ingest_events_rejected_total", "eventpipe_ingest_publish_latency_seconds_bucket",
                     "eventpipe_ingest_kinesis_retried_records_total", "eventpipe_ingest_kinesis_throttles_total",
                     "eventpipe_ingest_in_flight_requests", "eventpipe_ingest_request_body_bytes_total"):
            assert name in text, name
        assert 'route="/api/v1/ingest"' in text and 'status="202"' in text
        preflight = client.options("/api/v1/ingest", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        denied = client.options("/api/v1/ingest", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in denied.headers


def test_own_stream_fixture_round_trip(kinesis_endpoint: str) -> None:
    """The read-back helper itself sees what was put (so Property 2 cannot pass on an empty read)."""
    name = create_stream(kinesis_endpoint, shards=1)
    client = boto3.client("kinesis", endpoint_url=kinesis_endpoint, region_name="us-east-1")
    client.put_record(StreamName=name, Data=b'{"x":1}', PartitionKey="k")
    assert [r["Data"] for r in read_stream(kinesis_endpoint, name)] == [b'{"x":1}']


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/ready", "/api/v1/metrics"])
def test_open_endpoints_need_no_key(ingest_app: Callable[..., Any], path: str) -> None:
    with ingest_app(auth=False) as client:
        assert client.get(path).status_code == 200


def test_pipeline_schema_is_enforced(ingest_app: Callable[..., Any], tmp_path: Path) -> None:
    """The pipeline's schema (EVENTPIPE_SCHEMA_PATH) decides: an event type it does not list is a reject."""
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"event_types": ["page_view"],
                                  "fields": [{"path": "properties.page", "type": "string", "required": True}]}))
    with ingest_app(schema_path=schema) as client:
        answer = client.post("/api/v1/ingest", json=[
            valid_event(1), valid_event(2, event_type="purchase"), valid_event(3, properties={})])
    assert answer.status_code == 202, answer.text
    out = answer.json()
    assert (out["accepted"], out["rejected"]) == (1, 2)
    assert [r["line"] for r in out["rejects"]] == [2, 3]
    assert out["rejects"][0]["violations"][0]["field"] == "event_type"
    assert out["rejects"][1]["violations"][0]["field"] == "properties.page"


def test_invalid_pipeline_schema_is_a_configuration_error(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"fields": [{"path": "properties.x", "type": "no-such-type"}]}))
    with pytest.raises(ConfigurationError, match="schema_path|schema.json"):
        create_app(IngestSettings(schema_path=schema))
    with pytest.raises(ConfigurationError, match="cannot read"):
        create_app(IngestSettings(schema_path=tmp_path / "missing.json"))
