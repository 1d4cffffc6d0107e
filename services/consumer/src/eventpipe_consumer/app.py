"""Wiring: build the consumer's parts from settings and run it until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from aiobotocore.session import get_session
from eventpipe_common.logging import configure_logging, get_logger
from eventpipe_common.runtime import tune_gc
from eventpipe_jobs.store import JobStore

from eventpipe_consumer.consumer import Consumer
from eventpipe_consumer.iceberg import open_catalog
from eventpipe_consumer.leases import DynamoLeaseStore, LeaseStore, SqlLeaseStore
from eventpipe_consumer.metrics import ConsumerMetrics
from eventpipe_consumer.settings import ConsumerSettings

T = TypeVar("T")


def lease_store(settings: ConsumerSettings) -> LeaseStore:
    if settings.consumer_lease_store == "dynamodb":
        return DynamoLeaseStore.connect(settings.resolved_lease_table(), settings.stream_name, settings.aws_region,
                                        settings.consumer_dynamodb_endpoint_url)
    return SqlLeaseStore.from_dsn(settings.resolved_lease_dsn(), settings.resolved_lease_table(), settings.stream_name)


def _when_ready(action: Callable[[], T], what: str, attempts: int = 6) -> T:
    """Start-up steps that create tables (catalog, leases, jobs) race when several consumers start at once on one
    fresh SQLite or PostgreSQL database ("table ... already exists"): the loser tries again."""
    for attempt in range(attempts):
        try:
            return action()
        except sa.exc.SQLAlchemyError as exc:
            if attempt == attempts - 1:
                raise
            get_logger().warning("startup_retry", step=what, attempt=attempt + 1, error=str(exc).splitlines()[0])
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


async def run_consumer(settings: ConsumerSettings) -> None:
    """The `run` command: one consumer process, graceful on SIGTERM (commit, release leases, exit 0)."""
    configure_logging("consumer", settings.log_level)
    log = get_logger()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    metrics = ConsumerMetrics()
    if settings.consumer_metrics_port:
        metrics.serve(settings.consumer_metrics_host, settings.consumer_metrics_port)
    catalog = await asyncio.to_thread(_when_ready, lambda: open_catalog(
        settings.catalog_name, settings.resolved_catalog_properties()), "catalog")
    leases = await asyncio.to_thread(_when_ready, lambda: lease_store(settings), "lease store")
    jobs = await asyncio.to_thread(_when_ready, lambda: JobStore.from_dsn(settings.resolved_job_store_dsn()),
                                   "job store")
    metrics.watch_jobs(jobs.count_by_state)
    session = get_session()
    async with session.create_client("kinesis", region_name=settings.aws_region,
                                     endpoint_url=settings.kinesis_endpoint_url) as kinesis:
        consumer = Consumer(settings, kinesis, leases, catalog, jobs, metrics)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, consumer.stop)
        log.info("consumer_settings", **{k: v for k, v in settings.public_dict().items()
                                         if k != "catalog_properties" and "dsn" not in k})
        beat = asyncio.create_task(heartbeat(metrics), name="heartbeat")
        tune_gc()
        try:
            await consumer.run()
        finally:
            beat.cancel()
    jobs.close()


async def heartbeat(metrics: ConsumerMetrics, interval: float = 1.0) -> None:
    """Mark the event loop alive for /healthz; a blocked loop stops beating and the liveness probe fails."""
    while True:
        metrics.loop_beat = time.monotonic()
        await asyncio.sleep(interval)
