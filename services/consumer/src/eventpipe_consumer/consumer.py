"""The consumer loop: lease shards, read them, process records with the Rust core, commit to Iceberg.

Three kinds of asyncio tasks share one buffer of processed segments:
- the lease task heartbeats, renews, syncs the shard list into the lease store and takes leases;
- one reader task per owned shard calls GetRecords and turns records into a `Segment` (in a thread);
- the commit task, every `commit_interval` or `commit_max_records`, commits the buffer: rejects first, then
  raw_events with the checkpoint map (iceberg.commit_pieces), then job counts and lease hints.
Blocking work (the core, pyiceberg, lease and job stores) runs in threads through asyncio.to_thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import eventpipe_core
import pyarrow as pa
from eventpipe_common.logging import get_logger
from eventpipe_common.tables import RAW_EVENTS
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from eventpipe_consumer import checkpoints, guards, iceberg, jobcounts, recent_ids
from eventpipe_consumer.audit import log_commit
from eventpipe_consumer.kinesis import ShardReader, lag_seconds, list_shards
from eventpipe_consumer.leases import SHARD_END, Lease, LeaseStore, plan
from eventpipe_consumer.metrics import ConsumerMetrics
from eventpipe_consumer.quarantine import PoisonRow, find_poison, is_content_error, poison_reject_rows, process_guarded
from eventpipe_consumer.records import DedupeWindow, Segment, StreamRecord, committed_job_counts, rejects_table
from eventpipe_consumer.retry import BatchFailedError, with_retries
from eventpipe_consumer.settings import ConsumerSettings


@dataclass(slots=True)
class OwnedShard:
    shard_id: str
    committed: int | None  # raw_events map value when taken, then after each own commit
    window: DedupeWindow
    task: asyncio.Task[None] | None = None
    ended: bool = False  # the reader saw SHARD_END
    buffered: int = 0
    oldest_pending_us: int | None = None  # arrival time of the oldest record read and not yet taken to a commit


@dataclass(slots=True)
class CycleResult:
    raw: iceberg.CommitOutcome | None
    rejected: iceberg.CommitOutcome | None
    seconds: float
    quarantined: iceberg.CommitOutcome | None = None
    failed_attempts: int = 0  # a commit may have landed although its attempt raised: reconcile job counts


def quarantine_stream(stream: str) -> str:
    """The checkpoint map of the poison rows written to raw_events_rejected while committing raw_events: a map of
    its own, since the batch's ordinary rejects may have advanced the stream's map of that table already."""
    return f"{stream}#quarantine"


@dataclass
class Consumer:
    settings: ConsumerSettings
    kinesis: Any  # an aiobotocore Kinesis client
    leases: LeaseStore
    catalog: Catalog
    jobs: Any | None = None  # JobStore
    metrics: ConsumerMetrics = field(default_factory=ConsumerMetrics)
    retry_sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.log = get_logger(worker=self.settings.consumer_worker_id)
        schema_json = self.settings.load_schema_json()
        self.schema = eventpipe_core.Schema(schema_json) if schema_json else eventpipe_core.Schema.envelope()
        self.raw_table: Table | None = None
        self.rejected_table: Table | None = None
        self.owned: dict[str, OwnedShard] = {}
        self.buffer: list[Segment] = []
        self.buffered_records = 0
        self.failed_until: dict[str, float] = {}
        self.stopped: dict[str, str] = {}  # shard -> reason, until a lease on it is taken again
        self.stopping = asyncio.Event()
        self.commit_wanted = asyncio.Event()
        self.last_shard_sync = 0.0
        self.lease_lock = asyncio.Lock()
        self.metrics.ready = self.ready

    @property
    def me(self) -> str:
        return self.settings.consumer_worker_id

    # ------------------------------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Until `stop()`: then finish the in-flight batch, commit it, and release the leases."""
        s = self.settings
        self.raw_table, self.rejected_table = await asyncio.to_thread(
            iceberg.ensure_tables, self.catalog, s.namespace, self.schema.promoted)
        await self._check_tables()
        self.log.info("consumer_started", stream=s.stream_name, namespace=s.namespace,
                      commit_interval_seconds=s.consumer_commit_interval_seconds,
                      commit_max_records=s.consumer_commit_max_records, writer=s.consumer_writer)
        await self._reconcile_jobs()
        lease_task = asyncio.create_task(self._lease_loop(), name="leases")
        commit_task = asyncio.create_task(self._commit_loop(), name="commits")
        try:
            await self.stopping.wait()
        finally:
            lease_task.cancel()
            await asyncio.gather(lease_task, return_exceptions=True)
            for shard in list(self.owned.values()):
                if shard.task is not None:
                    shard.task.cancel()
            await asyncio.gather(*(o.task for o in self.owned.values() if o.task), return_exceptions=True)
            self.commit_wanted.set()
            await asyncio.gather(commit_task, return_exceptions=True)
            await self._commit_cycle()
            await self._release_all()
            self.log.info("consumer_stopped")

    def stop(self) -> None:
        self.stopping.set()

    async def _check_tables(self) -> None:
        """Refuse to start where resuming would not be exactly once (guards.py)."""
        assert self.raw_table is not None and self.rejected_table is not None
        s = self.settings
        try:
            allowed = guards.check_checkpoints(
                [(self.raw_table, [s.stream_name]),
                 (self.rejected_table, [s.stream_name, quarantine_stream(s.stream_name)])],
                s.consumer_allow_missing_checkpoint)
        except guards.MissingCheckpointError as exc:
            self.log.error("consumer_refused_start", stream=s.stream_name, reason=str(exc))
            raise
        for reason in allowed:
            self.log.warning("checkpoint_missing_allowed", stream=s.stream_name, reason=reason)

    def ready(self) -> tuple[bool, dict[str, str]]:
        """Readiness: False while a shard is stopped by a failure that is not the records' content."""
        return not self.stopped, dict(self.stopped)

    async def _release_all(self) -> None:
        for shard_id in list(self.owned):
            await asyncio.to_thread(self.leases.release, shard_id, self.me)
            self._forget(shard_id)
        await asyncio.to_thread(self.leases.remove_worker, self.me)

    # ------------------------------------------------------------------------------------------ leases
    async def _lease_loop(self) -> None:
        interval = self.settings.consumer_lease_duration_seconds / 3
        while True:
            try:
                await self._lease_round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (a store or stream hiccup: the next round tries again)
                self.log.warning("lease_round_failed", error=repr(exc))
            await asyncio.sleep(interval)

    async def _lease_round(self) -> None:
        s = self.settings
        now = time.time()
        expires = now + s.consumer_lease_duration_seconds
        await asyncio.to_thread(self.leases.heartbeat, self.me, expires)
        for shard_id in list(self.owned):
            if not await asyncio.to_thread(self.leases.renew, shard_id, self.me, expires):
                self.log.warning("lease_lost", shard=shard_id)
                self._forget(shard_id)
        if time.monotonic() - self.last_shard_sync >= s.consumer_shard_sync_seconds:
            shards = await list_shards(self.kinesis, s.stream_name)
            for info in shards:
                await asyncio.to_thread(self.leases.create_lease, info.shard_id, info.parent_ids)
            self.last_shard_sync = time.monotonic()
        leases = await asyncio.to_thread(self.leases.list_leases)
        workers = await asyncio.to_thread(self.leases.live_workers, now)
        cooling = frozenset(k for k, until in self.failed_until.items() if until > time.monotonic())
        decision = plan(leases, workers, self.me, now, excluded=cooling | frozenset(self.owned))
        for lease in decision.take:
            await self._take(lease, expires)
        if decision.steal is not None:
            self.log.info("lease_steal", shard=decision.steal.shard_id, from_worker=decision.steal.owner)
            await self._take(decision.steal, expires)
        self.metrics.leases.set(len(self.owned))

    async def _take(self, lease: Lease, expires: float) -> None:
        if self.stopping.is_set() or not await asyncio.to_thread(self.leases.take, lease, self.me, expires):
            return
        committed = (await asyncio.to_thread(self._table_map)).get(lease.shard_id)
        owned = OwnedShard(lease.shard_id, committed, DedupeWindow(self.settings.consumer_dedupe_window))
        self.owned[lease.shard_id] = owned
        if self.stopped.pop(lease.shard_id, None) is not None:
            self.metrics.stopped_shards.set(len(self.stopped))
            self.log.info("shard_resumed", shard=lease.shard_id)
        owned.task = asyncio.create_task(self._seed_then_read(owned, lease.parents), name=f"read-{lease.shard_id}")
        self.log.info("lease_taken", shard=lease.shard_id, resume_after=str(committed) if committed else None,
                      lease_hint=lease.checkpoint)

    def _table_map(self) -> dict[str, int]:
        """The raw_events checkpoint map, read on a table handle of its own (the committer owns the other)."""
        table = self.catalog.load_table(f"{self.settings.namespace}.{RAW_EVENTS}")
        return checkpoints.read_map(table.metadata, self.settings.stream_name)

    async def _seed_then_read(self, owned: OwnedShard, parents: Sequence[str]) -> None:
        """Seed the shard's dedupe window with the ids committed from it and its parents recently (recent_ids.py),
        in the reader's task so that the lease loop never waits for the scan, then read the shard."""
        s = self.settings
        try:
            table = await asyncio.to_thread(self.catalog.load_table, f"{s.namespace}.{RAW_EVENTS}")
            seen = await asyncio.to_thread(recent_ids.recent_event_ids, table, [owned.shard_id, *parents],
                                           datetime.now(UTC), s.consumer_dedupe_window_seconds,
                                           s.consumer_dedupe_window)
        except Exception as exc:  # noqa: BLE001 (reading without the seed could commit a retry twice: stop, retry later)
            self.log.error("dedupe_seed_failed", shard=owned.shard_id, error=repr(exc))
            await self._stop_shards([owned.shard_id], f"dedupe window seed failed: {exc!r}", [])
            return
        owned.window.add_all(seen)
        self.log.info("dedupe_window_seeded", shard=owned.shard_id, parents=list(parents), event_ids=len(seen))
        await self._read_shard(owned)

    def _forget(self, shard_id: str) -> None:
        """Stop reading a shard and drop what it buffered (not committed, so not lost: it is read again)."""
        owned = self.owned.pop(shard_id, None)
        if owned is None:
            return
        if owned.task is not None and owned.task is not asyncio.current_task():
            owned.task.cancel()
        kept = [seg for seg in self.buffer if seg.shard_id != shard_id]
        self.buffered_records -= sum(seg.events for seg in self.buffer if seg.shard_id == shard_id)
        self.buffer = kept
        with contextlib.suppress(KeyError):
            self.metrics.millis_behind.remove(shard_id)
        with contextlib.suppress(KeyError):
            self.metrics.lag_seconds.remove(shard_id)
        self.metrics.leases.set(len(self.owned))

    # ------------------------------------------------------------------------------------------ reading
    async def _read_shard(self, owned: OwnedShard) -> None:
        s = self.settings
        reader = ShardReader(self.kinesis, s.stream_name, owned.shard_id, owned.committed,
                             limit=s.consumer_get_records_limit, min_interval=s.consumer_poll_interval_seconds,
                             idle_backoff_max=s.consumer_idle_backoff_max_seconds)
        try:
            while not self.stopping.is_set():
                if owned.buffered >= s.consumer_max_buffered_records_per_shard:
                    self.commit_wanted.set()
                    await asyncio.sleep(0.05)
                    continue
                result = await reader.read()
                if result.millis_behind_latest is not None:
                    self.metrics.millis_behind.labels(owned.shard_id).set(result.millis_behind_latest)
                now_us = time.time_ns() // 1000
                if result.records and owned.oldest_pending_us is None:
                    owned.oldest_pending_us = result.records[0].arrival_us
                lag = lag_seconds(result.millis_behind_latest, result.records, now_us, owned.oldest_pending_us)
                if lag is not None:
                    self.metrics.lag_seconds.labels(owned.shard_id).set(lag)
                if result.records:
                    segments = await asyncio.to_thread(process_guarded, result.records, self.schema, owned.window,
                                                       None, self._log_process_poison)
                    if self.owned.get(owned.shard_id) is not owned:
                        return
                    for segment in segments:  # all in one go: a commit cycle takes them together
                        self._buffer(owned, segment)
                if result.shard_ended:
                    owned.ended = True
                    self.commit_wanted.set()
                    self.log.info("shard_end", shard=owned.shard_id)
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (any read failure stops this shard only, never the others)
            self.log.error("shard_read_failed", shard=owned.shard_id, sequence_number=_position(owned.committed),
                           reason="the shard could not be read or processed", error=repr(exc))
            await self._stop_shards([owned.shard_id], f"read failed: {exc!r}", [])

    def _log_process_poison(self, record: StreamRecord, exc: BaseException) -> None:
        self.metrics.quarantined.labels("process").inc()
        self.log.error("record_quarantined", shard=record.shard_id, sequence_number=record.sequence_number,
                       stage="process", reason="the core could not process this line; it goes to "
                       "raw_events_rejected", error=repr(exc))

    def _buffer(self, owned: OwnedShard, segment: Segment) -> None:
        self.buffer.append(segment)
        owned.buffered += segment.events  # events, not Kinesis records: what the buffer's memory holds
        self.buffered_records += segment.events
        self.metrics.records_read.labels(segment.shard_id).inc(segment.received)
        self.metrics.bytes_read.labels(segment.shard_id).inc(segment.bytes_read)
        if segment.duplicates:
            self.metrics.duplicates.labels(segment.shard_id).inc(segment.duplicates)
        if self.buffered_records >= self.settings.consumer_commit_max_records:
            self.commit_wanted.set()

    # ------------------------------------------------------------------------------------------ committing
    async def _commit_loop(self) -> None:
        """Commit on the interval or when asked; on stop, return after the cycle in flight (run() commits last)."""
        while not self.stopping.is_set():
            try:
                await asyncio.wait_for(self.commit_wanted.wait(), self.settings.consumer_commit_interval_seconds)
            except TimeoutError:
                pass
            self.commit_wanted.clear()
            if self.stopping.is_set():
                return
            try:
                await self._commit_cycle()
            except Exception as exc:  # noqa: BLE001 (after-commit bookkeeping failed; the loop must go on)
                self.log.error("commit_cycle_failed", error=repr(exc))

    async def _commit_cycle(self) -> None:
        segments, self.buffer = self.buffer, []
        self.buffered_records = 0
        ended = [o for o in self.owned.values() if o.ended]
        for owned in self.owned.values():
            owned.buffered = 0
            owned.oldest_pending_us = None
        if not segments and not ended:
            return
        shards = sorted({seg.shard_id for seg in segments})
        try:
            result = await asyncio.to_thread(self._commit_with_retries, segments)
        except Exception as error:  # noqa: BLE001 (not the content: the batch's shards stop, nothing skipped)
            exc = error if isinstance(error, BatchFailedError) else BatchFailedError(repr(error))
            self.metrics.failed_batches.inc()
            job_ids = sorted({job_id for seg in segments for _, job_id in seg.job_events})
            ranges = _sequence_ranges(segments)
            self.log.error("batch_failed", shard=shards[0] if shards else None, shards=shards,
                           records=sum(s.received for s in segments),
                           sequence_ranges=ranges, sequence_number=_first_of(ranges), job_ids=job_ids,
                           reason="the batch could not be committed (not its content); its shards stop",
                           **exc.to_dict())
            await self._stop_shards(shards, exc.message, job_ids, ranges)
            return
        self._after_commit(result, segments)
        for owned in ended:
            if self.owned.get(owned.shard_id) is owned and not any(s.shard_id == owned.shard_id for s in self.buffer):
                await asyncio.to_thread(self.leases.checkpoint, owned.shard_id, self.me, SHARD_END)
                await asyncio.to_thread(self.leases.release, owned.shard_id, self.me)
                self._forget(owned.shard_id)
                self.log.info("shard_finished", shard=owned.shard_id)
        if self.jobs is not None and result.raw is not None and result.raw.snapshot_id is not None:
            # Every event record up to the committed checkpoint counts for its job, whatever became of it (a
            # re-send dropped by the window or the core counts too), so committed reaches accepted. The counts
            # are also in the snapshot's summary: added once per snapshot, replayed by _reconcile_jobs.
            raw_table = self.raw_table
            assert raw_table is not None
            key = jobcounts.snapshot_key(raw_table.metadata.table_uuid, result.raw.snapshot_id)
            counts = committed_job_counts(segments, result.raw.shard_ranges)
            await asyncio.to_thread(self.jobs.record_committed, counts, key)
        if result.failed_attempts:
            await self._reconcile_jobs()
        if result.raw is not None:
            for shard_id, (_, last) in result.raw.shard_ranges.items():
                if shard_id in self.owned:
                    await asyncio.to_thread(self.leases.checkpoint, shard_id, self.me, str(last))

    def _commit_with_retries(self, segments: Sequence[Segment]) -> CycleResult:
        s = self.settings
        assert self.raw_table is not None and self.rejected_table is not None
        raw_table, rejected_table = self.raw_table, self.rejected_table
        started = time.perf_counter()
        raw_pieces = [iceberg.Piece(seg.shard_id, seg.first_sequence, seg.last_sequence, seg.records)
                      for seg in segments]
        has_rejects = any(seg.rejects for seg in segments)
        rejected_pieces = [iceberg.Piece(seg.shard_id, seg.first_sequence, seg.last_sequence,
                                         rejects_table(seg.rejects) if seg.rejects else None) for seg in segments]
        quarantine_pieces: list[iceberg.Piece] = []
        outcome: dict[str, iceberg.CommitOutcome | None] = {"raw": None, "rejected": None, "quarantined": None}
        failures = [0]

        def summary_for(ranges: Mapping[str, tuple[int, int]]) -> dict[str, str]:
            return jobcounts.encode(committed_job_counts(segments, ranges))

        def attempt() -> None:
            nonlocal raw_pieces
            if has_rejects and outcome["rejected"] is None:
                outcome["rejected"] = iceberg.commit_pieces(
                    rejected_table, rejected_pieces, stream=s.stream_name, writer=s.consumer_writer)
            while segments and outcome["raw"] is None:
                if quarantine_pieces and outcome["quarantined"] is None:
                    outcome["quarantined"] = iceberg.commit_pieces(
                        rejected_table, quarantine_pieces, stream=quarantine_stream(s.stream_name),
                        writer=s.consumer_writer)
                try:
                    outcome["raw"] = iceberg.commit_pieces(
                        raw_table, raw_pieces, stream=s.stream_name, writer=s.consumer_writer, summary_for=summary_for)
                except BaseException as exc:  # a Rust panic is a BaseException: content too
                    if not is_content_error(exc):
                        raise
                    poison = self._find_poison(raw_table, raw_pieces, exc)
                    if not poison:
                        raise
                    raw_pieces, found = _without_poison(raw_pieces, poison)
                    for item in found:
                        self.metrics.quarantined.labels("write").inc()
                        self.log.error("record_quarantined", shard=item.shard_id,
                                       sequence_number=item.sequence_number, event_id=item.event_id,
                                       job_id=item.job_id, stage="write", reason="this event cannot be written "
                                       "to raw_events; it goes to raw_events_rejected", error=repr(item.error))
                    quarantine_pieces[:] = _merge_quarantine(quarantine_pieces, found, segments)
                    outcome["quarantined"] = None

        def failed(attempt_no: int, exc: BaseException) -> None:
            failures[0] += 1
            self.metrics.commit_failures.inc()
            shards = sorted({seg.shard_id for seg in segments})
            ranges = _sequence_ranges(segments)
            self.log.warning("commit_attempt_failed", attempt=attempt_no + 1, shard=shards[0] if shards else None,
                             shards=shards,
                             sequence_ranges=ranges, sequence_number=_first_of(ranges),
                             reason="writing or committing the batch failed; it is retried", error=repr(exc))

        with_retries(attempt, retries=s.consumer_commit_retries, base_delay=s.consumer_retry_base_seconds,
                     on_failure=failed, sleep=self.retry_sleep)
        return CycleResult(outcome["raw"], outcome["rejected"], time.perf_counter() - started,
                           outcome["quarantined"], failures[0])

    def _find_poison(self, table: Table, pieces: Sequence[iceberg.Piece],
                     error: BaseException) -> dict[tuple[int, int], BaseException]:
        """(piece index, row index) -> error of each row that cannot be written on its own (bisection)."""
        s = self.settings
        rows = [(i, p.rows) for i, p in enumerate(pieces) if p.rows is not None and p.rows.num_rows]
        if not rows:
            return {}
        offsets: list[tuple[int, int, int]] = []  # (start, piece index, count)
        start = 0
        for index, table_rows in rows:
            offsets.append((start, index, table_rows.num_rows))
            start += table_rows.num_rows
        everything = pa.concat_tables([r for _, r in rows], promote_options="default")
        self.log.warning("batch_bisect", rows=everything.num_rows, shard=pieces[0].shard_id,
                         shards=sorted({p.shard_id for p in pieces}),
                         sequence_ranges={p.shard_id: [str(p.first_sequence), str(p.last_sequence)] for p in pieces},
                         sequence_number=str(pieces[0].first_sequence),
                         reason="the batch failed on its content; looking for the rows that cause it",
                         error=repr(error))

        found: dict[int, BaseException] = {}
        for positions in iceberg.partition_positions(everything, table):
            # One data file per partition: a partition's rows are probed apart from the others, so a batch whose
            # poison rows share an odd partition value costs one passing probe per ordinary partition, and the
            # odd partition's rows fail fast (nothing is written for them).
            group = everything.take(positions)

            def check(lo: int, hi: int, group: pa.Table = group) -> None:
                iceberg.probe_rows(table, group.slice(lo, hi - lo), s.consumer_writer)

            for index, exc in find_poison(group.num_rows, check).items():
                found[positions[index]] = exc
        out: dict[tuple[int, int], BaseException] = {}
        for position, exc in found.items():
            for first, index, count in offsets:
                if first <= position < first + count:
                    out[(index, position - first)] = exc
                    break
        return out

    def _after_commit(self, result: CycleResult, segments: Sequence[Segment]) -> None:
        self.metrics.commit_latency.observe(result.seconds)
        for outcome in (result.rejected, result.quarantined, result.raw):
            if outcome is None or outcome.snapshot_id is None:
                continue
            self.metrics.commits.labels(outcome.table).inc()
            self.metrics.data_files.labels(outcome.table).inc(len(outcome.data_files))
            self.metrics.commit_conflicts.inc(outcome.conflicts)
            if outcome.table == "raw_events_rejected":
                self.metrics.records_rejected.inc(outcome.record_count)
            else:
                self.metrics.records_committed.inc(outcome.record_count)
            log_commit(self.log, outcome, result.seconds)
        if result.raw is None:
            return
        for shard_id, owned in list(self.owned.items()):
            before = result.raw.previous_map.get(shard_id)
            if before is not None and (owned.committed is None or before > owned.committed):
                # Someone else committed this shard since we took it: the lease moved on without us.
                self.log.warning("shard_committed_elsewhere", shard=shard_id, table_position=str(before))
                self._forget(shard_id)
                continue
            if shard_id in result.raw.shard_ranges:
                owned.committed = result.raw.shard_ranges[shard_id][1]

    async def _stop_shards(self, shard_ids: Sequence[str], reason: str, job_ids: Sequence[str],
                           ranges: Mapping[str, list[str]] | None = None) -> None:
        """A failure that is not the records' content (storage, catalog, credentials): stop the shards rather
        than skip data, loudly (log, gauge, readiness). After the cooldown, or in a restarted process, the shard
        is read again from the table's checkpoint. Its jobs stay as they are: their events land then."""
        until = time.monotonic() + self.settings.consumer_failed_shard_cooldown_seconds
        for shard_id in shard_ids:
            self.failed_until[shard_id] = until
            self.stopped[shard_id] = reason
            position = (ranges or {}).get(shard_id)
            owned = self.owned.get(shard_id)
            if shard_id in self.owned:
                self._forget(shard_id)
                await asyncio.to_thread(self.leases.release, shard_id, self.me)
            self.log.error("shard_stopped", shard=shard_id,
                           sequence_number=position[0] if position else _position(owned.committed if owned else None),
                           reason=reason, error=reason, job_ids=list(job_ids),
                           retry_after_seconds=self.settings.consumer_failed_shard_cooldown_seconds)
        self.metrics.stopped_shards.set(len(self.stopped))

    async def _reconcile_jobs(self) -> None:
        """Add the job counts of recent raw_events snapshots that the job store has not applied (a crash between
        the commit and the job update, a commit that landed although its client saw an error)."""
        if self.jobs is None or self.raw_table is None:
            return
        try:
            name = f"{self.settings.namespace}.{RAW_EVENTS}"  # a handle of its own: the committer owns the other
            applied = await asyncio.to_thread(lambda: jobcounts.reconcile(
                self.catalog.load_table(name), self.jobs, self.settings.stream_name))
        except Exception as exc:  # noqa: BLE001 (the next start or failed commit tries again)
            self.log.error("job_reconcile_failed", table=RAW_EVENTS,
                           reason="job counts could not be reconciled from the table", error=repr(exc))
            return
        if applied:
            self.log.info("jobs_reconciled", snapshots=applied)


