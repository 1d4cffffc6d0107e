"""The consumer's record path as it was before `eventpipe_core.consume_batch` (services/consumer records.py up to
commit c24b632): packed records split and prepared in Python, `process_batch`, lineage with pyarrow compute and the
per-shard window in Python. Kept as the reference the property test compares `consume_batch` with, and as the
"before" variant of bench/consumer.py. Also the core writer's commit path before `write_iceberg_parquet_groups`
(`partition_groups`, `write_data_files_per_partition`). Not used by the consumer.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlparse

import eventpipe_core
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from eventpipe_consumer.checkpoints import sequence_int
from eventpipe_consumer.records import Segment, StreamRecord, _job_id_of  # unchanged by consume_batch
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionFieldValue, PartitionKey
from pyiceberg.table import Table
from pyiceberg.typedef import Record

JOB_ID_FIELD = "_job_id"
# A line ingest refused travels as its own record (eventpipe_ingest.rejects): compact JSON starting with these
# bytes. Such records never reach the core; they go to raw_events_rejected with source "ingest".
INGEST_REJECT_PREFIX = b'{"_reject":'
# The core writes "_job_id" as the FIRST member of the events ingest publishes, so a record's job id is read
# from its first bytes, without parsing the record.
JOB_ID_PREFIX = b'{"_job_id":"'
MAX_JOB_ID_BYTES = 128

@dataclass(slots=True)
class PyDedupeWindow:
    """The event ids seen last on one shard, so that a producer's re-send (same event_id) is dropped."""

    capacity: int
    _ids: set[str] = field(default_factory=set)
    _order: deque[str] = field(default_factory=deque)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def unseen(self, event_ids: Sequence[str]) -> list[bool]:
        ids = self._ids
        return [event_id not in ids for event_id in event_ids]

    def add_all(self, event_ids: Sequence[str]) -> None:
        if self.capacity <= 0:
            return
        self._ids.update(event_ids)
        self._order.extend(event_ids)
        while len(self._order) > self.capacity:
            self._ids.discard(self._order.popleft())

    def clear(self) -> None:
        self._ids.clear()
        self._order.clear()

    def __len__(self) -> int:
        return len(self._ids)


def reject_row_for(record: StreamRecord, raw: str, violations: list[dict[str, object]], line: int | None,
                now: datetime) -> dict[str, object]:
    return {
        "raw": raw,
        "reasons": json.dumps(violations, ensure_ascii=False, default=str),
        "line": line,
        "source": "consumer",
        "job_id": _job_id_of(raw),
        "shard_id": record.shard_id,
        "sequence_number": record.sequence_number,
        "rejected_at": now,
    }


def is_ingest_reject(data: bytes) -> bool:
    return data.startswith(INGEST_REJECT_PREFIX)


def job_id_from_prefix(data: bytes) -> str | None:
    """The job id of an event record as ingest publishes it, from the record's first bytes; None without one."""
    if not data.startswith(JOB_ID_PREFIX):
        return None
    start = len(JOB_ID_PREFIX)
    end = data.find(b'"', start, start + MAX_JOB_ID_BYTES + 1)
    if end <= start or b"\\" in data[start:end]:  # no closing quote nearby, or an escape: not an id ingest made
        return None
    try:
        return data[start:end].decode("utf-8")
    except UnicodeDecodeError:
        return None


def job_events_of(records: Sequence[StreamRecord]) -> list[tuple[int, str]]:
    out = []
    for record in records:
        job_id = job_id_from_prefix(record.data)
        if job_id is not None:
            out.append((sequence_int(record.sequence_number), job_id))
    return out


def _ingest_reject_row(record: StreamRecord, now: datetime) -> dict[str, object]:
    """The raw_events_rejected row of a reject record ingest published; a malformed one is a consumer reject."""
    try:
        value = orjson.loads(record.data)
    except orjson.JSONDecodeError:
        value = None
    reject = value.get("_reject") if isinstance(value, dict) else None
    raw = reject.get("raw") if isinstance(reject, dict) else None
    reasons = reject.get("reasons") if isinstance(reject, dict) else None
    line = reject.get("line") if isinstance(reject, dict) else None
    if not (isinstance(raw, str) and isinstance(reasons, list) and (line is None or type(line) is int)):
        return reject_row_for(record, record.data.decode("utf-8", "replace"), [
            {"field": "_reject", "rule": "reject_record",
             "message": "the record starts like an ingest reject record but does not hold one"}], None, now)
    assert isinstance(value, dict)
    job_id = value.get(JOB_ID_FIELD)
    return {
        "raw": raw,
        "reasons": json.dumps(reasons, ensure_ascii=False, default=str),
        "line": line,
        "source": "ingest",
        "job_id": job_id if isinstance(job_id, str) else None,
        "shard_id": record.shard_id,
        "sequence_number": record.sequence_number,
        "rejected_at": now,
    }


