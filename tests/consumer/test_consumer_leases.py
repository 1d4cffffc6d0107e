"""Lease stores on their production paths (SQLite, a real PostgreSQL, DynamoDB on moto's server) and the
balancing rules."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from eventpipe_consumer.leases import (
    SHARD_END,
    DynamoLeaseStore,
    Keys,
    Lease,
    LeaseStore,
    SqlLeaseStore,
    default_table_name,
    eligible,
    plan,
)
from hypothesis import given, settings
from hypothesis import strategies as st

StoreFactory = Callable[[str], LeaseStore]


@pytest.fixture(params=["sqlite", "postgres", "dynamodb"])
def make_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreFactory]:
    """Stores of any stream on ONE table of one database (as pipelines sharing a lease store see it)."""
    table = f"leases_{uuid.uuid4().hex[:8]}"
    engines: list[SqlLeaseStore] = []
    if request.param == "sqlite":
        dsn: str | None = f"sqlite:///{tmp_path_factory.mktemp('leases') / 'leases.db'}"
    elif request.param == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
    else:
        dsn = None
        endpoint = request.getfixturevalue("moto_endpoint")

    def factory(stream: str) -> LeaseStore:
        if dsn is None:
            return DynamoLeaseStore.connect(table, stream, "us-east-1", endpoint)
        store = SqlLeaseStore.from_dsn(dsn, table, stream)
        engines.append(store)
        return store

    yield factory
    for store in engines:
        store.engine.dispose()


@pytest.fixture
def store(make_store: StoreFactory) -> LeaseStore:
    return make_store("shop-events")


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


def test_pipelines_sharing_a_store_each_lease_all_of_their_own_shards(make_store: StoreFactory) -> None:
    """Two streams have the same shard ids (every stream starts at shardId-000000000000): on one table, each
    pipeline's worker plans, takes and checkpoints all of its own shards, and sees only its own workers."""
    shards = [f"shardId-{i:012d}" for i in range(3)]
    now = time.time()
    pipelines = {"orders": make_store("orders"), "clicks": make_store("clicks")}
    for name, store in pipelines.items():
        for shard in shards:
            assert store.create_lease(shard, []), f"{name}: {shard} already exists in another stream's scope"
        store.heartbeat(f"{name}-worker", now + 30)
    for name, store in pipelines.items():
        worker = f"{name}-worker"
        assert store.live_workers(now) == [worker]
        decision = plan(store.list_leases(), store.live_workers(now), worker, now)
        assert decision.steal is None
        assert [lease.shard_id for lease in decision.take] == shards
        for lease in decision.take:
            assert store.take(lease, worker, now + 30)
            assert store.checkpoint(lease.shard_id, worker, f"{name}-position")
    for name, store in pipelines.items():
        leases = store.list_leases()
        assert sorted(lease.shard_id for lease in leases) == shards
        assert {(lease.owner, lease.checkpoint) for lease in leases} == {(f"{name}-worker", f"{name}-position")}
    pipelines["orders"].remove_worker("orders-worker")
    assert pipelines["clicks"].live_workers(now) == ["clicks-worker"]


def test_rows_of_the_unscoped_format_are_not_read(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A lease table of an earlier version ("shard#<id>" keys) shared with a new consumer: the new consumer
    neither sees those rows nor touches them (migration: README, Leases)."""
    dsn = f"sqlite:///{tmp_path_factory.mktemp('legacy') / 'leases.db'}"
    store = SqlLeaseStore.from_dsn(dsn, "eventpipe_consumer_leases", "shop-events")
    with store.engine.begin() as conn:
        conn.execute(store.table.insert().values(lease_key="shard#shardId-000000000000", owner="old-worker",
                                                 expires_at=time.time() + 30, counter=4, checkpoint="17",
                                                 parents="[]"))
    assert store.list_leases() == []
    assert store.create_lease("shardId-000000000000", [])
    lease = store.list_leases()[0]
    assert lease.owner is None and lease.checkpoint is None
    with store.engine.connect() as conn:
        keys = sorted(row[0] for row in conn.execute(store.table.select().with_only_columns(store.table.c.lease_key)))
    assert keys == ["shard#shardId-000000000000", "shop-events#shard#shardId-000000000000"]


STREAM_NAMES = st.text(st.sampled_from("abcXYZ019_.-"), min_size=1, max_size=128)
SHARD_IDS = st.text(st.sampled_from("shardId-0123#"), min_size=1, max_size=30)


@settings(max_examples=300)
@given(STREAM_NAMES, STREAM_NAMES, SHARD_IDS, SHARD_IDS)
def test_lease_keys_of_two_streams_never_meet(stream_a: str, stream_b: str, shard_a: str, shard_b: str) -> None:
    """Keys are equal only for the same stream and shard, and a stream's prefixes match only its own keys
    (the listing is a prefix scan), whatever the two valid stream names and shard ids."""
    a, b = Keys(stream_a), Keys(stream_b)
    same = stream_a == stream_b
    assert (a.shard(shard_a) == b.shard(shard_b)) == (same and shard_a == shard_b)
    assert b.shard(shard_b).startswith(a.shard_prefix) == same
    assert b.worker(shard_b).startswith(a.worker_prefix) == same
    assert not b.worker(shard_b).startswith(a.shard_prefix)
    assert a.shard(shard_a)[len(a.shard_prefix):] == shard_a


@settings(max_examples=300)
@given(STREAM_NAMES)
def test_default_lease_table_name_is_valid_everywhere(stream: str) -> None:
    """The default table name is a valid PostgreSQL identifier (at most 63 characters) and DynamoDB table name."""
    name = default_table_name(stream)
    assert re.fullmatch(r"[a-z][a-z0-9_]{2,62}", name), name
    assert name.startswith("eventpipe_leases_")
