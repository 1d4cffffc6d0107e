"""W1-shaped events for W2 (WORKLOAD.md): deterministic from a seed, about 300 bytes each, NDJSON lines.

About 3% exact re-sends of an earlier event, about 0.5% invalid (missing event_id, unknown event_type,
unparsable timestamp, amount out of range), about 0.1% not JSON, about 1% non-UTC offsets.
"""

from __future__ import annotations

import json
import random
import uuid

EVENT_TYPES = ["page_view", "click", "purchase", "signup", "logout"]

# The W1 rules as a pipeline schema (eventpipe_core.Schema source form).
SCHEMA = {
    "event_types": EVENT_TYPES,
    "fields": [{"path": "properties.amount", "type": "number", "min": 0, "max": 1e6}],
    "promote": [{"path": "properties.amount", "column": "amount", "type": "double"},
                {"path": "properties.currency", "column": "currency", "type": "string"}],
}


def _event(rng: random.Random) -> dict[str, object]:
    event_type = rng.choice(EVENT_TYPES)
    second = rng.randrange(86_400)
    offset = "+02:00" if rng.random() < 0.01 else "Z"
    hour = second // 3600 if offset == "Z" else (second // 3600 + 2) % 24
    props: dict[str, object] = {"page": f"/p/{rng.randrange(10_000)}", "referrer": "https://example.com/search?q=x",
                                "currency": rng.choice(["EUR", "USD"])}
    if event_type == "purchase":
        props["amount"] = round(rng.uniform(1, 500), 2)
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event_type": event_type,
        "user_id": f"u_{rng.randrange(1, 100_001)}",
        "timestamp": f"2026-11-27T{hour:02d}:{second % 3600 // 60:02d}:{second % 60:02d}.123{offset}",
        "session_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "properties": props,
        "schema_version": 1,
    }


def _invalid(rng: random.Random) -> str:
    event = _event(rng)
    kind = rng.randrange(4)
    if kind == 0:
        del event["event_id"]
    elif kind == 1:
        event["event_type"] = "teleport"
    elif kind == 2:
        event["timestamp"] = "yesterday"
    else:
        event["event_type"] = "purchase"
        event["properties"] = {"amount": -5.0, "currency": "EUR"}
    return json.dumps(event, separators=(",", ":"))


def lines(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.03 and out:
            out.append(out[rng.randrange(max(0, len(out) - 200), len(out))])
        elif roll < 0.034:
            out.append(_invalid(rng))
        elif roll < 0.035:
            out.append('{"event_id": "broken", this is not json')
        else:
            out.append(json.dumps(_event(rng), separators=(",", ":")))
    return out


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
