"""Packing events into Kinesis records (eventpipe_ingest.records.pack_records), and the shard map it routes by."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pyarrow as pa
import pytest
from conftest import create_stream, kinesis_client, kinesis_hash_key, read_stream, shard_of_key
from eventpipe_ingest.records import MAX_BYTES_PER_RECORD, ShardMap, build_records, pack_records, record_size
from eventpipe_ingest.shards import ShardMapCache
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_events import valid_event

FOUR_SHARDS = ShardMap(starts=(0, 2**126, 2**127, 3 * 2**126), shard_ids=("s0", "s1", "s2", "s3"))


def kinesis_route(key: str, shard_map: ShardMap) -> str:
    """The shard of `shard_map` whose range holds the key's hash: the last range start <= it."""
    hash_key = kinesis_hash_key(key)
    return [shard for start, shard in zip(shard_map.starts, shard_map.shard_ids, strict=True) if start <= hash_key][-1]


events = st.lists(st.tuples(st.binary(min_size=1, max_size=200).map(lambda b: b"{" + b.replace(b"\n", b" ")),
                            st.text(min_size=1, max_size=40)), max_size=300)


@settings(max_examples=150, deadline=None)
@given(batch=events, max_bytes=st.integers(1, 4000))
def test_packs_hold_every_event_once_in_order_on_its_own_shard(batch: list[tuple[bytes, str]], max_bytes: int) -> None:
    data = [d for d, _ in batch]
    keys = [k for _, k in batch]
    sizes = [record_size(d, k) for d, k in batch]
    packed = pack_records(data, keys, sizes, FOUR_SHARDS, max_bytes)
    unpacked: dict[str, list[tuple[bytes, str]]] = {}
    for record, key, size, shard, count in zip(packed.data, packed.keys, packed.sizes, packed.shard_ids,
                                               packed.events, strict=True):
        lines = record.split(b"\n")
        assert len(lines) == count
        assert size == record_size(record, key)
        assert size <= max_bytes or count == 1, "only a lone event may exceed the pack size"
        assert shard == kinesis_route(key, FOUR_SHARDS), "the record's own key routes it to the packed shard"
        unpacked.setdefault(shard or "", []).extend((line, shard or "") for line in lines)
    expected: dict[str, list[tuple[bytes, str]]] = {}
    for d, k in batch:
        shard = kinesis_route(k, FOUR_SHARDS)
        expected.setdefault(shard, []).append((d, shard))
    assert unpacked == expected  # per shard: the same events, in the order they were sent


def test_pack_size_zero_or_no_map_sends_one_event_per_record() -> None:
    data, keys = [b'{"a":1}', b'{"b":2}'], ["k1", "k2"]
    sizes = [record_size(d, k) for d, k in zip(data, keys, strict=True)]
    for packed in (pack_records(data, keys, sizes, FOUR_SHARDS, 0), pack_records(data, keys, sizes, None, 1024)):
        assert (packed.data, packed.keys, packed.events) == (data, keys, [1, 1])


def test_five_hundred_events_make_one_record_per_shard() -> None:
    data = [b'{"event_id":"%d","padding":"' % n + b"x" * 280 + b'"}' for n in range(500)]
    keys = [f"u_{n}" for n in range(500)]
    packed = pack_records(data, keys, [record_size(d, k) for d, k in zip(data, keys, strict=True)], FOUR_SHARDS,
                          256 * 1024)
    assert sorted(packed.shard_ids) == ["s0", "s1", "s2", "s3"] and sum(packed.events) == 500
    assert max(packed.sizes) <= MAX_BYTES_PER_RECORD


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
    packed_alone = [pack_records([b"{}"], [k], [2 + len(k)], shard_map, 1024).shard_ids[0] for k in keys]
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


@settings(max_examples=60, deadline=None)
@given(users=st.lists(st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=300)), min_size=1, max_size=30))
def test_build_records_sizes_are_data_plus_key_bytes(users: list[str | None]) -> None:
    """Record sizes computed column-wise equal data + UTF-8 key bytes, with keys over 256 characters hashed and
    missing/empty user ids falling back to event_id."""
    table = pa.table({"raw": [f'{{"n":{n}}}' for n in range(len(users))],
                      "event_id": [f"e{n}" for n in range(len(users))],
                      "user_id": pa.array(users, pa.string()),
                      "source_line": list(range(1, len(users) + 1))})
    records = build_records(table, "user_id")
    expected_keys = [u if u else f"e{n}" for n, u in enumerate(users)]
    expected_keys = [k if len(k) <= 256 else hashlib.sha256(k.encode()).hexdigest() for k in expected_keys]
    assert records.keys == expected_keys
    assert records.sizes == [record_size(d, k) for d, k in zip(records.data, records.keys, strict=True)]
    assert records.lines == list(range(1, len(users) + 1))


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
