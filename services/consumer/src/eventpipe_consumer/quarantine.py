"""Poison records: find the rows of a batch whose content makes the write or the commit fail, so that they go
to raw_events_rejected (source "consumer") and the rest of the batch lands, instead of stopping the shard.

A failure is "content" when its exception is one that values raise (ValueError, OverflowError, ArithmeticError,
TypeError, UnicodeError, Arrow's invalid/type errors, a Rust panic), never an I/O, catalog, throttling or
commit-conflict error; and only when bisecting the batch pins it on some rows (a `check` of the rest passes).
A failure that bisection cannot pin on rows is not content: the shard stops (loudly) and is retried later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import eventpipe_core
import orjson
import pyarrow as pa

from eventpipe_consumer.checkpoints import sequence_int
from eventpipe_consumer.records import (
    DedupeWindow,
    Segment,
    StreamRecord,
    job_events_of,
    pack_lines,
    process_records,
    reject_row_for,
    unpack,
)

CONTENT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, OverflowError, ArithmeticError, TypeError, UnicodeError, KeyError, IndexError,
    pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
NOT_CONTENT_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, TimeoutError, MemoryError)
RULE = "consumer_write"


def is_panic(exc: BaseException) -> bool:
    """A Rust panic surfaces as pyo3's PanicException, a BaseException subclass with no importable home."""
    return type(exc).__name__ == "PanicException"


def is_content_error(exc: BaseException) -> bool:
    """Could this exception come from the values of the rows (rather than from storage, network or catalog)?"""
    if isinstance(exc, NOT_CONTENT_ERRORS) or type(exc).__module__.startswith(
            ("pyiceberg.exceptions", "sqlalchemy", "botocore", "aiobotocore", "urllib3", "requests")):
        return False
    return is_panic(exc) or isinstance(exc, CONTENT_ERRORS)


def find_poison(count: int, check: Callable[[int, int], None]) -> dict[int, BaseException]:
    """Indexes of the rows in [0, count) that fail `check(lo, hi)` on their own, with their error.

    `check(lo, hi)` raises when rows lo..hi-1 cannot be written. Bisects: k poison rows cost about 2k*log2(count)
    checks. A check failing for a non-content reason is raised as is (the caller stops the shard). An empty
    answer means the whole batch passes its check: the failure was not the rows' content.
    """
    poison: dict[int, BaseException] = {}
    stack = [(0, count)]
    while stack:
        lo, hi = stack.pop()
        try:
            check(lo, hi)
        except BaseException as exc:
            if not is_content_error(exc):
                raise
            if hi - lo == 1:
                poison[lo] = exc
                continue
            mid = (lo + hi) // 2
            stack.append((mid, hi))
            stack.append((lo, mid))
    return poison


@dataclass(frozen=True, slots=True)
class PoisonRow:
    """One row of raw_events that could not be written, and why."""

    shard_id: str
    sequence_number: str
    event_id: str | None
    job_id: str | None
    error: BaseException
    stage: str  # "write" (Parquet, partition values, commit) or "process" (the core, Arrow conversion)


def raw_line(records: Sequence[StreamRecord], sequence_number: str, event_id: str | None) -> bytes | None:
    """The line a row came from: in the record of its sequence number, the line with its event_id."""
    for record in records:
        if record.sequence_number != sequence_number:
            continue
        lines = pack_lines(record.data) or [record.data]
        if len(lines) == 1:
            return lines[0]
        for line in lines:
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict) and value.get("event_id") == event_id:
                return line
    return None


def reason(error: BaseException, stage: str) -> dict[str, object]:
    return {"field": "", "rule": RULE if stage == "write" else "consumer_process",
            "message": f"the consumer could not {'write' if stage == 'write' else 'process'} this event: "
                       f"{type(error).__name__}: {error}"}


def poison_reject_rows(poison: Sequence[PoisonRow], records: Sequence[StreamRecord],
                       now: datetime) -> list[dict[str, object]]:
    """raw_events_rejected rows (source "consumer") for poison rows, with the raw line when it is still known."""
    rows = []
    for item in poison:
        line = raw_line(records, item.sequence_number, item.event_id)
        raw = line.decode("utf-8", "replace") if line is not None else orjson.dumps(
            {"event_id": item.event_id}).decode()
        record = StreamRecord(item.shard_id, item.sequence_number, b"", 0)
        row = reject_row_for(record, raw, [reason(item.error, item.stage)], None, now)
        if row["job_id"] is None:
            row["job_id"] = item.job_id
        rows.append(row)
    return rows


def process_guarded(records: Sequence[StreamRecord], schema: eventpipe_core.Schema, window: DedupeWindow,
                    now: datetime | None = None,
                    on_poison: Callable[[StreamRecord, BaseException], None] = lambda record, exc: None,
                    ) -> list[Segment]:
    """`process_records`, but a line the core or Arrow cannot process becomes a reject instead of an error.

    When the whole batch fails with a content error, its lines are bisected: each half is processed on its own,
    down to single lines, which are rejected (rule consumer_process). The segments come back in stream order,
    to be buffered together (one commit cycle: a packed record split over two segments shares its sequence).
    """
    now = now or datetime.now(UTC)
    try:
        return [process_records(records, schema, window, now)]
    except BaseException as exc:
        if not is_content_error(exc):
            raise
        error = exc
    lines = unpack(records)
    if len(lines) > 1:
        mid = len(lines) // 2
        return (process_guarded(lines[:mid], schema, window, now, on_poison)
                + process_guarded(lines[mid:], schema, window, now, on_poison))
    line = lines[0]
    on_poison(line, error)
    raw = line.data.decode("utf-8", "replace")
    reject = reject_row_for(line, raw, [reason(error, "process")], None, now)
    sequence = sequence_int(line.sequence_number)
    return [Segment(shard_id=line.shard_id, first_sequence=sequence, last_sequence=sequence, records=None,
                    rejects=[reject], received=1, bytes_read=len(line.data), duplicates=0,
                    job_events=job_events_of([line]), events=1, source=[line])]
