"""The stream's shard map, for packing events into records (eventpipe_core.ingest_batch packs by it).

Loaded with ListShards on first use and again when older than `max_age` or when Kinesis put a packed record on
another shard than the map said (the stream was resharded). A map that cannot be loaded is not an error of the
request: the publisher then sends one event per record, as without packing, and tries again later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from eventpipe_common.logging import get_logger

from eventpipe_ingest.records import ShardMap

ListShards = Callable[[], Awaitable[Sequence[Mapping[str, Any]]]]

log = get_logger()


class ShardMapCache:
    def __init__(self, list_shards: ListShards, *, max_age: float = 60.0, retry_after: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._list_shards = list_shards
        self._max_age = max_age
        self._retry_after = retry_after
        self._clock = clock
        self._map: ShardMap | None = None
        self._loaded_at = float("-inf")
        self._failed_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self) -> ShardMap | None:
        """The current map, loading it when missing or stale; None while it cannot be loaded."""
        now = self._clock()
        if now - self._loaded_at < self._max_age or now - self._failed_at < self._retry_after:
            return self._map
        async with self._lock:
            if self._clock() - self._loaded_at >= self._max_age:
                await self._load()
        return self._map

    def invalidate(self) -> None:
        """Load the map again on the next `get` (a record landed on a shard the map did not name)."""
        self._loaded_at = float("-inf")
        self._failed_at = float("-inf")

    async def _load(self) -> None:
        try:
            shards = await self._list_shards()
            self._map = ShardMap.from_shards(shards)
        except Exception as exc:  # noqa: BLE001 - any failure: publish unpacked, retry after retry_after
            self._failed_at = self._clock()
            log.warning("shard map not loaded: publishing one event per record until it is", error=repr(exc))
            return
        self._loaded_at = self._clock()
        log.info("shard map loaded", shards=len(self._map.shard_ids))


def aiobotocore_list_shards(client: Any, stream_name: str) -> ListShards:
    """ListShards through an aiobotocore Kinesis client, every page."""

    async def list_shards() -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamName": stream_name}
        while True:
            answer = await client.list_shards(**kwargs)
            shards.extend(answer.get("Shards", []))
            token = answer.get("NextToken")
            if not token:
                return shards
            kwargs = {"NextToken": token}

    return list_shards
