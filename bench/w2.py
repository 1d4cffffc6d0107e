"""Benchmark W2 (docs/workloads.md): ingest over HTTP, side by side with the bare FastAPI peer, in one run.

    python -m bench.w2 [--rounds 5] [--requests 200] [--concurrency 8] [--batch 500]
                       [--targets ingest,ingest-unpacked,ingest-aiobotocore,peer] [--source NAME=DIR ...]
                       [--pg-source NAME=DIR ...]

Starts these processes on 127.0.0.1: an ack-only stream endpoint (bench/w2_ackstream.py: the emulators are slower
than Kinesis, so this one only acknowledges PutRecords), the ingest service (`python -m eventpipe_ingest`, the W1
rules as its schema, SQLite job store, API key auth on) and the peer (bench/w2_peer.py: FastAPI + json.loads + 202);
ingest runs once per variant: the default (the lean signed PutRecords call, events packed per shard into records),
`ingest-unpacked` (one event per Kinesis record), `ingest-aiobotocore` (aiobotocore's generic client) and
`ingest-postgres` (the job store on a PostgreSQL server started for it, as in production). The ack-only stream has 4
shards. The load generator (this process: asyncio + httpx, `concurrency` requests in flight)
POSTs the same JSON-array bodies of `batch` W1-shaped events to each, alternating the order every round. Per round
and target: wall-clock events/s, p50/p99 request latency, and the server process's CPU time per request (the
process's CPU clock, in nanoseconds, all threads: `cpu_seconds`), which is the per-request cost that depends least
on how busy the shared machine is. Medians over rounds, and each ingest target's ratio to the peer both as the
ratio of the medians and paired (the median of the per-round ratios, each round's targets having run seconds apart).
Not a test: nothing is asserted.

`--source NAME=DIR` adds the target "ingest@NAME": the same service run from the sources of another checkout
(DIR/services/{ingest,jobs,common}/src first on PYTHONPATH, e.g. `git archive <commit> services | tar -x -C DIR`),
so a change is measured against the code before it, interleaved in the same run. `--pg-source NAME=DIR` adds
"ingest-postgres@NAME": the same, with the job store on a PostgreSQL server of its own, as `ingest-postgres`.
`paired_differences` in the output compares each such target with this checkout's, round by round.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.w2_events import SCHEMA, json_array_batches
from tests.helpers.servers import ServerProcess, free_port, start_postgres, start_process

REPO = Path(__file__).resolve().parent.parent


def process_cpu_clock(pid: int) -> int:
    """The clock id of another process's CPU clock (Linux: CPUCLOCK_SCHED of the process, as glibc's
    clock_getcpuclockid builds it): reading it gives the scheduler's runtime of all the process's threads, the
    ones that ended included, in nanoseconds."""
    return ((~pid) << 3) | 2


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), to the nanosecond.

    /proc/PID/stat reports the same total in clock ticks (10 ms): over a round of 200 requests that is a step of
    0.05 ms per request, a third of the difference being measured. The process CPU clock is the same count
    (sum_exec_runtime) before it is rounded to ticks."""
    return time.clock_gettime_ns(process_cpu_clock(pid)) / 1e9


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds_in_ticks(pid: int) -> float:
    """The same total as /proc/PID/stat reports it (user + system, in clock ticks): what this bench used before,
    kept beside the clock's figure to show what the ticks' rounding does to a round."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass
class Round:
    target: str
    requests: int
    seconds: float
    events: int  # accepted (ingest) or parsed (peer)
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    ticks_cpu_ms_per_request: float  # the same from /proc/PID/stat's clock ticks
    stream_cpu_ms_per_request: float
    statuses: dict[int, int]

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds


async def load(url: str, headers: dict[str, str], bodies: list[bytes], requests: int, concurrency: int,
               server: ServerProcess, stream: ServerProcess | None, target: str) -> Round:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    events = 0
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal next_index, events
            while next_index < requests:
                body = bodies[next_index % len(bodies)]
                next_index += 1
                started = time.perf_counter()
                answer = await client.post("/api/v1/ingest", content=body)
                latencies.append(time.perf_counter() - started)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
                if answer.status_code == 202:
                    out = answer.json()
                    events += out.get("accepted", out.get("received", 0))

        cpu0 = cpu_seconds(server.pid)
        ticks0 = cpu_seconds_in_ticks(server.pid)
        stream0 = cpu_seconds(stream.pid) if stream else 0.0
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - t0
        cpu = cpu_seconds(server.pid) - cpu0
        ticks = cpu_seconds_in_ticks(server.pid) - ticks0
        stream_cpu = (cpu_seconds(stream.pid) - stream0) if stream else 0.0
    return Round(target, requests, seconds, events, percentile(latencies, 50) * 1000,
                 percentile(latencies, 99) * 1000, cpu / requests * 1000, ticks / requests * 1000,
                 stream_cpu / requests * 1000, statuses)


# Ingest targets and their settings: the default (lean PutRecords, events packed per shard), the same without
# packing (one event per Kinesis record), and aiobotocore's generic client.
INGEST_TARGETS = {
    "ingest": {"EVENTPIPE_INGEST_KINESIS_CLIENT": "lean"},
    "ingest-unpacked": {"EVENTPIPE_INGEST_KINESIS_CLIENT": "lean", "EVENTPIPE_INGEST_PACK_MAX_BYTES": "0"},
    "ingest-aiobotocore": {"EVENTPIPE_INGEST_KINESIS_CLIENT": "aiobotocore"},
    # The production job store: a PostgreSQL server (started on 127.0.0.1 for this target), rows written by the
    # job writer's thread; the other targets use the default, a SQLite file.
    "ingest-postgres": {"EVENTPIPE_INGEST_KINESIS_CLIENT": "lean"},
}
# The peer with the ingest process's collector settings (see bench/w2_peer.py), and with Python's defaults.
PEER_TARGETS = {"peer": [], "peer-default-gc": ["--default-gc"]}


def start_servers(workdir: Path, key: str, targets: list[str], sources: dict[str, Path]) -> dict[str, ServerProcess]:
    """The ack-only stream, the ingest targets (lean default, aiobotocore, ingest@NAME) and the peer."""
    python = sys.executable
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    stream_port = free_port()
    servers = {"stream": start_process("w2-ackstream", [python, "-m", "bench.w2_ackstream", str(stream_port)],
                                       stream_port, env=env, cwd=REPO)}
    schema_path = workdir / "schema.json"
    schema_path.write_text(json.dumps(SCHEMA))
    keys = workdir / "keys"
    keys.write_text(f"bench:{hashlib.sha256(key.encode()).hexdigest()}\n")
    for name in targets:
        if name.startswith("peer"):
            continue
        target_env = dict(INGEST_TARGETS.get(name, INGEST_TARGETS["ingest"]))
        if name.startswith("ingest-postgres"):
            servers[f"postgres-{name}"], target_env["EVENTPIPE_JOB_STORE_DSN"] = start_postgres()
        port = free_port()
        path = env["PYTHONPATH"]
        if "@" in name:
            src = sources[name]
            path = os.pathsep.join([str(src / f"services/{package}/src") for package in ("ingest", "jobs", "common")]
                                   + [path])
        ingest_env = {**env, **target_env, "PYTHONPATH": path, "EVENTPIPE_INGEST_PORT": str(port),
                      "EVENTPIPE_KINESIS_ENDPOINT_URL": f"http://127.0.0.1:{stream_port}",
                      "EVENTPIPE_STREAM_NAME": "bench", "EVENTPIPE_SCHEMA_PATH": str(schema_path),
                      "EVENTPIPE_INGEST_API_KEYS_FILE": str(keys), "EVENTPIPE_STATE_DIR": str(workdir / name),
                      "EVENTPIPE_LOG_LEVEL": "WARNING", "AWS_ACCESS_KEY_ID": "bench",
                      "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
        servers[name] = start_process(f"w2-{name}", [python, "-m", "eventpipe_ingest"], port, env=ingest_env,
                                      cwd=workdir)
    for name, extra in PEER_TARGETS.items():
        if name in targets:
            port = free_port()
            servers[name] = start_process(f"w2-{name}", [python, "-m", "bench.w2_peer", str(port), *extra], port,
                                          env=env, cwd=REPO)
    return servers


def put_records_calls(url: str) -> dict[str, float]:
    """From an ingest target's own metrics: PutRecords calls sent, and requests per call (calls made while one is
    in flight go out merged, eventpipe_ingest.coalesce)."""
    text = httpx.get(f"{url}/api/v1/metrics").text
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == "eventpipe_ingest_kinesis_put_records_calls_total" or (
                name.startswith("eventpipe_ingest_requests_total{") and 'status="202"' in name):
            values[name.split("{")[0]] = values.get(name.split("{")[0], 0.0) + float(value)
    calls = values.get("eventpipe_ingest_kinesis_put_records_calls_total", 0.0)
    requests = values.get("eventpipe_ingest_requests_total", 0.0)
    return {"put_records_calls": calls, "requests_per_put_records_call": requests / calls if calls else 0.0}


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version(), "cpus": str(os.cpu_count())}
    for name in ("fastapi", "uvicorn", "starlette", "aiobotocore", "httpx", "eventpipe-core"):
        try:
            out[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing package is reported as such
            out[name] = "missing"
    return out


def paired_differences(rounds: list[Round], names: list[str]) -> dict[str, dict[str, Any]]:
    """Each `TARGET@NAME` against `TARGET` (the code of another checkout against this one): the median of the
    per-round differences of CPU per request (this one - the other, ms), and in how many rounds this one used less."""
    out: dict[str, dict[str, Any]] = {}
    for other in names:
        base = other.split("@", 1)[0]
        if "@" not in other or base not in names:
            continue
        diffs = [r.cpu_ms_per_request - o.cpu_ms_per_request
                 for r, o in zip((r for r in rounds if r.target == base), (r for r in rounds if r.target == other),
                                 strict=True)]
        out[f"{base} - {other}"] = {"median_ms": statistics.median(diffs), "spread_ms": [min(diffs), max(diffs)],
                                    "rounds_less": sum(d < 0 for d in diffs), "rounds": len(diffs)}
    return out


def summarize(rounds: list[Round], target: str) -> dict[str, Any]:
    mine = [r for r in rounds if r.target == target]
    statuses: dict[int, int] = {}
    for r in mine:
        for code, n in r.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
    return {
        "events_per_second": statistics.median(r.events_per_second for r in mine),
        "p50_ms": statistics.median(r.p50_ms for r in mine),
        "p99_ms": statistics.median(r.p99_ms for r in mine),
        "cpu_ms_per_request": statistics.median(r.cpu_ms_per_request for r in mine),
        "cpu_ms_per_request_spread": [min(r.cpu_ms_per_request for r in mine),
                                      max(r.cpu_ms_per_request for r in mine)],
        "ticks_cpu_ms_per_request": statistics.median(r.ticks_cpu_ms_per_request for r in mine),
        "events_per_cpu_second": statistics.median(r.events / (r.cpu_ms_per_request * r.requests / 1000)
                                                   for r in mine),
        "stream_cpu_ms_per_request": statistics.median(r.stream_cpu_ms_per_request for r in mine),
        "statuses": statuses,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    bodies = json_array_batches(args.bodies, args.batch, seed=1)
    key = "w2-bench-key"
    with tempfile.TemporaryDirectory(prefix="eventpipe-w2-") as tmp:
        sources = {f"ingest@{name}": Path(folder) for name, folder in (s.split("=", 1) for s in args.source)}
        sources |= {f"ingest-postgres@{name}": Path(folder)
                    for name, folder in (s.split("=", 1) for s in args.pg_source)}
        wanted = [t for t in args.targets.split(",") if t] + list(sources)
        servers = start_servers(Path(tmp), key, wanted, sources)
        try:
            ingest_headers = {"X-API-Key": key, "Content-Type": "application/json"}
            targets: dict[str, tuple[str, dict[str, str], ServerProcess, ServerProcess | None]] = {
                name: (f"http://127.0.0.1:{servers[name].port}", ingest_headers, servers[name], servers["stream"])
                for name in wanted if name not in PEER_TARGETS
            }
            for name in PEER_TARGETS:
                if name in wanted:
                    targets[name] = (f"http://127.0.0.1:{servers[name].port}",
                                     {"Content-Type": "application/json"}, servers[name], None)
            for name, (url, headers, server, ack) in targets.items():  # warm-up, not measured
                await load(url, headers, bodies, args.warmup, args.concurrency, server, ack, name)
            rounds: list[Round] = []
            names = list(targets)
            for n in range(args.rounds):
                order = names[n % len(names):] + names[:n % len(names)]  # rotate who goes first
                for name in order:
                    url, headers, server, ack = targets[name]
                    result = await load(url, headers, bodies, args.requests, args.concurrency, server, ack, name)
                    rounds.append(result)
                    print(f"round {n} {name}: {result.events_per_second:,.0f} events/s, p50 {result.p50_ms:.1f} ms, "
                          f"p99 {result.p99_ms:.1f} ms, server CPU {result.cpu_ms_per_request:.3f} ms/request "
                          f"(ticks {result.ticks_cpu_ms_per_request:.2f}), "
                          f"statuses {result.statuses}", file=sys.stderr)
            calls = {name: put_records_calls(url) for name, (url, _, _, ack) in targets.items() if ack is not None}
        finally:
            for server in servers.values():
                server.stop()
    summaries = {name: summarize(rounds, name) | calls.get(name, {}) for name in names}
    ratios = {}
    if "peer" in summaries:
        peer = summaries["peer"]
        ratios = {
            name: {"cpu_per_request_over_peer": summaries[name]["cpu_ms_per_request"] / peer["cpu_ms_per_request"],
                   "p50_over_peer": summaries[name]["p50_ms"] / peer["p50_ms"],
                   "throughput_over_peer": summaries[name]["events_per_second"] / peer["events_per_second"]}
            for name in names if name not in PEER_TARGETS
        }
        for name, ratio in ratios.items():
            # Paired: each round's ratio to the peer's in the same round (they ran seconds apart, so they saw
            # the same machine), then the median and the spread of those.
            paired = [r.cpu_ms_per_request / p.cpu_ms_per_request
                      for r, p in zip((r for r in rounds if r.target == name),
                                      (r for r in rounds if r.target == "peer"), strict=True)]
            ratio["cpu_per_request_over_peer_paired"] = statistics.median(paired)
            ratio["cpu_per_request_over_peer_paired_spread"] = [min(paired), max(paired)]
    return {"config": vars(args), "versions": versions(), **summaries,
            "ratios": ratios, "paired_differences": paired_differences(rounds, names)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="requests per round and target")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--bodies", type=int, default=40, help="distinct request bodies, sent round-robin")
    parser.add_argument("--targets", default="ingest,ingest-unpacked,ingest-aiobotocore,peer",
                        help=f"comma-separated, of {', '.join([*INGEST_TARGETS, *PEER_TARGETS])} (may be empty)")
    parser.add_argument("--source", action="append", default=[], metavar="NAME=DIR",
                        help="also run ingest from the sources in DIR, as target ingest@NAME (repeatable)")
    parser.add_argument("--pg-source", action="append", default=[], metavar="NAME=DIR",
                        help="the same with the job store on PostgreSQL, as target ingest-postgres@NAME (repeatable)")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
