"""Kinesis records for the lines ingest refused in partial-acceptance mode: pure functions, no I/O.

Nothing a client sent and the service accepted may disappear (docs/architecture.md, Tables): a refused line of an
accepted request travels to `<ns>.raw_events_rejected` through the stream, in the same PutRecords flow as the
valid events, so a 202 still means Kinesis acknowledged everything. The record contract, shared with the
consumer (eventpipe_consumer.records):

    {"_reject":{"line":N,"raw":"<raw line>","reasons":[{"field":..,"rule":..,"message":..}],"source":"ingest"},
     "_job_id":"<job id>"}

compact JSON starting with the bytes REJECT_PREFIX (the consumer tells them apart from events by that prefix
alone); partition key = the job id. A raw line too large for one record (1 MiB, data + key) is truncated,
marked, and a "truncated" reason says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from eventpipe_ingest.records import MAX_BYTES_PER_RECORD, record_size

REJECT_PREFIX = b'{"_reject":'
TRUNCATED_MARKER = " [truncated by ingest]"
TRUNCATED_RULE = "truncated"


@dataclass(frozen=True)
class RefusedLine:
    """One line of an accepted request that ingest refused, with the text as the client sent it."""

    line: int
    raw: str
    reasons: list[dict[str, str]]  # {"field", "rule", "message"}


def reject_record(refused: RefusedLine, job_id: str, limit: int = MAX_BYTES_PER_RECORD) -> bytes:
    """The record's Data; always within `limit` bytes together with its partition key (the job id), for any
    limit that holds the envelope and the truncation reason (~350 bytes; Kinesis' is 1 MiB)."""
    data = _encode(refused.line, refused.raw, refused.reasons, job_id)
    if record_size(data, job_id) <= limit:
        return data
    raw_bytes = len(refused.raw.encode("utf-8"))
    reasons = [*refused.reasons, {"field": "", "rule": TRUNCATED_RULE, "message": (
        f"the raw line is {raw_bytes} bytes, too large for one Kinesis record: only its beginning is kept, "
        f"followed by {TRUNCATED_MARKER.strip()!r}")}]
    overhead = record_size(_encode(refused.line, TRUNCATED_MARKER, reasons, job_id), job_id)
    if overhead > limit:
        # The reasons alone do not fit beside the envelope (thousands of violations, or a tiny limit): keep the
        # truncation reason only, which says how large the line was.
        reasons = reasons[-1:]
        overhead = record_size(_encode(refused.line, TRUNCATED_MARKER, reasons, job_id), job_id)
    kept = _fit(refused.raw, limit - overhead)
    return _encode(refused.line, kept + TRUNCATED_MARKER, reasons, job_id)


def _encode(line: int, raw: str, reasons: list[dict[str, str]], job_id: str) -> bytes:
    # orjson keeps insertion order: the record starts with REJECT_PREFIX.
    return orjson.dumps({"_reject": {"line": line, "raw": raw, "reasons": reasons, "source": "ingest"},
                         "_job_id": job_id})


def _fit(text: str, budget: int) -> str:
    """A prefix of `text` (shrunk in proportion until it fits) whose JSON string encoding, quotes excluded,
    takes at most `budget` bytes."""
    if budget <= 0:
        return ""
    keep = min(len(text), budget)  # one character takes at least one byte
    while keep > 0:
        size = len(orjson.dumps(text[:keep])) - 2
        if size <= budget:
            return text[:keep]
        keep = min(keep - 1, keep * budget // size)
    return ""
