"""The job row of an ingest request: written once, after Kinesis answered, grouped across concurrent requests.

Over real HTTP against kinesalite and a SQLite job store (Property 3: never a 202 whose job id is unknown).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from eventpipe_common.jobstore import JobStore, jobs_table
from eventpipe_ingest.api.routes.ingest import INLINE_CORE_MAX_BYTES
from eventpipe_ingest.transport import PutRecordsTransport, Record, RecordResult

from tests.helpers.ingest_events import valid_event

# The job id inside a record's Data (the event JSON carries "_job_id"; found by pattern so that it does not
# depend on how events are laid out in records).
JOB_ID_IN_DATA = re.compile(rb'"_job_id":"([0-9a-f-]{36})"')


def test_counts_the_consumer_records_before_the_row_exists_are_kept(ingest_app: Callable[..., Any],
                                                                    tmp_path: Path) -> None:
    """Property 3: a consumer faster than the ack (it commits the job's events while PutRecords is answered,
    before ingest writes the job row) loses nothing: the 202's job is found, committed, with every count."""
    dsn = f"sqlite:///{tmp_path / 'jobs.db'}"
    events = [valid_event(i % 5) for i in range(30)]
    seen: list[str] = []

    def fast_consumer(real: PutRecordsTransport) -> PutRecordsTransport:
        async def put(entries: list[Record], /) -> list[RecordResult]:
            answer = await real(entries)
            match = JOB_ID_IN_DATA.search(entries[0][0])
            assert match is not None
            job_id = match.group(1).decode()
            store = JobStore.from_dsn(dsn)
            await asyncio.to_thread(store.record_committed, {job_id: len(events)})
            store.close()
            seen.append(job_id)
            return answer

        return put

    with ingest_app(wrap_transport=fast_consumer, job_store_dsn=dsn) as client:
        answer = client.post("/api/v1/ingest", json=events)
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]
        assert seen == [job_id]
        store = JobStore.from_dsn(dsn)
        try:
            # Folded when the row was written, not only when status reads it.
            with store.engine.connect() as conn:
                row = conn.execute(sa.select(jobs_table.c.state, jobs_table.c.committed)
                                   .where(jobs_table.c.job_id == job_id)).one()
            assert tuple(row) == ("committed", 30)
            assert store.unknown_commits() == {}
        finally:
            store.close()
        status = client.get(f"/api/v1/status/{job_id}").json()
    assert (status["state"], status["committed"], status["accepted"]) == ("committed", 30, 30)


def test_concurrent_requests_each_find_their_own_job(ingest_app: Callable[..., Any], api_key: str) -> None:
    """Property 3 under concurrency: requests whose rows share job-store transactions each get their own job,
    with their own counts."""
    sizes = [1 + (i * 7) % 40 for i in range(24)]
    with ingest_app() as client:
        base_url = str(client.base_url)

        async def send_all() -> list[httpx.Response]:
            headers = {"Authorization": f"Bearer {api_key}"}
            async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as http:
                return list(await asyncio.gather(*(
                    http.post("/api/v1/ingest", json=[valid_event(j) for j in range(n)]) for n in sizes)))

        answers = asyncio.run(send_all())
        assert [a.status_code for a in answers] == [202] * len(sizes), [a.text for a in answers]
        for n, answer in zip(sizes, answers, strict=True):
            body = answer.json()
            status = client.get(f"/api/v1/status/{body['job_id']}").json()
            assert (status["state"], status["received"], status["accepted"]) == ("published", n, n)
    assert len({a.json()["job_id"] for a in answers}) == len(sizes)


def test_job_store_failure_after_publishing_is_503_not_202(ingest_app: Callable[..., Any], tmp_path: Path) -> None:
    """Property 3: when the job row cannot be written the client gets 503 with Retry-After, never a 202 for a
    job id that status would not find (the events already sent are deduplicated on the client's retry)."""
    dsn = f"sqlite:///{tmp_path / 'jobs.db'}"
    with ingest_app(job_store_dsn=dsn) as client:
        store = JobStore.from_dsn(dsn)
        jobs_table.drop(store.engine)
        store.close()
        answer = client.post("/api/v1/ingest", json=[valid_event(1)])
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "dependency_unavailable"
        assert answer.headers["Retry-After"] == "1"


def test_bodies_on_either_side_of_the_inline_limit_get_the_same_answer(client: httpx.Client) -> None:
    """Bodies up to INLINE_CORE_MAX_BYTES go through the core on the event loop, larger ones in a thread:
    both are validated and answered alike (counts, rejects and their lines)."""
    template = valid_event(1, properties={"page": "/p/" + "x" * 200})
    per_event = len(json.dumps(template)) + 2
    for n in (INLINE_CORE_MAX_BYTES // per_event - 50, INLINE_CORE_MAX_BYTES // per_event + 50):
        events = [valid_event(i % 9, properties={"page": "/p/" + "x" * 200}) for i in range(n)]
        events[3] = {"event_type": "page_view"}
        body = json.dumps(events).encode()
        assert (len(body) > INLINE_CORE_MAX_BYTES) == (n > INLINE_CORE_MAX_BYTES // per_event)
        answer = client.post("/api/v1/ingest", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 202, answer.text
        got = answer.json()
        assert (got["received"], got["accepted"], got["rejected"]) == (n, n - 1, 1)
        assert [r["line"] for r in got["rejects"]] == [4]  # 1-based element index
