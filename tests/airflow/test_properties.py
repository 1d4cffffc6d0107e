"""Properties 17, 18, 19, 20 and 40 of the orchestration (PLAN.md), on real Iceberg tables and real files."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TABLE = "shop.raw_events"


def _catalog(state: Path) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    (state / "warehouse").mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog("eventpipe", type="sql", uri=f"sqlite:///{state / 'catalog.db'}",
                         warehouse=(state / "warehouse").as_uri())
    catalog.create_namespace_if_not_exists("shop")
    return catalog


def _commit(table: Any, n: int) -> str:
    table.append(pa.table({"event_id": [f"e{n}-{i}" for i in range(3)]}))
    return str(table.current_snapshot().snapshot_id)


async def _first_event(trigger: Any, commit_later: Any) -> dict[str, Any]:
    """The trigger's first event; `commit_later` (if any) commits a snapshot while the trigger is polling."""
    waiting = asyncio.ensure_future(trigger.run().__anext__())
    if commit_later is not None:
        await asyncio.sleep(0.05)
        await asyncio.to_thread(commit_later)
    event = await asyncio.wait_for(waiting, timeout=120)
    return dict(event.payload)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commits=st.integers(min_value=0, max_value=4), processed_index=st.integers(min_value=-1, max_value=4))
def test_new_snapshots_trigger_the_workflow(commits: int, processed_index: int) -> None:
    """Property 17: New Iceberg snapshots trigger workflow — the trigger fires with the table's current snapshot
    when it differs from the last processed one, and otherwise fires only once a new snapshot is committed,
    with that snapshot (never with the processed one)."""
    from eventpipe_dags.triggers import NewSnapshotTrigger

    state = Path(tempfile.mkdtemp(prefix="p17-"))
    catalog = _catalog(state)
    table = catalog.create_table(TABLE, schema=pa.schema([("event_id", pa.string())]))
    ids = [_commit(table, n) for n in range(commits)]
    processed = ids[processed_index] if 0 <= processed_index < len(ids) else None
    current = ids[-1] if ids else None
    previous = os.environ.get("EVENTPIPE_STATE_DIR")
    os.environ["EVENTPIPE_STATE_DIR"] = str(state)
    try:
        trigger = NewSnapshotTrigger(TABLE, processed, poll_interval=0.02)
        expected: list[str] = []
        commit_later = None
        if current is None or current == processed:
            def commit_later() -> None:
                expected.append(_commit(catalog.load_table(TABLE), commits))
        event = asyncio.run(_first_event(trigger, commit_later))
    finally:
        os.environ["EVENTPIPE_STATE_DIR"] = previous or ""
    assert event["snapshot_id"] == (expected[0] if expected else current)
    assert event["snapshot_id"] != processed
    assert trigger.serialize() == ("eventpipe_dags.triggers.NewSnapshotTrigger",
                                   {"table": TABLE, "processed": processed, "poll_interval": 0.02})


ACTIONS = st.lists(st.one_of(
    st.just(("commit",)),
    st.just(("auto",)),
    st.tuples(st.just("manual"), st.integers(min_value=0, max_value=5), st.booleans()),
), min_size=1, max_size=25)


@settings(max_examples=300, deadline=None)
@given(actions=ACTIONS)
def test_successful_runs_mark_snapshots_complete(actions: list[tuple[Any, ...]]) -> None:
    """Property 19: Successful workflows marked complete — after a run marks its snapshot processed, a run on
    the same snapshot is a no-op unless forced; automatic runs process every new snapshot exactly once, even
    when manual runs re-process older ones in between."""
    from eventpipe_dags.snapshots import decide, next_marker

    snapshots: list[str] = []
    processed: str | None = None
    runs: list[tuple[str, bool]] = []
    for action in actions:
        if action[0] == "commit":
            snapshots.append(str(1000 + len(snapshots)))
            continue
        current = snapshots[-1] if snapshots else None
        if action[0] == "auto":
            decision = decide(current, processed, None, False, frozenset(snapshots))
        else:
            if not snapshots:
                continue
            requested = snapshots[action[1] % len(snapshots)]
            decision = decide(current, processed, requested, action[2], frozenset(snapshots))
            if requested == processed and not action[2]:
                assert decision.action == "skip"
        if decision.action == "run":
            assert decision.snapshot_id is not None
            forced = action[0] == "manual" and action[2]
            assert decision.snapshot_id != processed or forced
            runs.append((decision.snapshot_id, action[0] == "auto"))
            processed = next_marker(processed, decision.snapshot_id, snapshots)  # mark_processed
        elif action[0] == "auto":
            assert decision.action == "wait" and (current is None or current == processed)
    auto = [s for s, is_auto in runs if is_auto]
    assert len(auto) == len(set(auto))


