"""Shard leases shared by the consumer processes of one stream (the KCL's lease table, simplified).

One row per shard: owner, expiry, a counter bumped by every change (the token of conditional writes), the
parents, and a checkpoint that is only a hint ("SHARD_END" marks a finished shard; the real positions live in
the Iceberg snapshot summary). One row per worker too (a heartbeat), so that a worker holding no lease still
counts when leases are balanced.

Every key is scoped by the stream ("<stream>#shard#<shard id>", "<stream>#worker#<worker id>"): Kinesis shard
ids repeat across streams (every stream starts at shardId-000000000000), so pipelines sharing one store must
not see each other's rows. Rows of the unscoped format of earlier versions ("shard#<id>", "worker#<id>") are
never read: positions live in Iceberg, so a consumer starting on a fresh scope loses nothing (README, "Leases").

Stores: SQL (SQLite by default, PostgreSQL by DSN) and DynamoDB (conditional expressions). The API is
synchronous; the consumer calls it through asyncio.to_thread.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

SHARD_END = "SHARD_END"
SHARD_PREFIX = "shard#"
WORKER_PREFIX = "worker#"


@dataclass(frozen=True, slots=True)
class Keys:
    """The lease keys of one stream (Kinesis stream names never contain '#')."""

    stream: str

    def __post_init__(self) -> None:
        if not self.stream or "#" in self.stream:
            raise ValueError(f"lease scope: stream name {self.stream!r} must be non-empty and without '#'")

    @property
    def shard_prefix(self) -> str:
        return f"{self.stream}#{SHARD_PREFIX}"

    @property
    def worker_prefix(self) -> str:
        return f"{self.stream}#{WORKER_PREFIX}"

    def shard(self, shard_id: str) -> str:
        return self.shard_prefix + shard_id

    def worker(self, worker_id: str) -> str:
        return self.worker_prefix + worker_id


def default_table_name(stream: str) -> str:
    """The lease table of a stream when none is configured: one per stream, a valid SQL and DynamoDB name
    (letters, digits and '_', at most 63 characters: PostgreSQL's identifier limit)."""
    name = "eventpipe_leases_" + re.sub(r"[^a-z0-9_]", "_", stream.lower())
    if len(name) <= 63:
        return name  # two streams may share a name here ("a-b", "a.b"): harmless, their keys differ
    return f"{name[:52]}_{hashlib.sha256(stream.encode()).hexdigest()[:10]}"


@dataclass(frozen=True, slots=True)
class Lease:
    shard_id: str
    owner: str | None
    expires_at: float
    counter: int
    checkpoint: str | None
    parents: tuple[str, ...]

    @property
    def finished(self) -> bool:
        return self.checkpoint == SHARD_END

    def held(self, now: float) -> bool:
        return self.owner is not None and self.expires_at > now


class LeaseStore(Protocol):
    def create_storage(self) -> None: ...
    def list_leases(self) -> list[Lease]: ...
    def create_lease(self, shard_id: str, parents: Sequence[str]) -> bool: ...
    def take(self, lease: Lease, owner: str, expires_at: float) -> bool: ...
    def renew(self, shard_id: str, owner: str, expires_at: float) -> bool: ...
    def release(self, shard_id: str, owner: str) -> bool: ...
    def checkpoint(self, shard_id: str, owner: str, checkpoint: str) -> bool: ...
    def heartbeat(self, worker_id: str, expires_at: float) -> None: ...
    def remove_worker(self, worker_id: str) -> None: ...
    def live_workers(self, now: float) -> list[str]: ...


# ---------------------------------------------------------------------------------------------- planning
@dataclass(frozen=True, slots=True)
class LeasePlan:
    take: tuple[Lease, ...]  # free leases to take
    steal: Lease | None  # one lease to take from the busiest worker


def eligible(leases: Sequence[Lease]) -> list[Lease]:
    """Unfinished shards whose parents are finished (or gone from the stream): the KCL's parent-first rule."""
    by_id = {lease.shard_id: lease for lease in leases}
    return [lease for lease in leases if not lease.finished
            and all(by_id[p].finished for p in lease.parents if p in by_id)]


def plan(leases: Sequence[Lease], workers: Sequence[str], me: str, now: float,
         excluded: frozenset[str] = frozenset()) -> LeasePlan:
    """Which leases this worker should take so that every worker ends up with about the same number."""
    open_leases = eligible(leases)
    live = set(workers) | {me}
    target = math.ceil(len(open_leases) / len(live)) if open_leases else 0
    mine = [lease for lease in open_leases if lease.owner == me and lease.held(now)]
    need = target - len(mine)
    if need <= 0:
        return LeasePlan((), None)
    free = [lease for lease in open_leases
            if not lease.held(now) and lease.shard_id not in excluded]
    free.sort(key=lambda lease: lease.shard_id)
    if free:
        return LeasePlan(tuple(free[:need]), None)
    counts: dict[str, list[Lease]] = {}
    for lease in open_leases:
        if lease.held(now) and lease.owner is not None and lease.owner != me:
            counts.setdefault(lease.owner, []).append(lease)
    if not counts:
        return LeasePlan((), None)
    busiest, theirs = max(counts.items(), key=lambda item: (len(item[1]), item[0]))
    if len(theirs) > target or (len(theirs) == target and len(mine) + 1 < target):
        candidates = sorted((lease for lease in theirs if lease.shard_id not in excluded),
                            key=lambda lease: lease.shard_id)
        if candidates:
            return LeasePlan((), candidates[-1])
    return LeasePlan((), None)


# ---------------------------------------------------------------------------------------------- SQL
class SqlLeaseStore:
    """Leases in one SQL table (SQLite or PostgreSQL); every change is one conditional UPDATE."""

    def __init__(self, engine: sa.Engine, table_name: str, stream: str) -> None:
        self.engine = engine
        self.keys = Keys(stream)
        self.meta = sa.MetaData()
        self.table = sa.Table(
            table_name, self.meta,
            sa.Column("lease_key", sa.String(256), primary_key=True),
            sa.Column("owner", sa.String(256), nullable=True),
            sa.Column("expires_at", sa.Float, nullable=False, default=0.0),
            sa.Column("counter", sa.BigInteger, nullable=False, default=0),
            sa.Column("checkpoint", sa.String(256), nullable=True),
            sa.Column("parents", sa.Text, nullable=False, default="[]"),
        )

    @classmethod
    def from_dsn(cls, dsn: str, table_name: str, stream: str) -> SqlLeaseStore:
        connect_args: dict[str, Any] = {"timeout": 30} if dsn.startswith("sqlite") else {}
        engine = sa.create_engine(dsn, connect_args=connect_args, pool_pre_ping=True)
        if dsn.startswith("sqlite"):
            @sa.event.listens_for(engine, "connect")
            def _wal(dbapi_conn: Any, _record: Any) -> None:
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()
        store = cls(engine, table_name, stream)
        store.create_storage()
        return store

    def create_storage(self) -> None:
        self.meta.create_all(self.engine, checkfirst=True)

    def _update(self, key: str, conditions: Sequence[Any], values: Mapping[str, Any]) -> bool:
        t = self.table
        with self.engine.begin() as conn:
            result = conn.execute(t.update().where(t.c.lease_key == key, *conditions)
                                  .values(counter=t.c.counter + 1, **values))
        return result.rowcount == 1

    def list_leases(self) -> list[Lease]:
        t = self.table
        with self.engine.connect() as conn:
            prefix = self.keys.shard_prefix
            rows = conn.execute(sa.select(t).where(t.c.lease_key.startswith(prefix, autoescape=True))).mappings().all()
        return [Lease(row["lease_key"][len(prefix):], row["owner"], float(row["expires_at"]),
                      int(row["counter"]), row["checkpoint"], tuple(json.loads(row["parents"]))) for row in rows]

    def create_lease(self, shard_id: str, parents: Sequence[str]) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(self.table.insert().values(
                    lease_key=self.keys.shard(shard_id), owner=None, expires_at=0.0, counter=0, checkpoint=None,
                    parents=json.dumps(list(parents))))
        except sa.exc.IntegrityError:
            return False
        return True

    def take(self, lease: Lease, owner: str, expires_at: float) -> bool:
        return self._update(self.keys.shard(lease.shard_id), [self.table.c.counter == lease.counter],
                            {"owner": owner, "expires_at": expires_at})

    def renew(self, shard_id: str, owner: str, expires_at: float) -> bool:
        return self._update(self.keys.shard(shard_id), [self.table.c.owner == owner], {"expires_at": expires_at})

    def release(self, shard_id: str, owner: str) -> bool:
        return self._update(self.keys.shard(shard_id), [self.table.c.owner == owner],
                            {"owner": None, "expires_at": 0.0})

    def checkpoint(self, shard_id: str, owner: str, checkpoint: str) -> bool:
        return self._update(self.keys.shard(shard_id), [self.table.c.owner == owner], {"checkpoint": checkpoint})

    def heartbeat(self, worker_id: str, expires_at: float) -> None:
        key = self.keys.worker(worker_id)
        if self._update(key, [], {"owner": worker_id, "expires_at": expires_at}):
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(self.table.insert().values(lease_key=key, owner=worker_id, expires_at=expires_at,
                                                        counter=0, checkpoint=None, parents="[]"))
        except sa.exc.IntegrityError:
            self._update(key, [], {"owner": worker_id, "expires_at": expires_at})

    def remove_worker(self, worker_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.table.delete().where(self.table.c.lease_key == self.keys.worker(worker_id)))

    def live_workers(self, now: float) -> list[str]:
        t = self.table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.owner).where(t.c.lease_key.startswith(self.keys.worker_prefix,
                                                                                     autoescape=True),
                                                           t.c.expires_at > now)).all()
        return sorted(str(row[0]) for row in rows)


