"""Peak memory of the ingest service for the worst body shapes (issue 14, item 5). Not a test: nothing is asserted.

    python -m bench.ingest_memory [--concurrency 1,8] [--python PYTHON]

For each shape and concurrency, a fresh ingest process (`python -m eventpipe_ingest`, default limits: 10 MiB
body after decompression, 10,000 events) is started against the ack-only stream endpoint of W2, sent one small
request to warm up, then `concurrency` copies of the shape's body (gzip-encoded, as a client would send a 20 KB
body that inflates to 10 MiB) at once. The figure is the process's peak resident set (VmHWM in /proc/PID/status)
after the requests, next to the RSS after warm-up; the ingest pod's memory limit is 512 MiB (operator manifests).
`--python` runs another checkout's interpreter/venv (e.g. the code before a change) against the same shapes.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.servers import ServerProcess, free_port, start_process

REPO = Path(__file__).resolve().parent.parent

LIMIT = 10 * 1024 * 1024
POD_LIMIT_MIB = 512


def _event(i: int, pad: int) -> dict[str, Any]:
    return {"event_id": f"e{i}", "event_type": "page_view", "timestamp": "2026-11-27T13:45:12.123Z",
            "user_id": f"u{i % 97}", "properties": {"pad": "x" * pad}}


def _fill(unit: Callable[[int], bytes], head: bytes, sep: bytes, tail: bytes, size: int) -> bytes:
    """head + unit(0) sep unit(1) ... + tail, as many units as fit in `size` bytes."""
    parts, total, i = [head], len(head) + len(tail), 0
    while True:
        piece = unit(i)
        extra = len(piece) + (len(sep) if i else 0)
        if total + extra > size:
            break
        if i:
            parts.append(sep)
        parts.append(piece)
        total += extra
        i += 1
    parts.append(tail)
    return b"".join(parts)


# Each shape: a body of at most `size` bytes (the size limit) and its Content-Type.
SHAPES: dict[str, tuple[Callable[[int], bytes], str]] = {
    # millions of tiny invalid elements ([{},{},...]): over the event limit, refused before any reject is built
    "json-tiny-objects": (lambda size: _fill(lambda _: b"{}", b"[", b",", b"]", size), "application/json"),
    "ndjson-tiny-lines": (lambda size: _fill(lambda _: b"{}", b"", b"\n", b"\n", size), "application/x-ndjson"),
    "csv-tiny-rows": (lambda size: _fill(lambda _: b"x", b"event_id\n", b"\n", b"\n", size), "text/csv"),
    # within the event limit: 10,000 invalid events of ~1 KiB (three violations each, raw line kept)
    "json-10k-invalid-1kib": (
        lambda size: json.dumps([{"pad": "y" * (size // 10_000 - 20)} for _ in range(10_000)]).encode(),
        "application/json"),
    # 10,000 valid events of ~1 KiB: the largest accepted request
    "json-10k-valid-1kib": (
        lambda size: json.dumps([_event(i, size // 10_000 - 160) for i in range(10_000)]).encode(),
        "application/json"),
    # one event of 10 MiB: a reject (over Kinesis' 1 MiB record), its raw line truncated
    "json-1-event-10mib": (lambda size: json.dumps([_event(0, size - 200)]).encode(), "application/json"),
    # 10,000 events each echoing a long bad value in its violation messages (event_type not a string, etc.)
    "json-10k-invalid-echoing": (
        lambda size: json.dumps([{"event_id": "x" * (size // 33_000), "event_type": ["y" * (size // 33_000)],
                                  "timestamp": "z" * (size // 33_000)} for _ in range(10_000)]).encode(),
        "application/json"),
}


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


async def post_all(url: str, headers: dict[str, str], body: bytes, n: int) -> list[int]:
    async with httpx.AsyncClient(timeout=300) as client:
        answers = await asyncio.gather(*(client.post(url, content=body, headers=headers) for _ in range(n)))
    return [a.status_code for a in answers]


def measure(python: str, workdir: Path, stream_port: int, keys: Path, key: str, shape: str,
            concurrency: int) -> dict[str, Any]:
    build, content_type = SHAPES[shape]
    body = build(LIMIT)
    compressed = gzip.compress(body, 6)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVENTPIPE_INGEST_PORT": str(port),
           "EVENTPIPE_KINESIS_ENDPOINT_URL": f"http://127.0.0.1:{stream_port}", "EVENTPIPE_STREAM_NAME": "bench",
           "EVENTPIPE_INGEST_API_KEYS_FILE": str(keys), "EVENTPIPE_STATE_DIR": str(workdir / f"state-{port}"),
           "EVENTPIPE_LOG_LEVEL": "WARNING", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1"}
    server = start_process("mem-ingest", [python, "-m", "eventpipe_ingest"], port, env=env, cwd=workdir)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/ingest"
        headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
        warm = httpx.post(url, content=json.dumps([_event(0, 10)]).encode(),
                          headers={**headers, "Content-Type": "application/json"}, timeout=60)
        warm.raise_for_status()
        rss_warm = status_kib(server.pid, "VmRSS")
        started = time.perf_counter()
        codes = asyncio.run(post_all(url, {**headers, "Content-Encoding": "gzip"}, compressed, concurrency))
        seconds = time.perf_counter() - started
        peak = status_kib(server.pid, "VmHWM")
    finally:
        server.stop()
    return {"shape": shape, "concurrency": concurrency, "body_bytes": len(body), "gzip_bytes": len(compressed),
            "status": sorted(set(codes)), "rss_after_warmup_mib": round(rss_warm / 1024, 1),
            "peak_rss_mib": round(peak / 1024, 1), "seconds": round(seconds, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    args = parser.parse_args(argv)
    key = "bench-key"
    rows = []
    with tempfile.TemporaryDirectory(prefix="eventpipe-mem-") as tmp:
        workdir = Path(tmp)
        keys = workdir / "keys"
        keys.write_text(f"bench:{hashlib.sha256(key.encode()).hexdigest()}\n")
        stream_port = free_port()
        stream: ServerProcess = start_process(
            "mem-ackstream", [sys.executable, "-m", "bench.w2_ackstream", str(stream_port)], stream_port,
            env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
        try:
            for shape in args.shapes.split(","):
                for concurrency in (int(c) for c in args.concurrency.split(",")):
                    row = measure(args.python, workdir, stream_port, keys, key, shape, concurrency)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
        finally:
            stream.stop()
    worst = max(rows, key=lambda r: r["peak_rss_mib"])
    print(json.dumps({"worst": worst, "pod_limit_mib": POD_LIMIT_MIB}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
