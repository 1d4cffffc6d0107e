"""Hypothesis strategies for shop event sets, and a plain-Python reference of what the dbt models must produce.

The reference is written independently of the SQL (loops over dicts), so a test comparing the two checks the
models' logic, not a copy of it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hypothesis import strategies as st

BASE = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
USERS = ["u1", "u2", "u3", "u4"]
PRODUCTS = ["p1", "p2", "p3"]
SESSIONS = ["s1", "s2", "s3", None]
TRAITS = ("email", "country", "plan")
OFFSETS = [dt.timedelta(0), dt.timedelta(hours=2), dt.timedelta(hours=-5)]


def _timestamp(minutes: int, offset: dt.timedelta) -> str:
    """RFC 3339 in a given UTC offset; the pipeline stores UTC."""
    moment = (BASE + dt.timedelta(minutes=minutes)).astimezone(dt.timezone(offset))
    return moment.isoformat()


@st.composite
def shop_event(draw: st.DrawFn, event_id: str) -> dict[str, Any]:
    """One valid shop event (per-type properties as the demo's schema sends them)."""
    event_type = draw(st.sampled_from(["page_view", "product_view", "add_to_cart", "purchase", "signup",
                                       "identify", "product_updated"]))
    # Minutes over three days, on a coarse grid so that ties in time happen.
    minutes = draw(st.integers(0, 3 * 24 * 4)) * 15
    event: dict[str, Any] = {"event_id": event_id, "event_type": event_type,
                             "timestamp": _timestamp(minutes, draw(st.sampled_from(OFFSETS)))}
    user = draw(st.sampled_from(USERS))
    session = draw(st.sampled_from(SESSIONS))
    properties: dict[str, Any] = {}
    if event_type == "page_view":
        properties = {"path": draw(st.sampled_from(["/", "/cart", "/p"]))}
        user = draw(st.sampled_from([*USERS, None]))
    elif event_type in ("product_view", "add_to_cart"):
        properties = {"product_id": draw(st.sampled_from(PRODUCTS))}
        if event_type == "add_to_cart":
            properties["quantity"] = draw(st.integers(1, 5))
    elif event_type == "purchase":
        properties = {"product_id": draw(st.sampled_from(PRODUCTS)), "quantity": draw(st.integers(1, 5)),
                      "amount": draw(st.integers(0, 100_000)) / 100, "currency": draw(st.sampled_from(["EUR", "USD"]))}
    elif event_type == "signup":
        properties = {"email": f"{user}@{draw(st.sampled_from(['a.com', 'b.org']))}",
                      "country": draw(st.sampled_from(["FR", "DE", "US"])), "plan": "free"}
    elif event_type == "identify":
        traits = {"email": st.sampled_from([f"{user}@a.com", f"{user}@c.net"]),
                  "country": st.sampled_from(["FR", "DE", "US", "IT"]),
                  "plan": st.sampled_from(["free", "pro", "team"])}
        chosen = draw(st.lists(st.sampled_from(TRAITS), min_size=1, max_size=3, unique=True))
        properties = {name: draw(traits[name]) for name in chosen}
    elif event_type == "product_updated":
        user = None
        properties = {"product_id": draw(st.sampled_from(PRODUCTS)),
                      "name": draw(st.sampled_from(["Mug", "Tee", "Cap"])),
                      "category": draw(st.sampled_from(["kitchen", "apparel"])),
                      "price": draw(st.integers(100, 5000)) / 100}
    if user is not None:
        event["user_id"] = user
    if session is not None:
        event["session_id"] = session
    event["properties"] = properties
    return event


@st.composite
def shop_batches(draw: st.DrawFn, batches: int = 2, min_size: int = 3, max_size: int = 14,
                 first_id: int = 0) -> list[list[dict[str, Any]]]:
    """Consumer commits of events; some events of a batch are resent in a later batch (same event_id)."""
    result: list[list[dict[str, Any]]] = []
    next_id = first_id
    for _ in range(batches):
        size = draw(st.integers(min_size, max_size))
        batch = [draw(shop_event(f"e{next_id + i:04d}")) for i in range(size)]
        next_id += size
        if result:
            earlier = [event for previous in result for event in previous]
            batch += draw(st.lists(st.sampled_from(earlier), max_size=3))
        result.append(batch)
    return result


# ------------------------------------------------------------------------------------------- the reference

def utc(value: str | dt.datetime) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(dt.UTC)


def first_ingests(raw_rows: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """stg_events' dedupe: per event_id, the row with the earliest (ingested_at, shard_id, sequence_number)."""
    winners: dict[str, Mapping[str, Any]] = {}
    for row in sorted(raw_rows, key=lambda r: (r["ingested_at"], r["shard_id"], r["sequence_number"])):
        winners.setdefault(row["event_id"], row)
    return winners


def user_versions(trait_events: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """SCD2 versions per user from events with user_id, event_id, event_ts and a `traits` dict."""
    by_user: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for event in trait_events:
        by_user[event["user_id"]].append(event)
    versions: dict[str, list[dict[str, Any]]] = {}
    for user, events in by_user.items():
        state: dict[str, Any] = dict.fromkeys(TRAITS)
        states: dict[dt.datetime, dict[str, Any]] = {}
        for event in sorted(events, key=lambda e: (e["event_ts"], e["event_id"])):
            state = {**state, **{k: v for k, v in event["traits"].items() if v is not None}}
            states[event["event_ts"]] = {**state, "source_event_id": event["event_id"]}
        rows: list[dict[str, Any]] = []
        for instant in sorted(states):
            values = states[instant]
            if rows and all(rows[-1][t] == values[t] for t in TRAITS):
                continue
            rows.append({"user_id": user, **values, "valid_from": instant, "valid_to": None})
        for current, following in zip(rows, rows[1:], strict=False):
            current["valid_to"] = following["valid_from"]
        versions[user] = rows
    return versions


def version_at(versions: Sequence[Mapping[str, Any]], moment: dt.datetime) -> Mapping[str, Any] | None:
    for version in versions:
        if version["valid_from"] <= moment and (version["valid_to"] is None or moment < version["valid_to"]):
            return version
    return None
