"""Ingest's writes of new jobs from the event loop, grouped (group commit)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from eventpipe_jobs.schema import JobExistsError, NewJob
from eventpipe_jobs.store import JobStore


class JobWriter:
    """Creates jobs for concurrent async callers, grouping the rows that arrive while a transaction runs into
    the next one (group commit): one transaction per group instead of per request.

    The hand-off of a group to a thread and back costs CPU on every request (docs/benchmarks.md), so the writes
    stay on the event loop where they can (`inline`, the default): on a SQLite file a fresh row is written at
    once when nothing is queued and no other connection holds the write lock (`JobStore.create_jobs_nowait`);
    on PostgreSQL each group is one statement (a server-side function) awaited on the loop
    (`JobStore.create_jobs_async`).
    Anything else (the SQLite lock held elsewhere, a known id, an error) goes to the one writer thread
    (`JobStore.create_jobs`), so the process never contends with itself for the write lock and the loop never
    waits for one.
    """

    def __init__(self, store: JobStore, max_group: int = 256, *, inline: bool | None = None) -> None:
        self._store = store
        self._inline = store.writes_nowait if inline is None else inline and store.writes_nowait
        self._async = store.writes_async if inline is None else inline and store.writes_async
        self._max_group = max_group
        self._pending: list[tuple[NewJob, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobwriter")

    async def create(self, job: NewJob) -> None:
        """Return once the job row is committed; raise JobExistsError for a known id, or the database's error."""
        if self._inline and not self._pending and self._store.create_jobs_nowait([job]):
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((job, done))
        if self._task is None:
            self._task = loop.create_task(self._write_groups())
        await done

    async def _write_groups(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                group, self._pending = self._pending[:self._max_group], self._pending[self._max_group:]
                jobs = [job for job, _ in group]
                try:
                    if self._async and await self._store.create_jobs_async(jobs):
                        existing: set[str] = set()
                    else:
                        existing = await loop.run_in_executor(self._thread, self._store.create_jobs, jobs)
                except Exception as exc:  # noqa: BLE001 - handed to every caller of the group, who decides
                    for _, done in group:
                        if not done.done():  # a caller cancelled meanwhile has nobody to tell
                            done.set_exception(exc)
                    continue
                for job, done in group:
                    if done.done():
                        continue
                    if job.job_id in existing:
                        done.set_exception(JobExistsError(f"job {job.job_id} already exists", job_id=job.job_id))
                    else:
                        done.set_result(None)
        finally:
            self._task = None

    async def close(self) -> None:
        """Wait for the writes under way, then stop the writer thread."""
        if self._task is not None:
            await asyncio.shield(self._task)
        await self._store.aclose()
        self._thread.shutdown(wait=True)