CONTEXTS = st.fixed_dictionaries({
    "pipeline": st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True),
    "task": st.sampled_from(["dbt_build", "gx_staging", "gx_marts", "publish_results", "mark_processed"]),
    "snapshot": st.one_of(st.none(), st.integers(min_value=1, max_value=2**63 - 1).map(str)),
    "try_number": st.integers(min_value=1, max_value=10),
    "error": st.text(min_size=1, max_size=80),
})


class _Ti:
    """The fields Airflow's RuntimeTaskInstance gives a callback (task_id, run_id, try_number, XCom)."""

    def __init__(self, dag_id: str, task_id: str, try_number: int, snapshot: str | None) -> None:
        self.dag_id, self.task_id, self.run_id = dag_id, task_id, "manual__2026-12-03"
        self.try_number, self.max_tries = try_number, 10
        self._snapshot = snapshot

    def xcom_pull(self, task_ids: str) -> Any:
        return {"snapshot_id": self._snapshot} if self._snapshot else None


@settings(max_examples=100, deadline=None)
@given(ctx=CONTEXTS)
def test_task_failures_are_logged_with_their_details(ctx: dict[str, Any]) -> None:
    """Property 40: Task failures logged and retried — every failure and retry line names the pipeline, task,
    snapshot, try number and error, and lands in the run log (Property 20: executions are logged)."""
    from eventpipe_dags import runlog
    from eventpipe_dags.callbacks import on_task_failure, on_task_retry

    path = Path(tempfile.mkdtemp(prefix="p40-")) / "runs.jsonl"
    os.environ["EVENTPIPE_DAGS_RUN_LOG"] = str(path)
    try:
        dag_id = f"eventpipe_{ctx['pipeline'].replace('-', '_')}"
        context = {"ti": _Ti(dag_id, ctx["task"], ctx["try_number"], ctx["snapshot"]),
                   "params": {"pipeline": ctx["pipeline"]}, "exception": RuntimeError(ctx["error"])}
        on_task_retry(context)
        on_task_failure(context)
        lines = runlog.read(path)
    finally:
        del os.environ["EVENTPIPE_DAGS_RUN_LOG"]
    assert [line["event"] for line in lines] == ["task_retry", "task_failed"]
    for line in lines:
        assert line["pipeline"] == ctx["pipeline"] and line["dag_id"] == dag_id
        assert line["task_id"] == ctx["task"] and line["try_number"] == ctx["try_number"]
        assert line["snapshot_id"] == ctx["snapshot"]
        assert line["error"] == ctx["error"] and line["error_type"] == "RuntimeError"
        assert line["at"]


@settings(max_examples=30, deadline=None)
@given(retries=st.integers(min_value=0, max_value=6), delay=st.floats(min_value=0.5, max_value=120),
       cap=st.floats(min_value=1, max_value=3600))
def test_task_failures_execute_retry_logic(retries: int, delay: float, cap: float) -> None:
    """Property 18: Task failures execute retry logic — every task that can fail for a transient reason gets the
    configured retries with exponential backoff under a cap, and the failure/retry callbacks; the publish step,
    whose failure is a data verdict, is never retried."""
    from eventpipe_dags.callbacks import on_task_failure, on_task_retry
    from eventpipe_dags.definition import PipelineDag
    from eventpipe_dags.factory import build_dag
    from eventpipe_dags.settings import DagsSettings

    from tests.helpers.airflow_helpers import definition

    dag = build_dag(PipelineDag.model_validate(definition("shop")),
                    DagsSettings(retries=retries, retry_delay_seconds=delay, max_retry_delay_seconds=cap))
    for task in dag.tasks:
        expected = 0 if task.task_id == "publish_results" else retries
        assert task.retries == expected
        assert task.retry_exponential_backoff == 2.0
        assert abs(task.retry_delay.total_seconds() - delay) <= 1e-6  # timedelta keeps microseconds
        assert abs(task.max_retry_delay.total_seconds() - cap) <= 1e-6
        failure, retry = task.on_failure_callback, task.on_retry_callback
        assert on_task_failure in (failure if isinstance(failure, list) else [failure])
        assert on_task_retry in (retry if isinstance(retry, list) else [retry])
