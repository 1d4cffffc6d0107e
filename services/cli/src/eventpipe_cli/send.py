"""`eventpipe send`: POST generated NDJSON batches to the ingest API, rate-limited, and count what came back.

The server's answer is the truth: accepted and rejected come from its 202 bodies, not from what the generator
meant to send. 429 and 503 answers are retried after their Retry-After (the ingest's backpressure).

Waiting for "committed": a job is done when its state is `committed` (or `failed`). The consumer counts every
event record of a job it committed, also the re-sends it dropped (dedupe window or in-batch duplicate), so a
job's committed count reaches its accepted count even when it re-sent events of an earlier request.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from eventpipe_cli.batching import batches
from eventpipe_cli.generator import GeneratedLine
from eventpipe_cli.ratelimit import TokenBucket

API_KEY_HEADER = "X-API-Key"
RETRYABLE = (429, 503)


@dataclass
class SendSummary:
    lines: int = 0
    requests: int = 0
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    retries: int = 0
    failed_requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    job_ids: list[str] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0


def retry_after(response: httpx.Response, default: float = 1.0) -> float:
    """Seconds the server asked us to wait (Retry-After in seconds), bounded to [0.1, 30]."""
    try:
        value = float(response.headers.get("Retry-After", default))
    except ValueError:
        value = default
    return min(30.0, max(0.1, value))


def describe_refusal(response: httpx.Response) -> str:
    """One line for an answer other than 202: ingest's problem details (RFC 9457: code and detail, and where in
    the body for a parse error), or the start of whatever else answered (a proxy's HTML page)."""
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        try:
            problem = response.json()
        except ValueError:
            problem = None
        if isinstance(problem, dict) and "detail" in problem:
            where = f" (line {problem['line']})" if problem.get("line") is not None else ""
            return f"HTTP {response.status_code} {problem.get('code') or problem.get('title', '')}: " \
                   f"{problem['detail']}{where}"
    return f"HTTP {response.status_code}: {response.text[:300]}"


def post_batch(client: httpx.Client, url: str, api_key: str, lines: list[str], summary: SendSummary,
               max_retries: int = 10) -> None:
    body = ("\n".join(lines) + "\n").encode()
    headers = {API_KEY_HEADER: api_key, "Content-Type": "application/x-ndjson"}
    for attempt in range(max_retries + 1):
        try:
            response = client.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            if attempt == max_retries:
                summary.failed_requests += 1
                summary.errors.append(f"{type(exc).__name__}: {exc}")
                return
            summary.retries += 1
            time.sleep(min(5.0, 0.2 * 2 ** attempt))
            continue
        summary.statuses[response.status_code] += 1
        if response.status_code in RETRYABLE and attempt < max_retries:
            summary.retries += 1
            time.sleep(retry_after(response))
            continue
        break
    summary.requests += 1
    if response.status_code != 202:
        summary.failed_requests += 1
        summary.errors.append(describe_refusal(response))
        return
    answer = response.json()
    summary.received += int(answer.get("received", len(lines)))
    summary.accepted += int(answer.get("accepted", 0))
    summary.rejected += int(answer.get("rejected", 0))
    if answer.get("job_id"):
        summary.job_ids.append(str(answer["job_id"]))
    summary.rejects.extend(answer.get("rejects") or answer.get("errors") or [])


def send(url: str, api_key: str, lines: Iterable[str | GeneratedLine], *, batch_size: int = 500, rate: float = 0.0,
         max_bytes: int = 4 * 1024 * 1024, on_batch: Callable[[int], None] | None = None,
         timeout: float = 60.0) -> SendSummary:
    """Send every line; `rate` is events per second (0: as fast as the server answers)."""
    summary = SendSummary()
    bucket = TokenBucket(rate, burst=max(float(batch_size), rate)) if rate > 0 else TokenBucket(0, 0)
    started = time.monotonic()
    with httpx.Client(timeout=timeout) as client:
        for batch in batches(lines, batch_size, max_bytes=max_bytes):
            wait = bucket.wait_time(len(batch), time.monotonic())
            if wait > 0:
                time.sleep(wait)
            bucket.take(len(batch), time.monotonic())
            texts = [line if isinstance(line, str) else line.text for line in batch]
            post_batch(client, url, api_key, texts, summary)
            summary.lines += len(batch)
            if on_batch is not None:
                on_batch(len(batch))
    summary.seconds = time.monotonic() - started
    return summary


def job_states(base_url: str, api_key: str, job_ids: Iterable[str], timeout: float = 10.0) -> dict[str, dict[str, Any]]:
    """GET /api/v1/status/{job_id} for each job."""
    out: dict[str, dict[str, Any]] = {}
    with httpx.Client(timeout=timeout) as client:
        for job_id in job_ids:
            response = client.get(f"{base_url}/api/v1/status/{job_id}", headers={API_KEY_HEADER: api_key})
            response.raise_for_status()
            out[job_id] = response.json()
    return out


def job_done(state: dict[str, Any]) -> bool:
    return state.get("state") in ("committed", "failed")


def wait_committed(base_url: str, api_key: str, job_ids: list[str], timeout: float,
                   on_poll: Callable[[int, int], None] | None = None) -> dict[str, dict[str, Any]]:
    """Poll until every job is committed (or failed); raise TimeoutError naming the jobs still pending."""
    deadline = time.monotonic() + timeout
    pending = list(job_ids)
    done: dict[str, dict[str, Any]] = {}
    while True:
        states = job_states(base_url, api_key, pending)
        for job_id, state in states.items():
            if job_done(state):
                done[job_id] = state
        pending = [j for j in pending if j not in done]
        if on_poll is not None:
            on_poll(len(done), len(job_ids))
        if not pending:
            return done
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} of {len(job_ids)} jobs not committed within {timeout:.0f}s, "
                               f"e.g. {pending[0]}: {states[pending[0]]}")
        time.sleep(0.5)
