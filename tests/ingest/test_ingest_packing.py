"""Kinesis records from a request body (eventpipe_core.ingest_batch: partition keys, packing per shard), and the
shard map it routes by."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import eventpipe_core
import pytest
from eventpipe_core import _native
from eventpipe_ingest.records import MAX_BYTES_PER_RECORD, ShardMap, record_size
from eventpipe_ingest.shards import ShardMapCache
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.ingest_events import valid_event
from tests.helpers.ingest_helpers import create_stream, kinesis_client, kinesis_hash_key, read_stream, shard_of_key

FOUR_SHARDS = ShardMap(starts=(0, 2**126, 2**127, 3 * 2**126), shard_ids=("s0", "s1", "s2", "s3"))
JOB_ID = "5f0c8a9e-2b1d-4c3e-9f7a-0123456789ab"


def kinesis_route(key: str, shard_map: ShardMap) -> str:
    """The shard of `shard_map` whose range holds the key's hash: the last range start <= it."""
    hash_key = kinesis_hash_key(key)
    return [shard for start, shard in zip(shard_map.starts, shard_map.shard_ids, strict=True) if start <= hash_key][-1]


def ndjson(events: list[dict[str, Any]], separators: tuple[str, str] = (",", ":")) -> bytes:
    return "\n".join(json.dumps(e, separators=separators) for e in events).encode()


def expected_key(event: dict[str, Any]) -> str:
    """The partition key rule, written out: user_id when present and not empty, else event_id; a key over 256
    characters becomes its SHA-256 in hex."""
    key = event.get("user_id") or event["event_id"]
    return key if len(key) <= 256 else hashlib.sha256(key.encode()).hexdigest()


users = st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=300))


@settings(max_examples=150, deadline=None)
@given(batch=st.lists(st.tuples(users, st.integers(0, 200)), max_size=120), max_bytes=st.integers(1, 4000),
       spaced=st.booleans())
def test_packs_hold_every_event_once_in_order_on_its_own_shard(batch: list[tuple[str | None, int]], max_bytes: int,
                                                               spaced: bool) -> None:
    events = [valid_event(None, **({} if user is None else {"user_id": user}), padding="x" * pad)
              for user, pad in batch]
    body = ndjson(events, (", ", ": ") if spaced else (",", ":"))
    result = eventpipe_core.ingest_batch(body, job_id=JOB_ID, shard_starts=list(FOUR_SHARDS.starts),
                                         pack_max_bytes=max_bytes)
    assert (result.received, result.accepted, result.rejects, result.duplicates) == (len(events), len(events), [], 0)
    unpacked: dict[str, list[str]] = {}
    for data, key, shard, count in result.records:
        lines = data.split(b"\n")
        assert len(lines) == count
        assert record_size(data, key) <= max_bytes or count == 1, "only a lone event may exceed the pack size"
        shard_id = FOUR_SHARDS.shard_ids[shard]
        assert shard_id == kinesis_route(key, FOUR_SHARDS), "the record's own key routes it to the packed shard"
        for line in lines:
            assert line.startswith(b'{"_job_id":"' + JOB_ID.encode() + b'",')
            event = json.loads(line)
            assert kinesis_route(expected_key(event), FOUR_SHARDS) == shard_id, "each event on its own key's shard"
            unpacked.setdefault(shard_id, []).append(event["event_id"])
    expected: dict[str, list[str]] = {}
    for event in events:
        expected.setdefault(kinesis_route(expected_key(event), FOUR_SHARDS), []).append(event["event_id"])
    assert unpacked == expected  # per shard: the same events, in the order they were sent


@settings(max_examples=60, deadline=None)
@given(users=st.lists(users, min_size=1, max_size=30))
def test_partition_keys_fall_back_to_event_id_and_long_ones_are_hashed(users: list[str | None]) -> None:
    """Unpacked: one record per event, keyed by user_id, else event_id; over 256 characters, the SHA-256 in hex."""
    events = [valid_event(None, **({} if user is None else {"user_id": user})) for user in users]
    result = eventpipe_core.ingest_batch(ndjson(events), job_id=JOB_ID)
    assert [key for _, key, _, _ in result.records] == [expected_key(e) for e in events]
    assert [(shard, count) for _, _, shard, count in result.records] == [(None, 1)] * len(events)
    assert [json.loads(data) for data, _, _, _ in result.records] == [{"_job_id": JOB_ID, **e} for e in events]
    by_event_id = eventpipe_core.ingest_batch(ndjson(events), job_id=JOB_ID, partition_key_field="event_id")
    assert [key for _, key, _, _ in by_event_id.records] == [e["event_id"] for e in events]


