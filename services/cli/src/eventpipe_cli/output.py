"""`-o table|json|csv` for `query` and `status`: the machine-readable forms, as pure functions.

JSON and CSV are a contract (services/cli/README.md, "Output formats"): keys are only ever added, never renamed.
Values a JSON encoder cannot take (timestamps, decimals, bytes) are written as strings (ISO 8601 for times).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import enum
import io
import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

QUERY_FORMAT_VERSION = 1
STATUS_FORMAT_VERSION = 1


class Output(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def plain(value: Any) -> Any:
    """A value JSON can hold: numbers, strings, booleans and null stay; times become ISO 8601 strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID | dt.timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    return str(value)


def query_json(columns: Sequence[str], rows: Sequence[Sequence[Any]], truncated: bool) -> str:
    """{"version": 1, "columns": [...], "rows": [{column: value}], "truncated": bool}."""
    return json.dumps({"version": QUERY_FORMAT_VERSION, "columns": list(columns),
                       "rows": [dict(zip(columns, (plain(v) for v in row), strict=True)) for row in rows],
                       "truncated": truncated}, ensure_ascii=False)


def _cell(value: Any) -> str:
    """A CSV cell: empty for NULL, JSON for nested values, the plain form otherwise."""
    if value is None:
        return ""
    converted = plain(value)
    if isinstance(converted, dict | list):
        return json.dumps(converted, ensure_ascii=False)
    return str(converted)


def query_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A header row, then one row per result row (RFC 4180 quoting, NULL as an empty cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180 (CRLF); it also makes csv quote a lone CR
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def status_json(report: dict[str, Any]) -> str:
    return json.dumps({"version": STATUS_FORMAT_VERSION, **plain(report)}, ensure_ascii=False, sort_keys=True)


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted.path, leaf) for every leaf of a nested dict/list: the status report as key-value rows."""
    if isinstance(value, dict):
        if not value and prefix:
            yield prefix, None
        for key in sorted(value, key=str):
            yield from flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list | tuple):
        if not value and prefix:
            yield prefix, None
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}.{index}")
    else:
        yield prefix, value


def status_csv(report: dict[str, Any]) -> str:
    """`key,value` rows, the key being the report's JSON path (`tables.raw_events.total_records`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180 (CRLF); it also makes csv quote a lone CR
    writer.writerow(["key", "value"])
    for key, value in flatten({"version": STATUS_FORMAT_VERSION, **report}):
        writer.writerow([key, _cell(value)])
    return buffer.getvalue()
