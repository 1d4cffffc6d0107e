"""eventpipe_core: the Rust core of eventpipe (parse, validate, transform, dedupe, Arrow, Parquet).

This stub is the contract between the Rust core and the Python services. Change it only together with every
caller (services/ingest, services/consumer, tests) and say so in the issue note.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pyarrow as pa
from typing_extensions import Buffer

__version__: str

# ---------------------------------------------------------------- errors (Property 12)
class EventpipeError(ValueError):
    """Base of every error the core raises. A Rust error or panic always surfaces as one of these."""

class ParseError(EventpipeError):
    """The input cannot be parsed. `line` and `column` are 1-based; `line` is 0 when unknown."""
    line: int
    column: int
    message: str

class SchemaError(EventpipeError):
    """A pipeline schema is invalid. `rule` names the offending rule, e.g. "fields[2].pattern"."""
    rule: str
    message: str

class UnsupportedFormatError(EventpipeError):
    """`format` is not one of "json", "ndjson", "csv" (Property 48)."""
    format: str

class ValidationFailed(EventpipeError):  # noqa: N818 - a pydantic-style name, kept
    """Raised by `validate_or_raise`: carries every violation (like pydantic's ValidationError)."""
    def errors(self) -> list[Violation]: ...
    def error_count(self) -> int: ...
    def json(self) -> str: ...

# ---------------------------------------------------------------- schema
class Violation:
    """One broken rule of one event."""
    index: int          # 0-based index of the event in the batch (parse_*/validate_schema), or line-1 in process_batch
    field: str          # field path, e.g. "event_type" or "properties.amount"
    rule: str           # "required" | "type" | "min" | "max" | "enum" | "pattern" | "max_length" | "event_type"
                        # | "json" | "timestamp" | "range" (a number the promoted column cannot hold)
                        # | "unicode" (a lone UTF-16 surrogate escape)
    message: str        # human sentence naming field and rule
    value: Any          # the offending value (None when missing)
    def to_dict(self) -> dict[str, Any]: ...

class Schema:
    """A compiled pipeline schema.

    Source form (dict or JSON text)::

        {"event_types": ["page_view", "purchase", ...],          # optional: any type allowed when absent
         "fields": [                                              # envelope fields or "properties.<path>"
            {"path": "properties.amount", "type": "number", "required": true, "min": 0, "max": 1e6,
             "event_types": ["purchase"]},                         # optional per-type scope
            {"path": "properties.currency", "type": "string", "enum": ["EUR", "USD"]},
            {"path": "user_id", "type": "string", "pattern": "^u_[0-9]+$", "max_length": 64}],
         "promote": [{"path": "properties.amount", "column": "amount", "type": "double"},
                     {"path": "properties.currency", "column": "currency", "type": "string"}]}

    Field types: "string", "number", "integer", "boolean", "object", "array". Promoted column types:
    "double", "long", "int", "string", "boolean" (see eventpipe_common.tables.PROMOTED_TYPES).
    """
    def __init__(self, source: Mapping[str, Any] | str) -> None: ...  # raises SchemaError
    @staticmethod
    def envelope() -> Schema: ...  # the envelope contract of docs/architecture.md, no extra rules
    @property
    def event_types(self) -> list[str] | None: ...
    @property
    def promoted(self) -> list[tuple[str, str]]: ...  # (column name, type name) in declaration order
    def to_json(self) -> str: ...

# ---------------------------------------------------------------- row-level API (tests, small batches)
Format = Literal["json", "ndjson", "csv"]
# Input bytes: `bytes`, `str`, or a read-only contiguous buffer (a `memoryview`, an `mmap` opened with ACCESS_READ),
# borrowed without a copy. A writable buffer (bytearray) raises TypeError.
Data = bytes | str | Buffer

def parse_json(data: Data) -> list[dict[str, Any]]: ...  # NDJSON or a JSON array; ParseError on bad input
def parse_csv(data: Data) -> list[dict[str, Any]]: ...   # header row; "properties" column is JSON text
def parse(data: Data, format: str) -> list[dict[str, Any]]: ...  # UnsupportedFormatError
def validate_schema(events: Sequence[Mapping[str, Any]], schema: Schema | None = None) -> list[Violation]: ...
def validate_or_raise(events: Sequence[Mapping[str, Any]], schema: Schema | None = None) -> None: ...
def transform_batch(events: Sequence[Mapping[str, Any]], schema: Schema | None = None) -> list[dict[str, Any]]: ...
    # each output: envelope fields, event_ts (int, UTC microseconds), event_date (datetime.date),
    # event_hour (int), properties (JSON text or None), schema_version (int), promoted columns typed
def deduplicate(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]: ...  # first event_id wins

# ---------------------------------------------------------------- the fast path
class Reject:
    line: int                 # 1-based line (NDJSON/CSV data line; for a JSON array, the element's 1-based index)
    reason: str               # all violations in one sentence
    violations: list[Violation]
    raw: str                  # the raw line / element text as received
    def to_dict(self) -> dict[str, Any]: ...

class BatchResult:
    records: pa.Table
    """Columns, in order: event_id string, event_type string, user_id string?, session_id string?,
    event_ts timestamp[us, tz=UTC], event_date date32, event_hour int32, properties string? (JSON text),
    schema_version int32, <promoted columns>, job_id string? (from a reserved top-level "_job_id" field),
    source_line int64 (the 1-based line each record came from), and, when include_raw=True,
    raw string (the event as compact JSON, with "_job_id" set when job_id was given)."""
    rejects: list[Reject]
    duplicates: int            # valid events dropped because an earlier one had the same event_id
    received: int              # lines / elements seen
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...  # the records

def process_batch(
    data: Data,
    *,
    format: str = "ndjson",
    schema: Schema | None = None,
    job_id: str | None = None,
    include_raw: bool = False,
    threads: int | None = None,  # None: the cores this process may use (os.sched_getaffinity)
) -> BatchResult: ...

# ---------------------------------------------------------------- ingest
class IngestBatch:
    records: list[tuple[bytes, str, int | None, int]]
    """Kinesis records ready to send: (data, partition key, shard index into shard_starts or None when not
    packed, events). Data is NDJSON: one line per event, its compact JSON with "_job_id" first."""
    accepted: int              # events in the records
    rejects: list[Reject]      # unparsable or invalid records and events too large for a Kinesis record, by line
    duplicates: int            # valid events dropped because an earlier one had the same event_id
    received: int              # lines / elements / rows seen

def ingest_batch(
    data: Data,
    *,
    job_id: str,
    format: str = "ndjson",
    schema: Schema | None = None,
    partition_key_field: str = "user_id",
    shard_starts: Sequence[int] | None = None,
    pack_max_bytes: int = 0,
    max_record_bytes: int = 1024 * 1024,
    max_events: int = 0,
) -> IngestBatch:
    """The ingest service's path: parse, validate and deduplicate a request body into Kinesis records.
    Partition key: partition_key_field (event_id, event_type, user_id, session_id or a promoted column; SchemaError
    otherwise) when present and not empty, else event_id; over 256 characters, its SHA-256 in hex. With
    shard_starts (the open shards' starting hash keys, ascending) and pack_max_bytes > 0, each shard's lines are
    packed into records of at most pack_max_bytes (data + key); else one event per record. An event whose
    record would exceed max_record_bytes is a reject (rule "max_record_size"). With max_events > 0, a body of
    more records builds nothing: received counts them all, and records and rejects are empty (the caller refuses
    it)."""

def put_records_body(stream_name: str, records: list[tuple[bytes, str]]) -> tuple[bytes, str]:
    """The JSON body of a Kinesis PutRecords call for (data, partition key) pairs (Data in base64), and the
    body's SHA-256 in hex (what SigV4 signs)."""

# ---------------------------------------------------------------- consumer
class DedupeWindow:
    """The event ids kept last on one Kinesis shard, so that a producer's re-send (same event_id) is dropped. Ids
    leave in the order they came once more than `capacity` were added; capacity 0 remembers nothing."""
    def __init__(self, capacity: int) -> None: ...
    @property
    def capacity(self) -> int: ...
    def add_all(self, event_ids: Sequence[str]) -> None: ...
    def unseen(self, event_ids: Sequence[str]) -> list[bool]: ...
    def clear(self) -> None: ...
    def __contains__(self, event_id: str) -> bool: ...
    def __len__(self) -> int: ...

class ConsumeResult:
    @property
    def records(self) -> pa.Table:
        """raw_events rows: the columns of BatchResult.records without source_line, then ingested_at
        (timestamp[us, tz=UTC], the record's arrival), shard_id and sequence_number (of the record the line
        came from)."""
    parsed: bool               # some line reached validation (else the consumer has no table, not an empty one)
    rejects: list[tuple[int, str, str, list[dict[str, Any]], int | None, str | None]]
    """Rejected rows: (record index, source "ingest" or "consumer", raw line, reasons, line, job id). Ingest's
    reject records first, then records refused before validation, then invalid events, each in order."""
    duplicates: int            # valid events dropped as re-sends: in the batch (first wins) or by the window
    received: int              # Kinesis records
    events: int                # lines in them (one per record unless ingest packed them)
    bytes_read: int
    job_events: list[tuple[int, str, int]]
    """(record index, job id, lines) runs over the event lines carrying a job id (`"_job_id"` first), whatever
    became of them."""
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...  # the records

def consume_batch(
    data: Sequence[bytes],
    sequence_numbers: Sequence[str],
    arrival_us: Sequence[int],
    *,
    shard_id: str,
    window: DedupeWindow,
    schema: Schema | None = None,
) -> ConsumeResult:
    """The consumer's path, one call per GetRecords answer of one shard: Kinesis records (data, sequence number,
    arrival in UTC microseconds, in stream order) to raw_events rows with lineage and rejected rows. Packed
    records are split into their lines; ingest's reject records become rejects with source "ingest"; records
    that cannot be one NDJSON line are refused (rules "empty", "encoding", "json", "line_break"; a pretty-printed
    object is made one line); the rest are validated and deduplicated as process_batch does, then against
    `window`, which learns the kept ids only when the call succeeds."""

def record_lines(data: bytes) -> list[bytes] | None: ...  # the lines of a packed record, None when not one
def record_job_id(data: bytes) -> str | None: ...         # the job id of a record with "_job_id" first

# ---------------------------------------------------------------- Iceberg Parquet
class DataFileMeta:
    path: str
    record_count: int
    file_size_in_bytes: int
    column_sizes: dict[int, int]          # by Iceberg field id
    value_counts: dict[int, int]
    null_value_counts: dict[int, int]
    lower_bounds: dict[int, bytes]        # Iceberg single-value binary serialization
    upper_bounds: dict[int, bytes]
    split_offsets: list[int]

def write_iceberg_parquet(
    records: Any,                # anything with __arrow_c_stream__ (pyarrow.Table, BatchResult, ...)
    path: str,
    iceberg_schema: str,         # the table schema as Iceberg JSON (pyiceberg: schema.model_dump_json())
    compression: Literal["zstd", "snappy"] = "zstd",
    *,
    threads: int | None = None,  # columns encoded in parallel; None: the cores this process may use
) -> DataFileMeta: ...
def write_iceberg_parquet_groups(
    records: Any,                # anything with __arrow_c_stream__ (pyarrow.Table, ...)
    groups: Any,                 # one int32/uint32 column, one value per row: the index in `paths` of its file
    paths: list[str],            # one local path per group; every group must have rows
    iceberg_schema: str,
    compression: Literal["zstd", "snappy"] = "zstd",
    *,
    threads: int | None = None,  # files written at once; None: the cores this process may use
) -> list[DataFileMeta]: ...
def read_iceberg_parquet(path: str) -> pa.Table: ...

class FileResult:
    data_file: DataFileMeta
    rejects: list[Reject]      # lines numbered in the whole file
    duplicates: int
    received: int

def ndjson_file_to_parquet(
    path: str,                   # an NDJSON file
    out_path: str,
    iceberg_schema: str,
    *,
    schema: Schema | None = None,
    job_id: str | None = None,
    include_raw: bool = False,
    compression: Literal["zstd", "snappy"] = "zstd",
    threads: int | None = None,  # > 1: chunks on this many workers, the writer on its own thread; None: all cores
    chunk_bytes: int = 33554432,  # read ~this much of whole lines at a time (a longer line is read whole)
) -> FileResult:
    """process_batch + write_iceberg_parquet of a file, chunk by chunk: the same rows, rejects, duplicates and
    file contents, with the memory of one chunk per thread (not the whole input and all its records) at a time."""
