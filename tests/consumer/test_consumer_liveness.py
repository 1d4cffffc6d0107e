"""/healthz of the consumer fails while its event loop is stuck (the metrics server runs in its own thread, so
answering HTTP alone proves nothing), over real HTTP from the real metrics server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request

from eventpipe_consumer.app import heartbeat
from eventpipe_consumer.metrics import ConsumerMetrics

from tests.helpers.servers import free_port


def _status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _until(port: int, code: int, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while _status(port) != code:
        assert time.monotonic() < deadline, f"/healthz never answered {code}"
        time.sleep(0.05)


def test_healthz_fails_while_the_event_loop_is_blocked() -> None:
    metrics = ConsumerMetrics()
    metrics.stale_after_seconds = 0.5
    port = free_port()
    server = metrics.serve("127.0.0.1", port)
    loop = asyncio.new_event_loop()
    block, release = threading.Event(), threading.Event()

    async def main() -> None:
        beat = asyncio.create_task(heartbeat(metrics, interval=0.05))
        await asyncio.to_thread(block.wait, 60)
        release.wait(timeout=60)  # blocks the whole loop, as a stuck synchronous call in a coroutine would
        await asyncio.sleep(0.5)
        beat.cancel()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    try:
        thread.start()
        _until(port, 200)  # beating
        block.set()
        _until(port, 503)  # the loop is blocked: no beat
        release.set()
        _until(port, 200)  # beating again
    finally:
        block.set()
        release.set()
        thread.join(timeout=30)
        loop.close()
        server.shutdown()
        server.server_close()