def test_an_unknown_partition_key_field_is_refused() -> None:
    with pytest.raises(eventpipe_core.SchemaError, match="no_such_field"):
        eventpipe_core.ingest_batch(b"", job_id=JOB_ID, partition_key_field="no_such_field")


def test_pack_size_zero_or_no_map_sends_one_event_per_record() -> None:
    body = ndjson([valid_event(1), valid_event(2)])
    for packed in (eventpipe_core.ingest_batch(body, job_id=JOB_ID, shard_starts=list(FOUR_SHARDS.starts)),
                   eventpipe_core.ingest_batch(body, job_id=JOB_ID, pack_max_bytes=1024)):
        assert [(key, shard, count) for _, key, shard, count in packed.records] == [("u_1", None, 1), ("u_2", None, 1)]


def test_five_hundred_events_make_one_record_per_shard() -> None:
    events = [valid_event(n, padding="x" * 280) for n in range(500)]
    packed = eventpipe_core.ingest_batch(json.dumps(events).encode(), job_id=JOB_ID, format="json",
                                         shard_starts=list(FOUR_SHARDS.starts), pack_max_bytes=256 * 1024)
    assert sorted(shard for _, _, shard, _ in packed.records) == [0, 1, 2, 3]
    assert sum(count for _, _, _, count in packed.records) == packed.accepted == 500
    assert max(record_size(data, key) for data, key, _, _ in packed.records) <= MAX_BYTES_PER_RECORD


def test_events_are_sent_as_written_on_one_line_and_compacted_otherwise() -> None:
    """A line as the client wrote it (spaces kept) with "_job_id" first; a pretty-printed event, or one carrying a
    "_job_id" of its own, is compacted into one line with ingest's job id only."""
    spaced = {"event_id": "e1", "event_type": "page_view", "timestamp": "2026-11-27T13:45:12Z"}
    pretty = {"event_id": "e2", "event_type": "page_view", "timestamp": "2026-11-27T13:45:12Z", "_job_id": "old"}
    body = b"[%s, %s, %s]" % (json.dumps(spaced).encode(), json.dumps(pretty).encode(),
                              json.dumps({**pretty, "event_id": "e3"}, indent=2).encode())
    result = eventpipe_core.ingest_batch(body, job_id="j", format="json")
    datas = [data for data, _, _, _ in result.records]
    assert datas[0] == (b'{"_job_id":"j","event_id": "e1", "event_type": "page_view", '
                        b'"timestamp": "2026-11-27T13:45:12Z"}')
    assert datas[1] == b'{"_job_id":"j","event_id":"e2","event_type":"page_view","timestamp":"2026-11-27T13:45:12Z"}'
    assert datas[2] == datas[1].replace(b"e2", b"e3")


def test_shard_map_keeps_open_shards_only() -> None:
    shards = [
        {"ShardId": "shardId-0", "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2**128 - 1)},
         "SequenceNumberRange": {"StartingSequenceNumber": "1", "EndingSequenceNumber": "9"}},
        {"ShardId": "shardId-2", "HashKeyRange": {"StartingHashKey": str(2**127), "EndingHashKey": str(2**128 - 1)},
         "SequenceNumberRange": {"StartingSequenceNumber": "10"}},
        {"ShardId": "shardId-1", "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2**127 - 1)},
         "SequenceNumberRange": {"StartingSequenceNumber": "10"}},
    ]
    shard_map = ShardMap.from_shards(shards)
    assert shard_map.shard_ids == ("shardId-1", "shardId-2") and shard_map.starts == (0, 2**127)
    with pytest.raises(ValueError, match="no open shard"):
        ShardMap.from_shards(shards[:1])


def test_shard_map_routes_like_kinesalite(kinesis_endpoint: str) -> None:
    """Each key's packed shard is the shard a real Kinesis API server puts a record with that key on."""
    stream = create_stream(kinesis_endpoint, shards=3)
    client = kinesis_client(kinesis_endpoint)
    shard_map = ShardMap.from_shards(client.list_shards(StreamName=stream)["Shards"])
    keys = [f"u_{n}" for n in range(60)]
    answer = client.put_records(StreamName=stream, Records=[{"Data": b"{}", "PartitionKey": k} for k in keys])
    packed_alone = [shard_map.shard_ids[_native.pack_records([b"{}"], [k], list(shard_map.starts), 1024)[0][2]]
                    for k in keys]
    assert [r["ShardId"] for r in answer["Records"]] == packed_alone