@dataclass(slots=True)
class PreparedLines:
    """The NDJSON payload for the core, which record each line came from, and what was refused before."""

    payload: bytes
    line_records: list[int]  # line (0-based) -> index into the records
    prerejected: list[tuple[int, str, str]]  # (record index, rule, message)


def pack_lines(data: bytes) -> list[bytes] | None:
    """The lines of a packed record (compact JSON objects joined by "\n": every line starts with "{"), or None
    when `data` is not one (no line break, or a pretty-printed / broken record)."""
    if data[:1] != b"{" or b"\n" not in data:
        return None
    lines = data.split(b"\n")
    return lines if all(line[:1] == b"{" for line in lines) else None


def unpack(records: Sequence[StreamRecord]) -> Sequence[StreamRecord]:
    """One record per line: the lines of a packed record keep its shard, sequence number and arrival time."""
    if not any(b"\n" in record.data for record in records):
        return records
    out: list[StreamRecord] = []
    for record in records:
        lines = pack_lines(record.data)
        if lines is None:
            out.append(record)
        else:
            shard_id, sequence_number, _, arrival_us = record
            out.extend([StreamRecord(shard_id, sequence_number, line, arrival_us) for line in lines])
    return out


def prepare_lines(records: Sequence[StreamRecord]) -> PreparedLines:
    """Make one line per record for the core; refuse records that cannot be one line of UTF-8 JSON text."""
    datas = [record.data for record in records]
    payload = b"\n".join(datas)
    if (payload.count(b"\n") == len(datas) - 1 and b"\r" not in payload
            and all(data[:1] == b"{" for data in datas) and _is_utf8(payload)):
        return PreparedLines(payload, list(range(len(records))), [])
    lines: list[bytes] = []
    line_records: list[int] = []
    prerejected: list[tuple[int, str, str]] = []
    for index, data in enumerate(datas):
        if not data.strip():
            prerejected.append((index, "empty", "the record is empty"))
            continue
        if not _is_utf8(data):
            prerejected.append((index, "encoding", "the record is not UTF-8 text"))
            continue
        if data.lstrip()[:1] != b"{":
            prerejected.append((index, "json", "the record is not a JSON object"))
            continue
        if b"\n" in data or b"\r" in data:
            try:
                data = orjson.dumps(orjson.loads(data))
            except orjson.JSONDecodeError:
                prerejected.append((index, "line_break", "the record holds a line break and is not JSON"))
                continue
        lines.append(data)
        line_records.append(index)
    return PreparedLines(b"\n".join(lines), line_records, prerejected)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def process_records(records: Sequence[StreamRecord], schema: eventpipe_core.Schema,
                    window: PyDedupeWindow, now: datetime | None = None) -> Segment:
    """Turn one shard's records into raw_events rows (lineage added, re-sends dropped) and reject rows.

    The window is updated with the event ids kept, so the next segment of the shard drops their re-sends.
    """
    if not records:
        raise ValueError("process_records needs at least one record")
    now = now or datetime.now(UTC)
    shard_id = records[0].shard_id
    all_records = records
    records = unpack(records)
    events = len(records)
    rejects: list[dict[str, object]] = []
    if any(is_ingest_reject(r.data) for r in records):
        rejects = [_ingest_reject_row(r, now) for r in records if is_ingest_reject(r.data)]
        records = [r for r in records if not is_ingest_reject(r.data)]
    job_events = job_events_of(records)
    prepared = prepare_lines(records)
    rejects += [reject_row_for(records[i], records[i].data.decode("utf-8", "replace"),
                            [{"field": "", "rule": rule, "message": message}], None, now)
                for i, rule, message in prepared.prerejected]
    duplicates = 0
    table: pa.Table | None = None
    if prepared.line_records:
        result = eventpipe_core.process_batch(prepared.payload, format="ndjson", schema=schema)
        duplicates += result.duplicates
        for reject in result.rejects:
            record = records[prepared.line_records[reject.line - 1]]
            rejects.append(reject_row_for(record, reject.raw, [v.to_dict() for v in reject.violations],
                                       reject.line, now))
        table = _with_lineage(result.records, records, prepared.line_records)
    if table is not None and window.capacity > 0 and table.num_rows:
        event_ids = table["event_id"].to_pylist()
        if len(window):
            unseen = window.unseen(event_ids)
            if not all(unseen):
                table = table.filter(pa.array(unseen, pa.bool_()))
                duplicates += len(unseen) - table.num_rows
                event_ids = [e for e, keep in zip(event_ids, unseen, strict=True) if keep]
        window.add_all(event_ids)
    return Segment(
        shard_id=shard_id,
        first_sequence=sequence_int(all_records[0].sequence_number),
        last_sequence=sequence_int(all_records[-1].sequence_number),
        records=table,
        rejects=rejects,
        received=len(all_records),
        bytes_read=sum(len(r.data) for r in all_records),
        duplicates=duplicates,
        job_events=job_events,
        events=events,
        source=all_records,
    )


