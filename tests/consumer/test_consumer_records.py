"""Kinesis records through the Rust core into raw_events rows: lineage, rejects, re-sends (Properties 13, 39)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import eventpipe_core
from eventpipe_consumer import iceberg
from eventpipe_consumer.records import (
    DedupeWindow,
    StreamRecord,
    committed_job_counts,
    job_id_from_prefix,
    process_records,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.consumer_helpers import STREAM, encode, make_event, new_tables

ENVELOPE = eventpipe_core.Schema.envelope()


def records_of(datas: list[bytes], shard: str = "shardId-000000000000", start: int = 100) -> list[StreamRecord]:
    return [StreamRecord(shard, str(start + i), data, 1_764_250_000_000_000 + i) for i, data in enumerate(datas)]


def test_lineage_columns_point_at_the_kinesis_record() -> None:
    events = [make_event(i, job_id=f"job-{i % 2}") for i in range(5)]
    segment = process_records(records_of([encode(e) for e in events]), ENVELOPE, DedupeWindow(100))
    assert segment.records is not None and segment.rejects == []
    rows = segment.records.to_pylist()
    assert [r["event_id"] for r in rows] == [e["event_id"] for e in events]
    assert [r["sequence_number"] for r in rows] == [str(100 + i) for i in range(5)]
    assert {r["shard_id"] for r in rows} == {"shardId-000000000000"}
    assert [r["job_id"] for r in rows] == [f"job-{i % 2}" for i in range(5)]
    assert rows[1]["ingested_at"].timestamp() * 1_000_000 == 1_764_250_000_000_001
    assert (segment.first_sequence, segment.last_sequence, segment.received) == (100, 104, 5)


def test_records_with_line_breaks_keep_lines_aligned() -> None:
    """A pretty-printed event is re-encoded on one line; a broken record with a newline is rejected here."""
    pretty = json.dumps(make_event(1), indent=2).encode()
    garbage = b"{\"broken\": \nnot json"
    datas = [encode(make_event(0)), pretty, garbage, b"", encode(make_event(2)), b"\xff\xfe"]
    segment = process_records(records_of(datas), ENVELOPE, DedupeWindow(10))
    assert segment.records is not None
    assert segment.records["sequence_number"].to_pylist() == ["100", "101", "104"]
    refused = sorted((str(r["sequence_number"]), json.loads(str(r["reasons"]))[0]["rule"]) for r in segment.rejects)
    assert refused == [("102", "line_break"), ("103", "empty"), ("105", "encoding")]


def test_resends_are_dropped_within_the_window() -> None:
    events = [make_event(i) for i in range(4)]
    window = DedupeWindow(3)
    first = process_records(records_of([encode(e) for e in events]), ENVELOPE, window)
    assert first.records is not None and first.records.num_rows == 4
    # Re-sends: same event ids, new sequence numbers. Only the last 3 ids are remembered.
    again = process_records(records_of([encode(e) for e in events], start=200), ENVELOPE, window)
    assert again.records is not None
    assert again.records["event_id"].to_pylist() == [events[0]["event_id"]]
    assert again.duplicates == 3
    in_batch = process_records(records_of([encode(events[0])] * 3, start=300), ENVELOPE, DedupeWindow(0))
    assert in_batch.records is not None and in_batch.records.num_rows == 1 and in_batch.duplicates == 2


def ingest_reject(line: int, raw: str, job_id: str = "job-r") -> bytes:
    """A reject record as ingest publishes it (eventpipe_ingest.rejects)."""
    return json.dumps({"_reject": {"line": line, "raw": raw, "reasons": [
        {"field": "", "rule": "json", "message": "not JSON"}], "source": "ingest"}, "_job_id": job_id},
        separators=(",", ":")).encode()


def test_ingest_reject_records_become_rejected_rows_and_never_reach_the_core() -> None:
    events = [make_event(i, job_id="job-r") for i in range(3)]
    forged = b'{"_reject":"not an object"}'
    datas = [encode(events[0]), ingest_reject(2, "{not json"), encode(events[1]), forged, encode(events[2])]
    segment = process_records(records_of(datas), ENVELOPE, DedupeWindow(10))
    assert segment.records is not None
    assert segment.records["event_id"].to_pylist() == [e["event_id"] for e in events]
    assert segment.records["sequence_number"].to_pylist() == ["100", "102", "104"], "lineage stays aligned"
    assert (segment.first_sequence, segment.last_sequence, segment.received) == (100, 104, 5)
    rejects = sorted(segment.rejects, key=lambda r: str(r["sequence_number"]))
    assert [(r["sequence_number"], r["source"]) for r in rejects] == [("101", "ingest"), ("103", "consumer")]
    ingest, malformed = rejects
    assert (ingest["raw"], ingest["line"], ingest["job_id"]) == ("{not json", 2, "job-r")
    assert json.loads(str(ingest["reasons"])) == [{"field": "", "rule": "json", "message": "not JSON"}]
    assert json.loads(str(malformed["reasons"]))[0]["rule"] == "reject_record"
    only = process_records(records_of([ingest_reject(1, "x"), ingest_reject(2, "y")]), ENVELOPE, DedupeWindow(10))
    assert only.records is None and [r["raw"] for r in only.rejects] == ["x", "y"]


def test_job_id_is_read_from_the_first_bytes() -> None:
    assert job_id_from_prefix(b'{"_job_id":"5f0c-1","event_id":"e"}') == "5f0c-1"
    assert job_id_from_prefix(b'{"event_id":"e","_job_id":"j"}') is None  # not first: not published by ingest
    assert job_id_from_prefix(b'{"_job_id":"a\\"b"}') is None
    assert job_id_from_prefix(b'{"_job_id":"' + b"x" * 500 + b'"}') is None
    assert job_id_from_prefix(b'{"_job_id":""}') is None
    assert job_id_from_prefix(ingest_reject(1, "x")) is None


def test_every_event_record_counts_for_its_job_whatever_became_of_it() -> None:
    """Written, dropped as a re-send (window), dropped as an in-batch duplicate, rejected by the core: each event
    record counts once for its job; reject records and records without a job id count for none."""
    window = DedupeWindow(100)
    events = [make_event(i, job_id="job-a") for i in range(4)]
    first = process_records(records_of([encode(e) for e in events]), ENVELOPE, window)
    invalid = make_event(9, job_id="job-b", timestamp="not a time")
    datas = ([encode(e | {"_job_id": "job-b"}) for e in events[:2]] + [encode(events[3] | {"_job_id": "job-b"})] * 2
             + [encode(invalid), ingest_reject(5, "x", "job-b"), encode(make_event(10, job_id=None))])
    second = process_records(records_of(datas, start=200), ENVELOPE, window)
    assert second.records is not None and second.records.num_rows == 1  # only the event without a job id is new
    assert committed_job_counts([first, second], {"shardId-000000000000": (100, 300)}) == {"job-a": 4, "job-b": 5}
    # Only what one commit added counts: another writer committed the shard up to 201.
    assert committed_job_counts([first, second], {"shardId-000000000000": (202, 206)}) == {"job-b": 3}
    assert committed_job_counts([first, second], {"other-shard": (0, 10**9)}) == {}


garbage = st.one_of(
    st.binary(min_size=0, max_size=40),
    st.text(max_size=30).map(str.encode),
    st.just(b"[1,2,3]"),
    st.just(b'{"event_type":"page_view"}'),
    st.just(b'{"event_id":"x","event_type":"page_view","timestamp":"not a time"}'),
    st.just(b'{"event_id":"y",\n"event_type":"page_view"}'),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 10_000).map(lambda i: ("valid", i)), garbage.map(lambda b: ("bad", b))),
                min_size=1, max_size=40))
def test_property_39_parse_failures_continue_processing(items: list[tuple[str, Any]]) -> None:
    """Property 39: Parse failures continue processing. Whatever garbage sits between valid events, every valid
    event comes out as a row, every other record as a reject naming its shard and sequence number."""
    datas: list[bytes] = []
    valid_ids: list[str] = []
    for n, (kind, value) in enumerate(items):
        if kind == "valid":
            event = make_event(value)
            event["event_id"] = f"e{n}"
            valid_ids.append(event["event_id"])
            datas.append(encode(event))
        else:
            datas.append(value)
    records = records_of(datas)
    segment = process_records(records, ENVELOPE, DedupeWindow(0))
    kept = segment.records["event_id"].to_pylist() if segment.records is not None else []
    assert kept == valid_ids
    rejected = sorted(int(r["sequence_number"]) for r in segment.rejects)  # type: ignore[call-overload]
    valid_sequences = {100 + n for n, (kind, _) in enumerate(items) if kind == "valid"}
    assert rejected == sorted(set(range(100, 100 + len(items))) - valid_sequences)
    assert all(r["shard_id"] == "shardId-000000000000" and json.loads(str(r["reasons"])) for r in segment.rejects)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 60), st.sampled_from(["core", "pyiceberg"])), min_size=1, max_size=4))
def test_property_13_processed_batches_written_to_iceberg(batches: list[tuple[int, str]]) -> None:
    """Property 13: Processed batches written to Iceberg tables. Each processed batch, written by either writer
    and committed, is read back from raw_events with the same events, types and lineage."""
    with tempfile.TemporaryDirectory() as tmp:
        _, raw, _ = new_tables(Path(tmp))
        expected: dict[str, dict[str, Any]] = {}
        position = 0
        window = DedupeWindow(0)
        for size, writer in batches:
            events = [make_event(position + i, job_id=f"job-{writer}") for i in range(size)]
            records = records_of([encode(e) for e in events], start=position + 1)
            segment = process_records(records, ENVELOPE, window)
            assert segment.records is not None
            outcome = iceberg.commit_pieces(
                raw, [iceberg.Piece(segment.shard_id, segment.first_sequence, segment.last_sequence,
                                    segment.records)],
                stream=STREAM, writer=writer)  # type: ignore[arg-type]
            assert outcome.record_count == size
            for event, record in zip(events, records, strict=True):
                expected[event["event_id"]] = {"event_type": event["event_type"], "job_id": f"job-{writer}",
                                               "sequence_number": record.sequence_number,
                                               "user_id": event["user_id"]}
            position += size
        rows = raw.scan().to_arrow().to_pylist()
        assert len(rows) == len(expected)
        for row in rows:
            want = expected[row["event_id"]]
            assert {k: row[k] for k in want} == want
            assert row["event_ts"].isoformat().startswith("2026-11-2")
            assert row["event_date"] == row["event_ts"].date()


def test_packed_records_are_read_line_by_line() -> None:
    """Records ingest packed (several NDJSON lines) give the same rows, rejects and job counts as one event per
    record; every line keeps its record's sequence number; a pretty-printed record is still not a pack."""
    events = [make_event(i, job_id="job-p") for i in range(6)]
    bad = b'{"_job_id":"job-p","event_id":"x","event_type":"page_view","timestamp":"no offset"}'
    lines = [encode(e) for e in events[:3]] + [bad] + [encode(e) for e in events[3:]]
    reject_line = ingest_reject(9, "refused line")
    pretty = make_event(7)
    packed = records_of([b"\n".join(lines[:4]), b"\n".join([*lines[4:], reject_line]),
                         json.dumps(pretty, indent=2).encode()])
    segment = process_records(packed, ENVELOPE, DedupeWindow(100))
    assert segment.records is not None
    rows = segment.records.to_pylist()
    assert [r["event_id"] for r in rows] == [e["event_id"] for e in [*events, pretty]]
    assert [r["sequence_number"] for r in rows] == ["100"] * 3 + ["101"] * 3 + ["102"]
    assert sorted((r["source"], r["sequence_number"]) for r in segment.rejects) == [("consumer", "100"),
                                                                                   ("ingest", "101")]
    assert (segment.received, segment.events, segment.first_sequence, segment.last_sequence) == (3, 9, 100, 102)
    # Job counts: every event line of the job, the rejected one included (it was accepted by ingest's rules).
    assert committed_job_counts([segment], {segment.shard_id: (100, 102)}) == {"job-p": 7}