def test_shard_map_cache_reloads_when_stale_invalidated_or_failed() -> None:
    calls: list[str] = []
    now = [0.0]
    shards: list[dict[str, Any]] = [{"ShardId": "a", "HashKeyRange": {"StartingHashKey": "0"}}]

    async def list_shards() -> list[dict[str, Any]]:
        calls.append("list")
        if not shards:
            raise ConnectionError("stream unreachable")
        return shards

    async def scenario() -> None:
        cache = ShardMapCache(list_shards, max_age=60, retry_after=10, clock=lambda: now[0])
        assert (await cache.get()) == ShardMap((0,), ("a",)) and len(calls) == 1
        now[0] = 30
        await cache.get()
        assert len(calls) == 1, "fresh: not loaded again"
        cache.invalidate()
        await cache.get()
        assert len(calls) == 2, "invalidated: loaded again"
        shards.clear()
        now[0] = 100
        assert (await cache.get()) == ShardMap((0,), ("a",)), "a failed reload keeps the last map"
        now[0] = 105
        await cache.get()
        assert len(calls) == 3, "no retry within retry_after"
        now[0] = 111
        await cache.get()
        assert len(calls) == 4

    asyncio.run(scenario())


def test_ingest_packs_a_request_into_one_record_per_shard(ingest_app: Any, kinesis_endpoint: str, stream: str) -> None:
    """200 events of 200 users over the 2 shards of the test stream: 2 Kinesis records, every event in one of them,
    each on the shard of its user (and with packing off, one record per event)."""
    for pack_max_bytes, expected_records in ((256 * 1024, 2), (0, 200)):
        with ingest_app(ingest_pack_max_bytes=pack_max_bytes) as client:
            answer = client.post("/api/v1/ingest", json=[valid_event(n) for n in range(200)])
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]
        lines = [entry for entry in read_stream(kinesis_endpoint, stream) if job_id.encode() in entry["Data"]]
        assert len(lines) == 200
        assert len({(e["ShardId"], e["SequenceNumber"]) for e in lines}) == expected_records
        for entry in lines:
            user = json.loads(entry["Data"])["user_id"]
            assert entry["ShardId"] == shard_of_key(kinesis_endpoint, stream, user)


def test_a_reshard_reloads_the_shard_map_and_loses_nothing(ingest_app: Any, kinesis_endpoint: str) -> None:
    """The stream is split while ingest holds a one-shard map: the next request's packed record lands on a child
    shard the map does not know, ingest notices from the PutRecords answer and reloads the map, and the request
    after that is routed per event again; every event of the three requests is in the stream exactly once."""
    stream = create_stream(kinesis_endpoint, shards=1)
    client_kinesis = kinesis_client(kinesis_endpoint)
    sent: list[dict[str, Any]] = []
    job_ids = []
    with ingest_app(stream_name=stream) as client:
        for request in range(3):
            if request == 1:  # the map (one shard) is fresh for 60 s: split the shard under it
                [parent] = client_kinesis.list_shards(StreamName=stream)["Shards"]
                client_kinesis.split_shard(StreamName=stream, ShardToSplit=parent["ShardId"],
                                           NewStartingHashKey=str(2**127))
            events = [valid_event(1000 * request + n) for n in range(100)]
            answer = client.post("/api/v1/ingest", json=events)
            assert answer.status_code == 202, answer.text
            sent += events
            job_ids.append(answer.json()["job_id"])
    lines = [entry | {"event": json.loads(entry["Data"])} for entry in read_stream(kinesis_endpoint, stream)]
    assert sorted(e["event"]["event_id"] for e in lines) == sorted(e["event_id"] for e in sent)
    after_reload = [e for e in lines if e["event"]["_job_id"] == job_ids[2]]
    assert len(after_reload) == 100
    for entry in after_reload:
        assert entry["ShardId"] == shard_of_key(kinesis_endpoint, stream, entry["event"]["user_id"])
    assert len({e["ShardId"] for e in after_reload}) == 2, "100 users over two child shards"
