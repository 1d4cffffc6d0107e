"""eventpipe_core: the Rust core of eventpipe (parse, validate, transform, dedupe, Arrow, Parquet).

The API is described by `__init__.pyi`; the functions live in the compiled `_native` module.
"""

from eventpipe_core._native import (
    BatchResult,
    DataFileMeta,
    IngestBatch,
    Reject,
    Schema,
    Violation,
    __version__,
    deduplicate,
    ingest_batch,
    parse,
    parse_csv,
    parse_json,
    process_batch,
    put_records_body,
    read_iceberg_parquet,
    transform_batch,
    validate_or_raise,
    validate_schema,
    write_iceberg_parquet,
)
from eventpipe_core.exceptions import (
    EventpipeError,
    ParseError,
    SchemaError,
    UnsupportedFormatError,
    ValidationFailed,
)

__all__ = [
    "BatchResult",
    "DataFileMeta",
    "EventpipeError",
    "IngestBatch",
    "ParseError",
    "Reject",
    "Schema",
    "SchemaError",
    "UnsupportedFormatError",
    "ValidationFailed",
    "Violation",
    "__version__",
    "deduplicate",
    "ingest_batch",
    "parse",
    "parse_csv",
    "parse_json",
    "process_batch",
    "put_records_body",
    "read_iceberg_parquet",
    "transform_batch",
    "validate_or_raise",
    "validate_schema",
    "write_iceberg_parquet",
]
