"""Cutting a stream of NDJSON lines into request bodies within the ingest service's limits."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def _text_bytes(item: object) -> int:
    text = item if isinstance(item, str) else getattr(item, "text", str(item))
    return len(str(text).encode())


def batches(items: Iterable[T], size: int, *, max_bytes: int | None = None,
            size_of: Callable[[T], int] = _text_bytes) -> Iterator[list[T]]:
    """Yield lists of at most `size` items; with `max_bytes`, also at most that many body bytes (line + newline).

    `size_of` gives an item's line length in bytes (default: the UTF-8 length of the item or its `.text`).
    A line larger than `max_bytes` on its own still goes out, alone, so the server can reject it by name.
    """
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    current: list[T] = []
    current_bytes = 0
    for item in items:
        item_bytes = size_of(item) + 1
        too_big = max_bytes is not None and bool(current) and current_bytes + item_bytes > max_bytes
        if len(current) >= size or too_big:
            yield current
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += item_bytes
    if current:
        yield current
