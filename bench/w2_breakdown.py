"""Where one W2 request's CPU goes: each step of the ingest path timed alone, in this process, per 500 events.

    python -m bench.w2_breakdown [--repeat 50] [--postgres]

Steps: the Rust core's ingest path (parse, validate, dedupe, lines with _job_id, partition keys, packing into one
record per shard of 4; and the consumer's process_batch for comparison), the PutRecords body (base64 + JSON +
SHA-256, in Rust), SigV4 signing (ingest's signer; botocore's for comparison), parsing the answer, the job store on
SQLite (the one write per request, alone and as one of a group of 8 concurrent requests; and the two
transactions it replaced), one thread hand-off (asyncio.to_thread of a no-op), and for comparison botocore's own
validation + serialization of the same call. Medians of `repeat` runs, CPU time of this process (time.process_time) and
wall-clock time. `--postgres` also runs the job-store steps against a PostgreSQL server started on 127.0.0.1
(tests/helpers/servers.py; the production job store), where the wall time includes its round trips. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import botocore.session
import eventpipe_core
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from eventpipe_common.jobstore import JobState, JobStore, NewJob
from eventpipe_ingest.kinesis import CONTENT_TYPE, TARGET, put_records_body, record_results
from eventpipe_ingest.sigv4 import PostSigner

from bench.w2_events import SCHEMA, json_array_batches


def median_ms(step: Callable[[int], Any], repeat: int) -> tuple[float, float]:
    """(CPU, wall) medians in ms."""
    cpu, wall = [], []
    for i in range(repeat):
        t0, w0 = time.process_time(), time.perf_counter()
        step(i)
        cpu.append(time.process_time() - t0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu) * 1000, statistics.median(wall) * 1000


def job_store_steps(store: JobStore, label: str) -> dict[str, Callable[[int], Any]]:
    """The job store's write per request (alone, in a group of 8) and the two transactions it replaced."""

    def new_job() -> NewJob:
        return NewJob(str(uuid.uuid4()), 500, 490, 10, state=JobState.PUBLISHED)

    def two_transactions(_: int) -> None:
        job_id = str(uuid.uuid4())
        store.create_job(job_id, 500, 490, 10)
        store.mark_published(job_id)

    steps: dict[str, Callable[[int], Any]] = {}
    if store.writes_nowait:
        steps[f"job store ({label}): one row on the event loop, create_jobs_nowait"] = (
            lambda _: store.create_jobs_nowait([new_job()]))
    if store.writes_async:
        loop = asyncio.new_event_loop()  # one loop for every call: the async connection belongs to its loop
        steps[f"job store ({label}): one row on the event loop, create_jobs_async"] = (
            lambda _: loop.run_until_complete(store.create_jobs_async([new_job()])))
    return steps | {
        f"job store ({label}): one write, create_jobs of 1 row": lambda _: store.create_jobs([new_job()]),
        f"job store ({label}): create_jobs of 8 rows, per row": lambda _: store.create_jobs(
            [new_job() for _ in range(8)]),
        f"job store ({label}) before: create_job + mark_published": two_transactions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--postgres", action="store_true", help="job-store steps on PostgreSQL too")
    args = parser.parse_args(argv)
    bodies = json_array_batches(20, 500, seed=1)
    schema = eventpipe_core.Schema(json.dumps(SCHEMA))
    job_id = str(uuid.uuid4())
    starts = [n * (2**128 // 4) for n in range(4)]

    def ingest_batch(i: int) -> eventpipe_core.IngestBatch:
        return eventpipe_core.ingest_batch(bodies[i % len(bodies)], job_id=job_id, format="json", schema=schema,
                                           shard_starts=starts, pack_max_bytes=256 * 1024)

    pairs = [(data, key) for data, key, _, _ in ingest_batch(0).records]
    entries = [{"Data": data, "PartitionKey": key} for data, key in pairs]  # botocore's shape, for its serializer
    body, body_sha256 = put_records_body("bench", pairs)
    answer = b'{"FailedRecordCount":0,"Records":[' + b",".join(
        [b'{"SequenceNumber":"49600000000000000000000000000000000000000000","ShardId":"shardId-000000000000"}']
        * len(entries)) + b"]}"
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "secret", None)

    signer = PostSigner("https://kinesis.us-east-1.amazonaws.com/", "us-east-1", "kinesis",
                        {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET})

    def botocore_sign(_: int) -> None:
        request = AWSRequest(method="POST", url="https://kinesis.us-east-1.amazonaws.com/", data=body,
                             headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET})
        SigV4Auth(credentials, "kinesis", "us-east-1").add_auth(request)

    client = botocore.session.get_session().create_client(
        "kinesis", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    model = client.meta.service_model.operation_model("PutRecords")
    validating = client._serializer  # botocore's ParamValidationDecorator around the JSON serializer

    with tempfile.TemporaryDirectory() as tmp:
        store = JobStore.from_dsn(f"sqlite:///{tmp}/jobs.db")

        async def hand_offs(n: int) -> None:
            for _ in range(n):
                await asyncio.to_thread(int)

        def hand_off(_: int) -> None:
            asyncio.run(hand_offs(100))

        steps: dict[str, Callable[[int], Any]] = {
            "Rust core: ingest_batch (500 events -> 4 packed records)": ingest_batch,
            "for comparison: json.loads of the body (the peer's whole work)": lambda i: json.loads(
                bodies[i % len(bodies)]),
            "for comparison: Rust core process_batch (Arrow columns + raw)": lambda i: eventpipe_core.process_batch(
                bodies[i % len(bodies)], format="json", schema=schema, job_id=job_id, include_raw=True),
            "PutRecords body: base64 + JSON + SHA-256 (Rust)": lambda _: put_records_body("bench", pairs),
            "SigV4 signing (ingest's signer, body hash given)": lambda _: signer.headers(credentials, body_sha256),
            "for comparison: SigV4 signing (botocore's signer)": botocore_sign,
            "parse the PutRecords answer (orjson, per-record results)": lambda _: record_results(orjson.loads(answer)),
            **job_store_steps(store, "SQLite"),
            "thread hand-off: asyncio.to_thread round trip, per call": hand_off,
            "for comparison: botocore validate + serialize PutRecords": lambda _: validating.serialize_to_request(
                {"StreamName": "bench", "Records": entries}, model),
        }
        out = {name: median_ms(step, args.repeat) for name, step in steps.items()}
        store.close()
    if args.postgres:
        from tests.helpers.servers import start_postgres

        server, dsn = start_postgres()
        try:
            pg = JobStore.from_dsn(dsn)
            out.update({name: median_ms(step, args.repeat) for name, step in job_store_steps(pg, "PostgreSQL").items()})
            pg.close()
        finally:
            server.stop()
    per = {"per row": 8, "per call": 100}  # the 100 hand-offs include 1/100 of an event loop's start
    width = max(map(len, out))
    print(f"{'step':<{width}}  {'CPU':>9}  {'wall':>9}")
    for name, (cpu, wall) in out.items():
        n = next((v for k, v in per.items() if name.endswith(k)), 1)
        print(f"{name:<{width}}  {cpu / n:6.2f} ms  {wall / n:6.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