def _position(sequence: int | None) -> str:
    """Where a shard stands, for logs: its last committed sequence number, or where reading starts."""
    return str(sequence) if sequence is not None else "TRIM_HORIZON"


def _sequence_ranges(segments: Sequence[Segment]) -> dict[str, list[str]]:
    """shard -> [first, last] sequence number of the segments (for logs)."""
    ranges: dict[str, list[int]] = {}
    for seg in segments:
        first, last = ranges.get(seg.shard_id, [seg.first_sequence, seg.last_sequence])
        ranges[seg.shard_id] = [min(first, seg.first_sequence), max(last, seg.last_sequence)]
    return {shard: [str(a), str(b)] for shard, (a, b) in ranges.items()}


def _first_of(ranges: Mapping[str, list[str]]) -> str | None:
    return next(iter(ranges.values()))[0] if ranges else None


def _without_poison(pieces: Sequence[iceberg.Piece], poison: Mapping[tuple[int, int], BaseException],
                    ) -> tuple[list[iceberg.Piece], list[PoisonRow]]:
    """The pieces without their poison rows, and those rows."""
    out: list[iceberg.Piece] = []
    found: list[PoisonRow] = []
    for index, piece in enumerate(pieces):
        bad = {row: exc for (i, row), exc in poison.items() if i == index}
        if not bad or piece.rows is None:
            out.append(piece)
            continue
        rows = piece.rows
        columns = {name: rows[name] for name in ("sequence_number", "event_id", "job_id") if name in rows.column_names}
        for row, exc in sorted(bad.items()):
            values = {name: column[row].as_py() for name, column in columns.items()}
            found.append(PoisonRow(piece.shard_id, str(values.get("sequence_number")), values.get("event_id"),
                                   values.get("job_id"), exc, "write"))
        keep = pa.array([i not in bad for i in range(rows.num_rows)], pa.bool_())
        out.append(iceberg.Piece(piece.shard_id, piece.first_sequence, piece.last_sequence, rows.filter(keep)))
    return out, found


def _merge_quarantine(existing: Sequence[iceberg.Piece], found: Sequence[PoisonRow],
                      segments: Sequence[Segment]) -> list[iceberg.Piece]:
    """The quarantine commit's pieces: one per shard, covering the batch's range of that shard, with every
    poison row found so far."""
    now = datetime.now(UTC)
    sources: dict[str, list[StreamRecord]] = {}
    for seg in segments:
        sources.setdefault(seg.shard_id, []).extend(seg.source)
    by_shard: dict[str, list[pa.Table]] = {}
    for piece in existing:
        if piece.rows is not None:
            by_shard.setdefault(piece.shard_id, []).append(piece.rows)
    for item in found:
        rows = poison_reject_rows([item], sources.get(item.shard_id, []), now)
        by_shard.setdefault(item.shard_id, []).append(rejects_table(rows))
    ranges = _sequence_ranges(segments)
    return [iceberg.Piece(shard, int(ranges[shard][0]), int(ranges[shard][1]),
                          pa.concat_tables(tables)) for shard, tables in sorted(by_shard.items())]
