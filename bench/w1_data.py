"""W1 input (WORKLOAD.md): N NDJSON events of about 300 bytes, deterministic from a seed.

About 1% of timestamps carry a non-UTC offset, 3% of lines re-send an earlier valid event exactly, 0.5% are
invalid (missing event_id, event_type outside the enum, unparsable or offset-less timestamp, amount negative or
above 1e6) and 0.1% are not JSON. Files are cached under ~/.cache/eventpipe/bench keyed by N and seed.

The CSV form (`csv_file`) holds the same events, one row each: a header, then the envelope's fields as cells
(an absent field is an empty cell) and `properties` as JSON text; a line that is not JSON becomes a row whose
`properties` cell is not JSON either.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import uuid
from pathlib import Path

EVENT_TYPES = ["page_view", "click", "purchase", "signup", "logout"]
CURRENCIES = ["EUR", "USD"]
OFFSETS = ["+02:00", "-05:00", "+05:30", "-03:30", "+09:00"]
REFERRERS = ["https://www.example.com/search?q=shoes", "https://news.example.org/article/42", "",
             "https://social.example.net/feed", "direct"]

# The W1 rules as a pipeline schema (eventpipe_core.Schema source form); every peer applies the same rules.
SCHEMA = {
    "event_types": EVENT_TYPES,
    "fields": [{"path": "properties.amount", "type": "number", "min": 0, "max": 1e6}],
    "promote": [{"path": "properties.amount", "column": "amount", "type": "double"},
                {"path": "properties.currency", "column": "currency", "type": "string"}],
}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _event(rng: random.Random) -> dict[str, object]:
    event_type = rng.choice(EVENT_TYPES)
    offset = rng.choice(OFFSETS) if rng.random() < 0.01 else "Z"
    day = rng.randrange(1, 29)
    second = rng.randrange(86_400)
    props: dict[str, object] = {"page": f"/p/{rng.randrange(100_000)}", "referrer": rng.choice(REFERRERS)}
    if event_type == "purchase":
        props["amount"] = round(rng.uniform(1, 2_000), 2)
    props["currency"] = rng.choice(CURRENCIES)
    return {
        "event_id": _uuid(rng),
        "event_type": event_type,
        "user_id": f"u_{rng.randrange(1, 100_001)}",
        "timestamp": f"2026-11-{day:02d}T{second // 3600:02d}:{second % 3600 // 60:02d}:{second % 60:02d}"
                     f".{rng.randrange(1000):03d}{offset}",
        "session_id": _uuid(rng),
        "properties": props,
        "schema_version": 1,
    }


def _invalid(rng: random.Random) -> dict[str, object]:
    event = _event(rng)
    kind = rng.randrange(6)
    if kind == 0:
        del event["event_id"]
    elif kind == 1:
        event["event_type"] = "teleport"
    elif kind == 2:
        event["timestamp"] = "yesterday"
    elif kind == 3:
        event["timestamp"] = str(event["timestamp"]).replace("Z", "")[:19]
    elif kind == 4:
        event["event_type"] = "purchase"
        event["properties"] = {"amount": -5.0, "currency": "EUR"}
    else:
        event["event_type"] = "purchase"
        event["properties"] = {"amount": 2_000_000.0, "currency": "USD"}
    return event


def lines(count: int, seed: int = 1) -> list[str]:
    """The N lines of W1, deterministic for (count, seed)."""
    rng = random.Random(seed)
    out: list[str] = []
    valid: list[int] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.03 and valid:
            out.append(out[valid[rng.randrange(max(0, len(valid) - 1000), len(valid))]])
        elif roll < 0.035:
            out.append(json.dumps(_invalid(rng), separators=(",", ":")))
        elif roll < 0.036:
            out.append('{"event_id": "' + _uuid(rng) + '", "event_type": "click", this is not json')
        else:
            valid.append(len(out))
            out.append(json.dumps(_event(rng), separators=(",", ":")))
    return out


def input_file(count: int, seed: int = 1) -> Path:
    """The W1 input as an NDJSON file (generated once, then cached)."""
    cache = Path(os.environ.get("EVENTPIPE_CACHE", Path.home() / ".cache" / "eventpipe")) / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"w1-{count}-{seed}.ndjson"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines(count, seed)) + "\n")
        tmp.rename(path)
    return path


CSV_COLUMNS = ["event_id", "event_type", "user_id", "timestamp", "session_id", "properties", "schema_version"]


def csv_row(line: str) -> list[str]:
    """One W1 line as a CSV row (CSV_COLUMNS)."""
    try:
        event = json.loads(line)
    except ValueError:
        # Not JSON: the row keeps an id and a type, and a `properties` cell that is not JSON.
        return ["", "click", "", "", "", line[line.index("this"):], ""]
    cells = []
    for name in CSV_COLUMNS:
        value = event.get(name)
        if value is None:
            cells.append("")
        elif name == "properties":
            cells.append(json.dumps(value, separators=(",", ":")))
        else:
            cells.append(str(value))
    return cells


def csv_file(count: int, seed: int = 1) -> Path:
    """The W1 input as a CSV file with a header row (generated once from the NDJSON file, then cached)."""
    path = input_file(count, seed).with_suffix(".csv")
    if not path.exists():
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        with input_file(count, seed).open() as f:
            for line in f:
                writer.writerow(csv_row(line.rstrip("\n")))
        tmp = path.with_suffix(".csv.tmp")
        tmp.write_text(out.getvalue())
        tmp.rename(path)
    return path