# ---------------------------------------------------------------------------------------------- DynamoDB
class DynamoLeaseStore:
    """Leases in a DynamoDB table keyed by `lease_key`; every change is a conditional write."""

    def __init__(self, client: Any, table_name: str, stream: str) -> None:
        self.client = client
        self.table_name = table_name
        self.keys = Keys(stream)

    @classmethod
    def connect(cls, table_name: str, stream: str, region: str, endpoint_url: str | None) -> DynamoLeaseStore:
        import boto3

        client = boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url)
        store = cls(client, table_name, stream)
        store.create_storage()
        return store

    def create_storage(self) -> None:
        try:
            self.client.create_table(
                TableName=self.table_name, BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "lease_key", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "lease_key", "AttributeType": "S"}])
        except self.client.exceptions.ResourceInUseException:
            return
        self.client.get_waiter("table_exists").wait(TableName=self.table_name)

    def _conditional(self, **kwargs: Any) -> bool:
        try:
            self.client.update_item(TableName=self.table_name, **kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _scan(self, prefix: str) -> list[dict[str, Any]]:
        """Every item whose key starts with `prefix` (a filtered scan: the table is small, one row per shard)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True,
                                  "FilterExpression": "begins_with(lease_key, :p)",
                                  "ExpressionAttributeValues": {":p": {"S": prefix}}}
        while True:
            page = self.client.scan(**kwargs)
            items.extend(item for item in page["Items"] if item["lease_key"]["S"].startswith(prefix))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def list_leases(self) -> list[Lease]:
        prefix = self.keys.shard_prefix
        return [Lease(item["lease_key"]["S"][len(prefix):],
                      item["lease_owner"]["S"] if "lease_owner" in item else None,
                      float(item["expires_at"]["N"]),
                      int(item["lease_counter"]["N"]),
                      item["lease_checkpoint"]["S"] if "lease_checkpoint" in item else None,
                      tuple(json.loads(item["parents"]["S"])))
                for item in self._scan(prefix)]

    def create_lease(self, shard_id: str, parents: Sequence[str]) -> bool:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={"lease_key": {"S": self.keys.shard(shard_id)}, "expires_at": {"N": "0"},
                      "lease_counter": {"N": "0"}, "parents": {"S": json.dumps(list(parents))}},
                ConditionExpression="attribute_not_exists(lease_key)")
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def take(self, lease: Lease, owner: str, expires_at: float) -> bool:
        return self._conditional(
            Key={"lease_key": {"S": self.keys.shard(lease.shard_id)}},
            UpdateExpression="SET lease_owner = :o, expires_at = :e, lease_counter = lease_counter + :one",
            ConditionExpression="lease_counter = :c",
            ExpressionAttributeValues={":o": {"S": owner}, ":e": {"N": repr(expires_at)}, ":one": {"N": "1"},
                                       ":c": {"N": str(lease.counter)}})

    def renew(self, shard_id: str, owner: str, expires_at: float) -> bool:
        return self._conditional(
            Key={"lease_key": {"S": self.keys.shard(shard_id)}},
            UpdateExpression="SET expires_at = :e, lease_counter = lease_counter + :one",
            ConditionExpression="lease_owner = :o",
            ExpressionAttributeValues={":o": {"S": owner}, ":e": {"N": repr(expires_at)}, ":one": {"N": "1"}})

    def release(self, shard_id: str, owner: str) -> bool:
        return self._conditional(
            Key={"lease_key": {"S": self.keys.shard(shard_id)}},
            UpdateExpression="REMOVE lease_owner SET expires_at = :zero, lease_counter = lease_counter + :one",
            ConditionExpression="lease_owner = :o",
            ExpressionAttributeValues={":o": {"S": owner}, ":zero": {"N": "0"}, ":one": {"N": "1"}})

    def checkpoint(self, shard_id: str, owner: str, checkpoint: str) -> bool:
        return self._conditional(
            Key={"lease_key": {"S": self.keys.shard(shard_id)}},
            UpdateExpression="SET lease_checkpoint = :k, lease_counter = lease_counter + :one",
            ConditionExpression="lease_owner = :o",
            ExpressionAttributeValues={":o": {"S": owner}, ":k": {"S": checkpoint}, ":one": {"N": "1"}})

    def heartbeat(self, worker_id: str, expires_at: float) -> None:
        self.client.put_item(TableName=self.table_name, Item={
            "lease_key": {"S": self.keys.worker(worker_id)}, "lease_owner": {"S": worker_id},
            "expires_at": {"N": repr(expires_at)}})

    def remove_worker(self, worker_id: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key={"lease_key": {"S": self.keys.worker(worker_id)}})

    def live_workers(self, now: float) -> list[str]:
        return sorted(item["lease_owner"]["S"] for item in self._scan(self.keys.worker_prefix)
                      if float(item["expires_at"]["N"]) > now)
