"""Sample traffic for the shop demo: a small simulated shop whose users browse, buy and change their traits.

Pure and deterministic for a given seed and start time, so tests know exactly which lines are valid, which are
re-sends and which break which rule. The sender (send.py) only POSTs what this module yields.

The stream looks like real traffic for the dbt models: a user's first event is a `signup`; `identify` events
change traits over time (plan upgrades, moves), which feeds the SCD Type 2 dimension; `product_updated` events
change names and prices; purchases carry amount = price x quantity.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "purchase", "signup", "identify", "product_updated")
CURRENCIES = ("EUR", "USD", "GBP")
PLANS = ("free", "pro", "enterprise")
COUNTRIES = ("DE", "FR", "GB", "US", "ES", "IT", "NL", "PL", "SE", "JP")
CATEGORIES = ("books", "games", "garden", "kitchen", "music", "outdoor", "toys")
PAGES = ("/", "/search", "/cart", "/checkout", "/account", "/deals", "/help")

# Relative weights of the behavioural events (signups happen on a user's first appearance).
_WEIGHTS: dict[str, int] = {
    "page_view": 40, "product_view": 25, "add_to_cart": 12, "purchase": 6, "identify": 4, "product_updated": 2,
}

# Each invalid kind breaks exactly one rule of examples/shop-schema.json (or the envelope contract); the value is
# the field the rejection must name.
INVALID_KINDS: dict[str, str] = {
    "missing_event_id": "event_id",
    "unknown_event_type": "event_type",
    "bad_timestamp": "timestamp",
    "negative_amount": "properties.amount",
    "amount_too_large": "properties.amount",
    "bad_currency": "properties.currency",
    "zero_quantity": "properties.quantity",
    "not_json": "json",
}

LineKind = Literal["valid", "duplicate", "invalid"]


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. Shares are probabilities per line, in [0, 1); their sum must stay below 1."""

    seed: int = 0
    users: int = 200
    products: int = 40
    duplicate_share: float = 0.0
    invalid_share: float = 0.0
    invalid_kinds: tuple[str, ...] = tuple(INVALID_KINDS)
    start: datetime | None = None
    """Timestamp of the first event (UTC); events advance by `step`. None: now minus count x step."""
    step: timedelta = timedelta(milliseconds=20)
    duplicate_window: int = 200
    """A duplicate re-sends one of the last `duplicate_window` valid lines (a client retry, not a replay)."""

    def __post_init__(self) -> None:
        for name in ("duplicate_share", "invalid_share"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.duplicate_share + self.invalid_share >= 1.0:
            raise ValueError("duplicate_share + invalid_share must stay below 1")
        if self.users < 1 or self.products < 1:
            raise ValueError("users and products must be at least 1")
        unknown = set(self.invalid_kinds) - set(INVALID_KINDS)
        if unknown or not self.invalid_kinds:
            raise ValueError(f"invalid_kinds: unknown {sorted(unknown)}; choose from {sorted(INVALID_KINDS)}")


@dataclass(frozen=True)
class GeneratedLine:
    """One NDJSON line and what the pipeline must do with it."""

    text: str
    kind: LineKind
    event_id: str | None
    invalid_kind: str | None = None

    @property
    def expected_field(self) -> str | None:
        """The field a rejection of this line must name (None for valid lines and duplicates)."""
        return INVALID_KINDS[self.invalid_kind] if self.invalid_kind else None


@dataclass
class _User:
    user_id: str
    email: str
    country: str
    plan: str
    signed_up: bool = False
    session_id: str = ""


@dataclass
class _Product:
    product_id: str
    name: str
    category: str
    price: float


@dataclass
class _Shop:
    rng: random.Random
    users: list[_User] = field(default_factory=list)
    products: list[_Product] = field(default_factory=list)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_shop(config: GeneratorConfig, rng: random.Random) -> _Shop:
    shop = _Shop(rng)
    for n in range(1, config.users + 1):
        shop.users.append(_User(f"u_{n}", f"user{n}@example.com", rng.choice(COUNTRIES), "free"))
    for n in range(1, config.products + 1):
        shop.products.append(_Product(f"p_{n}", f"Product {n}", rng.choice(CATEGORIES),
                                      round(rng.uniform(1, 500), 2)))
    return shop


def _behaviour(shop: _Shop, user: _User, event_type: str) -> dict[str, object]:
    """Properties of one behavioural event; may change the shop's state (traits, prices)."""
    rng = shop.rng
    product = rng.choice(shop.products)
    if event_type == "page_view":
        return {"page": rng.choice(PAGES)}
    if event_type == "product_view":
        return {"product_id": product.product_id}
    if event_type == "add_to_cart":
        return {"product_id": product.product_id, "quantity": rng.randint(1, 3)}
    if event_type == "purchase":
        quantity = rng.randint(1, 3)
        return {"product_id": product.product_id, "quantity": quantity,
                "amount": round(product.price * quantity, 2), "currency": rng.choice(CURRENCIES)}
    if event_type == "identify":
        if rng.random() < 0.5:
            user.plan = PLANS[(PLANS.index(user.plan) + 1) % len(PLANS)]
        else:
            user.country = rng.choice([c for c in COUNTRIES if c != user.country])
        return {"email": user.email, "country": user.country, "plan": user.plan}
    if event_type == "product_updated":
        product.price = round(max(0.5, product.price * rng.uniform(0.8, 1.2)), 2)
        if rng.random() < 0.2:
            product.category = rng.choice(CATEGORIES)
        return {"product_id": product.product_id, "name": product.name, "category": product.category,
                "price": product.price}
    raise ValueError(f"unknown event type {event_type!r}")


def _valid_event(shop: _Shop, moment: datetime) -> dict[str, object]:
    rng = shop.rng
    user = rng.choice(shop.users)
    if not user.signed_up:
        user.signed_up = True
        user.session_id = _uuid(rng)
        event_type = "signup"
        properties: dict[str, object] = {"email": user.email, "country": user.country, "plan": user.plan}
    else:
        if rng.random() < 0.05:
            user.session_id = _uuid(rng)
        event_type = rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()))[0]
        properties = _behaviour(shop, user, event_type)
    return {"event_id": _uuid(rng), "event_type": event_type, "timestamp": _timestamp(moment),
            "user_id": user.user_id, "session_id": user.session_id, "properties": properties,
            "schema_version": 1}


