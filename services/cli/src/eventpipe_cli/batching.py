"""Cutting a stream of NDJSON lines into request bodies within the ingest service's limits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def batches(lines: Iterable[str], size: int, *, max_bytes: int | None = None) -> Iterator[list[str]]:
    """Yield lists of at most `size` lines; with `max_bytes`, also at most that many body bytes (line + newline).

    A line larger than `max_bytes` on its own still goes out, alone, so the server can reject it by name.
    """
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    current: list[str] = []
    current_bytes = 0
    for line in lines:
        line_bytes = len(line.encode()) + 1
        too_big = max_bytes is not None and bool(current) and current_bytes + line_bytes > max_bytes
        if len(current) >= size or too_big:
            yield current
            current, current_bytes = [], 0
        current.append(line)
        current_bytes += line_bytes
    if current:
        yield current
