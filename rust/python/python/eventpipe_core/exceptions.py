"""The exception hierarchy of the core (Property 12). The Rust binding raises these, never a bare RuntimeError."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventpipe_core._native import Violation


class EventpipeError(ValueError):
    """Base of every error the core raises. A Rust error or panic always surfaces as one of these."""


class ParseError(EventpipeError):
    """The input cannot be parsed. `line` and `column` are 1-based; `line` is 0 when unknown."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        where = f"line {line}, column {column}: " if line else ""
        super().__init__(f"{where}{message}")
        self.message = message
        self.line = line
        self.column = column


class SchemaError(EventpipeError):
    """A pipeline schema is invalid. `rule` names the offending rule, e.g. "fields[2].pattern"."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(f"schema rule {rule}: {message}")
        self.message = message
        self.rule = rule


class UnsupportedFormatError(EventpipeError):
    """`format` is not one of "json", "ndjson", "csv" (Property 48)."""

    def __init__(self, format: str) -> None:
        super().__init__(f"unsupported format {format!r}: expected one of 'json', 'ndjson', 'csv'")
        self.format = format


class ValidationFailed(EventpipeError):  # noqa: N818 - the name is the API contract (__init__.pyi)
    """Raised by `validate_or_raise` and `transform_batch`: carries every violation (like pydantic's)."""

    def __init__(self, violations: list[Violation]) -> None:
        self._violations = list(violations)
        lines = [f"{len(self._violations)} violation(s)"]
        lines += [f"  event {v.index}: {v.message}" for v in self._violations[:20]]
        if len(self._violations) > 20:
            lines.append(f"  ... and {len(self._violations) - 20} more")
        super().__init__("\n".join(lines))

    def errors(self) -> list[Violation]:
        return list(self._violations)

    def error_count(self) -> int:
        return len(self._violations)

    def json(self) -> str:
        items: list[dict[str, Any]] = [v.to_dict() for v in self._violations]
        return json.dumps(items, default=str)
