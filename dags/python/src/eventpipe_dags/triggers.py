"""The deferrable wait for a new raw_events snapshot: runs in the triggerer, imported from this package.

The catalog comes from the triggerer's own EVENTPIPE_* settings at run time, never from the trigger's
arguments: those are stored in Airflow's database, and catalog properties may carry credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from eventpipe_dags.snapshots import catalog_properties, decide, table_snapshots


class NewSnapshotTrigger(BaseTrigger):
    """Fires once the table's current snapshot differs from `processed` (Property 17)."""

    def __init__(self, table: str, processed: str | None, poll_interval: float = 15.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.table = table
        self.processed = processed
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("eventpipe_dags.triggers.NewSnapshotTrigger",
                {"table": self.table, "processed": self.processed, "poll_interval": self.poll_interval})

    def _current(self) -> str | None:
        """Blocking catalog read (settings, SQL catalog, metadata file): run in a thread, off the event loop."""
        name, properties = catalog_properties()
        return table_snapshots(name, properties, self.table)[0]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            try:
                current = await asyncio.to_thread(self._current)
            except Exception as exc:  # noqa: BLE001 (catalog mid-commit or unreachable: look again later)
                self.log.warning("could not read %s: %s", self.table, exc)
                current = None
            decision = decide(current, self.processed, None, force=False)
            if decision.action == "run":
                yield TriggerEvent(  # type: ignore[no-untyped-call]
                    {"snapshot_id": decision.snapshot_id, "reason": decision.reason})
                return
            await asyncio.sleep(self.poll_interval)
