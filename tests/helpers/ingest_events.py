"""Event bodies for the ingest tests: valid events and known-invalid ones, in the three formats."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from eventpipe_ingest.transport import PutRecordsTransport, Record, RecordResult
from hypothesis import strategies as st

EVENT_TYPES = ["page_view", "product_view", "add_to_cart", "purchase", "signup"]


def valid_event(user: int | None = None, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"event_id": str(uuid.uuid4()), "event_type": "page_view",
                             "timestamp": "2026-11-27T13:45:12.123Z", "properties": {"page": "/p/1"}}
    if user is not None:
        event["user_id"] = f"u_{user}"
    event.update(extra)
    return event


# Each invalid kind breaks one envelope rule of ARCHITECTURE.md's event contract.
INVALID_KINDS = ["missing_event_id", "missing_event_type", "bad_timestamp", "missing_timestamp"]


def invalid_event(kind: str) -> dict[str, Any]:
    event = valid_event(1)
    if kind == "missing_event_id":
        del event["event_id"]
    elif kind == "missing_event_type":
        del event["event_type"]
    elif kind == "bad_timestamp":
        event["timestamp"] = "not a time"
    elif kind == "missing_timestamp":
        del event["timestamp"]
    return event


@st.composite
def batches(draw: st.DrawFn, max_size: int = 30) -> list[tuple[dict[str, Any], bool]]:
    """A list of (event, is_valid); valid events have distinct event_ids."""
    kinds = draw(st.lists(st.one_of(st.none(), st.sampled_from(INVALID_KINDS)), min_size=1, max_size=max_size))
    out = []
    for kind in kinds:
        if kind is None:
            user = draw(st.one_of(st.none(), st.integers(1, 50)))
            event_type = draw(st.sampled_from(EVENT_TYPES))
            out.append((valid_event(user, event_type=event_type), True))
        else:
            out.append((invalid_event(kind), False))
    return out


def encode(events: list[dict[str, Any]], fmt: str) -> tuple[bytes, str]:
    """The body and Content-Type for `events` in `fmt` (json array, ndjson, csv)."""
    if fmt == "json":
        return json.dumps(events).encode(), "application/json"
    if fmt == "ndjson":
        return "".join(json.dumps(e) + "\n" for e in events).encode(), "application/x-ndjson"
    columns = ["event_id", "event_type", "timestamp", "user_id", "properties"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for e in events:
        writer.writerow({k: (json.dumps(e[k]) if k == "properties" and k in e else e.get(k, "")) for k in columns})
    return buf.getvalue().encode(), "text/csv"


def line_of(index: int, fmt: str) -> int:
    """The 1-based line the core reports for the event at `index` (CSV counts the header as line 1)."""
    return index + 2 if fmt == "csv" else index + 1


def held_stream(release: threading.Event) -> Callable[[PutRecordsTransport], PutRecordsTransport]:
    """A wrap_transport that holds every PutRecords call until `release` is set, so a request stays in flight
    (injected: kinesalite answers at once, and the tests need a slow stream)."""
    def wrap(real: PutRecordsTransport) -> PutRecordsTransport:
        async def put(entries: list[Record], /) -> list[RecordResult]:
            while not release.is_set():
                await asyncio.sleep(0.01)
            return await real(entries)
        return put
    return wrap
