"""Which snapshot of raw_events a run processes, and whether it has been processed already (Properties 17, 19).

`decide` is pure: the sensor, the trigger and the tests share it. The catalog read and the 'processed' marker
(an Airflow Variable per pipeline, so every scheduler, worker and triggerer sees the same one) are I/O at edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from eventpipe_common.settings import PipelineSettings

Action = Literal["run", "wait", "skip"]


@dataclass(frozen=True)
class Decision:
    action: Action
    snapshot_id: str | None
    reason: str


def decide(current: str | None, processed: str | None, requested: str | None, force: bool,
           known: frozenset[str] = frozenset()) -> Decision:
    """What a run does with the table's `current` snapshot, the last `processed` one and a `requested` id.

    - requested (manual trigger): run it, unless it was processed already and the run is not forced (skip);
      an id the table does not have is an error, not a silent no-op.
    - otherwise: run the current snapshot when it is new (or forced); wait while there is nothing new.
    """
    if requested is not None:
        if known and requested not in known:
            raise ValueError(f"snapshot {requested} is not a snapshot of the table")
        if requested == processed and not force:
            return Decision("skip", requested, "already processed (trigger with force=true to run it again)")
        return Decision("run", requested, "requested")
    if current is None:
        return Decision("wait", None, "the table has no snapshot yet")
    if current == processed and not force:
        return Decision("wait", None, f"snapshot {current} is processed; waiting for a new one")
    return Decision("run", current, "forced" if current == processed else "new snapshot")


def next_marker(processed: str | None, ran: str, order: list[str]) -> str:
    """The marker after a successful run of `ran`: it only moves forward in the table's commit `order`, so a
    manual re-run of an older snapshot does not make the newest one look unprocessed."""
    if processed is None or processed not in order or ran not in order:
        return ran
    return ran if order.index(ran) >= order.index(processed) else processed


def catalog_properties() -> tuple[str, dict[str, str]]:
    """The catalog of this Airflow process's EVENTPIPE_* settings (the local stack's embedded SQL catalog)."""
    settings = PipelineSettings.model_validate({})
    return settings.catalog_name, settings.resolved_catalog_properties()


def table_snapshots(catalog_name: str, properties: dict[str, str], table: str) -> tuple[str | None, frozenset[str]]:
    """The table's current snapshot id and every id it knows; (None, {}) while the table does not exist."""
    current, order = snapshot_history(catalog_name, properties, table)
    return current, frozenset(order)


def snapshot_history(catalog_name: str, properties: dict[str, str], table: str) -> tuple[str | None, list[str]]:
    """The current snapshot id and every snapshot id in commit order."""
    from pyiceberg.catalog import load_catalog
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    try:
        loaded: Any = load_catalog(catalog_name, **properties).load_table(table)
    except (NoSuchTableError, NoSuchNamespaceError):
        return None, []
    current = loaded.current_snapshot()
    order = [str(s.snapshot_id) for s in sorted(loaded.snapshots(), key=lambda s: s.sequence_number or 0)]
    return (str(current.snapshot_id) if current is not None else None), order


def processed_key(pipeline: str) -> str:
    return f"eventpipe_{pipeline}_processed_snapshot"


def read_processed(pipeline: str) -> str | None:
    from airflow.sdk import Variable

    value = Variable.get(processed_key(pipeline), default=None)
    return str(value) if value else None


def write_processed(pipeline: str, snapshot_id: str) -> None:
    from airflow.sdk import Variable

    Variable.set(processed_key(pipeline), snapshot_id,
                 description=f"Last raw_events snapshot the eventpipe_{pipeline} DAG processed")
