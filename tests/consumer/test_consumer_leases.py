"""Lease stores on their production paths (SQLite, a real PostgreSQL, DynamoDB on moto's server) and the
balancing rules."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from eventpipe_consumer.leases import (
    SHARD_END,
    DynamoLeaseStore,
    Lease,
    LeaseStore,
    SqlLeaseStore,
    eligible,
    plan,
)


@pytest.fixture(params=["sqlite", "postgres", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LeaseStore]:
    table = f"leases_{uuid.uuid4().hex[:8]}"
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("leases") / "leases.db"
        yield SqlLeaseStore.from_dsn(f"sqlite:///{path}", table)
    elif request.param == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        store = SqlLeaseStore.from_dsn(dsn, table)
        yield store
        store.engine.dispose()
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        yield DynamoLeaseStore.connect(table, "us-east-1", endpoint)


def _lease(store: LeaseStore, shard_id: str) -> Lease:
    return next(lease for lease in store.list_leases() if lease.shard_id == shard_id)


def test_lease_lifecycle(store: LeaseStore) -> None:
    assert store.create_lease("shard-0", [])
    assert not store.create_lease("shard-0", []), "a second create of the same shard must be refused"
    assert store.create_lease("shard-1", ["shard-0"])
    fresh = _lease(store, "shard-0")
    assert fresh.owner is None and not fresh.held(time.time())
    assert _lease(store, "shard-1").parents == ("shard-0",)

    now = time.time()
    assert store.take(fresh, "a", now + 30)
    assert not store.take(fresh, "b", now + 30), "a take with a stale counter must fail"
    taken = _lease(store, "shard-0")
    assert taken.owner == "a" and taken.held(now)
    assert not store.renew("shard-0", "b", now + 60)
    assert store.renew("shard-0", "a", now + 60)
    assert store.checkpoint("shard-0", "a", "49590338271490256608559692538361571095921575989136588802")
    assert not store.checkpoint("shard-0", "b", SHARD_END)
    assert _lease(store, "shard-0").checkpoint == "49590338271490256608559692538361571095921575989136588802"
    assert not store.release("shard-0", "b")
    assert store.release("shard-0", "a")
    assert _lease(store, "shard-0").owner is None


def test_concurrent_takes_have_one_winner(store: LeaseStore) -> None:
    store.create_lease("shard-x", [])
    observed = _lease(store, "shard-x")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: store.take(observed, f"w{i}", time.time() + 30), range(8)))
    assert sum(results) == 1
    assert _lease(store, "shard-x").owner == f"w{results.index(True)}"


def test_workers_heartbeat_and_expire(store: LeaseStore) -> None:
    now = time.time()
    store.heartbeat("alive", now + 30)
    store.heartbeat("dead", now - 1)
    store.heartbeat("alive", now + 40)
    assert store.live_workers(now) == ["alive"]
    store.remove_worker("alive")
    assert store.live_workers(now) == []


def _L(shard: str, owner: str | None = None, expires: float = 0.0, parents: tuple[str, ...] = (),
       checkpoint: str | None = None) -> Lease:
    return Lease(shard, owner, expires, 0, checkpoint, parents)


def test_children_wait_for_their_parents() -> None:
    leases = [_L("p"), _L("c1", parents=("p",)), _L("c2", parents=("p",)), _L("gone-parent-child", parents=("x",))]
    assert [lease.shard_id for lease in eligible(leases)] == ["p", "gone-parent-child"]
    finished = [_L("p", checkpoint=SHARD_END), *leases[1:]]
    assert [lease.shard_id for lease in eligible(finished)] == ["c1", "c2", "gone-parent-child"]


def test_plan_balances_four_shards_over_two_workers() -> None:
    now = 1000.0
    leases = [_L(f"s{i}") for i in range(4)]
    first = plan(leases, ["a"], "a", now)
    assert [lease.shard_id for lease in first.take] == ["s0", "s1", "s2", "s3"]
    held_by_a = [_L(f"s{i}", "a", now + 10) for i in range(4)]
    second = plan(held_by_a, ["a", "b"], "b", now)
    assert second.take == () and second.steal is not None and second.steal.owner == "a"
    balanced = [_L("s0", "a", now + 10), _L("s1", "a", now + 10), _L("s2", "b", now + 10), _L("s3", "b", now + 10)]
    assert plan(balanced, ["a", "b"], "b", now) == plan(balanced, ["a", "b"], "a", now)
    assert plan(balanced, ["a", "b"], "a", now).take == () and plan(balanced, ["a", "b"], "a", now).steal is None
    expired_b = [*balanced[:2], _L("s2", "b", now - 1), _L("s3", "b", now - 1)]
    takeover = plan(expired_b, ["a"], "a", now)
    assert [lease.shard_id for lease in takeover.take] == ["s2", "s3"]


def test_plan_skips_excluded_shards() -> None:
    leases = [_L("s0"), _L("s1")]
    assert [lease.shard_id for lease in plan(leases, [], "a", 0.0, frozenset({"s0"})).take] == ["s1"]