def _invalid_line(shop: _Shop, moment: datetime, kind: str) -> tuple[str, str | None]:
    """A line that breaks exactly the rule `kind` names; returns (text, event_id or None)."""
    rng = shop.rng
    user = rng.choice(shop.users)
    product = rng.choice(shop.products)
    properties: dict[str, object] = {"product_id": product.product_id, "quantity": 1, "amount": product.price,
                                     "currency": "EUR"}
    event: dict[str, object] = {
        "event_id": _uuid(rng), "event_type": "purchase", "timestamp": _timestamp(moment),
        "user_id": user.user_id, "session_id": _uuid(rng), "schema_version": 1, "properties": properties,
    }
    if kind == "not_json":
        return '{"event_id": "' + _uuid(rng) + '", "event_type": "purchase", broken', None
    if kind == "missing_event_id":
        del event["event_id"]
    elif kind == "unknown_event_type":
        event["event_type"] = "teleport"
    elif kind == "bad_timestamp":
        event["timestamp"] = "yesterday at noon"
    elif kind == "negative_amount":
        properties["amount"] = -round(rng.uniform(0.01, 100), 2)
    elif kind == "amount_too_large":
        properties["amount"] = 1_000_000 + round(rng.uniform(1, 1000), 2)
    elif kind == "bad_currency":
        properties["currency"] = "DOGE"
    elif kind == "zero_quantity":
        properties["quantity"] = 0
    else:
        raise ValueError(f"unknown invalid kind {kind!r}")
    event_id = event.get("event_id")
    return json.dumps(event, separators=(",", ":")), event_id if isinstance(event_id, str) else None


def generate(config: GeneratorConfig, count: int) -> Iterator[GeneratedLine]:
    """Yield `count` lines: valid events, re-sends of recent valid lines, and invalid lines, as configured."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = random.Random(config.seed)
    shop = _new_shop(config, rng)
    start = config.start or datetime.now(UTC) - config.step * count
    recent: deque[GeneratedLine] = deque(maxlen=config.duplicate_window)
    for n in range(count):
        moment = start + config.step * n
        roll = rng.random()
        if roll < config.duplicate_share and recent:
            original = rng.choice(recent)
            yield GeneratedLine(original.text, "duplicate", original.event_id)
        elif config.duplicate_share <= roll < config.duplicate_share + config.invalid_share:
            kind = rng.choice(config.invalid_kinds)
            text, event_id = _invalid_line(shop, moment, kind)
            yield GeneratedLine(text, "invalid", event_id, kind)
        else:
            event = _valid_event(shop, moment)
            line = GeneratedLine(json.dumps(event, separators=(",", ":")), "valid", str(event["event_id"]))
            recent.append(line)
            yield line