LINEAGE_COLUMNS = ("ingested_at", "shard_id", "sequence_number")


def _with_lineage(table: pa.Table, records: Sequence[StreamRecord], line_records: list[int]) -> pa.Table:
    """Add shard_id, sequence_number and ingested_at from the record each row's source_line points at."""
    rows = pc.subtract(table["source_line"], 1)
    by_line = [records[i] for i in line_records]
    sequence_numbers = pc.take(pa.array([r.sequence_number for r in by_line], pa.string()), rows)
    ingested = pc.take(pa.array([r.arrival_us for r in by_line], pa.int64()), rows)
    shard = pa.repeat(pa.scalar(records[0].shard_id, pa.string()), table.num_rows)
    return (table.drop_columns(["source_line"])
            .append_column("ingested_at", ingested.cast(pa.timestamp("us", tz="UTC")))
            .append_column("shard_id", shard)
            .append_column("sequence_number", sequence_numbers))


def partition_groups(rows: pa.Table, table: Table) -> list[tuple[Record, pa.Table]]:
    """The rows split by the table's CURRENT partition spec, each group with its partition record (services/consumer
    iceberg.py up to session 8; the consumer now computes only each row's partition, `iceberg.partition_plan`, and
    the core writer places the rows). Vectorized: the partition values are computed per column, the rows sorted by
    them once (not at all when they share one partition), and each run of equal values sliced out.
    """
    spec, schema = table.spec(), table.schema()
    if not spec.fields:
        return [(Record(), rows)]
    names = [f"_p{n}" for n in range(len(spec.fields))]
    keys = pa.table({name: field.transform.pyarrow_transform(schema.find_field(field.source_id).field_type)(
        rows[schema.find_column_name(field.source_id) or ""]) for name, field in zip(names, spec.fields, strict=True)})
    runs = keys.group_by(names, use_threads=False).aggregate([([], "count_all")])
    if runs.num_rows > 1:
        # group_by's own order is not the order of first appearance in every pyarrow release (pyarrow 26 swapped
        # two hours' groups): the groups are sorted as the rows are, so group i is the i-th run of sorted rows.
        sort_keys = [(name, "ascending") for name in names]
        order = pc.sort_indices(keys, sort_keys=sort_keys)
        rows = rows.combine_chunks().take(order)
        runs = runs.sort_by(sort_keys)
    groups = []
    offset = 0
    for run in runs.to_pylist():
        partition = PartitionKey(
            field_values=[PartitionFieldValue(field=field, value=run[name])
                          for field, name in zip(spec.fields, names, strict=True)],
            partition_spec=spec, schema=schema).partition
        count = int(run["count_all"])
        groups.append((partition, rows.slice(offset, count)))
        offset += count
    return groups


def write_data_files_per_partition(table: Table, rows: pa.Table) -> list[DataFile]:
    """The core writer's commit path before `write_iceberg_parquet_groups` (services/consumer iceberg.py up to
    session 7): rows sorted and taken per partition in Python (`partition_groups` above), then one
    `write_iceberg_parquet` call per partition file. The reference tests/consumer/test_consumer_partition_files.py
    compares the one-call writer with, and the "core-packed-take" variant of bench/consumer.py."""
    from eventpipe_core.iceberg import to_data_file

    if rows.num_rows == 0:
        return []
    rows = rows.select(table.schema().column_names)
    spec, schema = table.spec(), table.schema()
    files = []
    for partition, group in partition_groups(rows, table):
        location = table.location_provider().new_data_location(
            f"{spec.partition_to_path(partition, schema)}/{uuid.uuid4()}.parquet")
        local = urlparse(location).path
        os.makedirs(os.path.dirname(local), exist_ok=True)
        meta = eventpipe_core.write_iceberg_parquet(group, local, schema.model_dump_json(), "zstd")
        files.append(to_data_file(meta, table, file_path=location, partition=partition))
    return files
