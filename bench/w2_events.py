"""W2's request bodies (docs/workloads.md): W1's events, from W1's own generator (bench/w1_data.py), in batches.

About 3% exact re-sends of an earlier event, about 0.5% invalid, about 0.1% not JSON, about 1% non-UTC offsets;
the pipeline schema is W1's rules.
"""

from __future__ import annotations

import json

from bench.w1_data import SCHEMA, lines

__all__ = ["SCHEMA", "json_array_batches"]


def json_array_batches(batches: int, size: int = 500, seed: int = 0) -> list[bytes]:
    """Bodies of `size` events as JSON arrays, the same bytes for ingest and the peer (json.loads must parse
    them, so a line that is not JSON becomes an object without envelope fields: ingest rejects it)."""
    all_lines = lines(batches * size, seed)
    out = []
    for b in range(batches):
        items = []
        for line in all_lines[b * size:(b + 1) * size]:
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError:
                items.append({"raw": line})
        out.append(json.dumps(items, separators=(",", ":")).encode())
    return out
