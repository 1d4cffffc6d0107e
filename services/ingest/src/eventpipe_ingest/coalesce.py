"""One PutRecords call for many requests: the calls made while the stream is busy are merged (group commit).

Each PutRecords call costs the same fixed CPU whatever it carries (the HTTP client's request and response
machinery, signing, the answer), and a call carries only a few packed records of one request (docs/benchmarks.md,
W2). `CoalescedTransport` is a PutRecords transport (eventpipe_ingest.transport) like the one it wraps. While
fewer than `max_in_flight` calls are out, a call goes out at once, alone; otherwise it waits, and when a call
comes back every waiting call that fits goes out together as one, within the service limits (500 records,
5 MiB). The answer is split back: Kinesis answers record by record, in order, so each caller gets its own slice
of the results and retries its own failed records as before. A failed call fails every caller in it, and each
retries on its own.
A caller that gives up (its deadline) leaves the merged call to go on for the others; its records may still land,
as with any cancelled call, which consumers' dedupe on event_id makes harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from eventpipe_ingest.records import MAX_BYTES_PER_CALL, MAX_RECORDS_PER_CALL, record_size
from eventpipe_ingest.transport import PutRecordsTransport, Record, RecordResult, ShortAnswerError


@dataclass
class _Waiting:
    entries: list[Record]
    size: int
    answer: asyncio.Future[list[RecordResult]]


class CoalescedTransport:
    def __init__(self, put_records: PutRecordsTransport, *, max_in_flight: int = 1,
                 max_records: int = MAX_RECORDS_PER_CALL, max_bytes: int = MAX_BYTES_PER_CALL,
                 on_call: Callable[[int], object] | None = None) -> None:
        """`on_call(callers)` is told of each call sent and how many callers it carries (metrics)."""
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._put_records = put_records
        self._max_in_flight = max_in_flight
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._on_call = on_call
        self._waiting: list[_Waiting] = []
        self._calls: set[asyncio.Task[None]] = set()

    async def __call__(self, entries: list[Record], /) -> list[RecordResult]:
        size = sum(record_size(data, key) for data, key in entries)
        waiting = _Waiting(entries, size, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        self._send_next()
        return await waiting.answer

    def _send_next(self) -> None:
        """Start a call with the waiting calls that fit, oldest first, if a slot is free."""
        while self._waiting and len(self._calls) < self._max_in_flight:
            group = [self._waiting.pop(0)]
            records, size = len(group[0].entries), group[0].size
            while self._waiting:
                following = self._waiting[0]
                if records + len(following.entries) > self._max_records or size + following.size > self._max_bytes:
                    break
                group.append(self._waiting.pop(0))
                records += len(following.entries)
                size += following.size
            group = [w for w in group if not w.answer.done()]  # callers that gave up are left out
            if not group:
                continue
            if self._on_call is not None:
                self._on_call(len(group))
            call = asyncio.create_task(self._send(group))
            self._calls.add(call)
            call.add_done_callback(self._call_done)

    def _call_done(self, call: asyncio.Task[None]) -> None:
        self._calls.discard(call)
        self._send_next()

    async def _send(self, group: list[_Waiting]) -> None:
        sent = sum(len(w.entries) for w in group)
        try:
            results = await self._put_records([e for w in group for e in w.entries])
            if len(results) != sent:
                raise ShortAnswerError(answered=len(results), sent=sent)
        except asyncio.CancelledError:  # shutdown: the callers are cancelled too
            for w in group:
                w.answer.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every caller of the call, as if it had called alone
            for w in group:
                if not w.answer.done():
                    w.answer.set_exception(exc)
            return
        start = 0
        for w in group:
            mine = results[start:start + len(w.entries)]
            start += len(w.entries)
            if not w.answer.done():
                w.answer.set_result(mine)

    async def aclose(self) -> None:
        """Wait for the calls in flight (at shutdown, before the HTTP client they use is closed)."""
        while self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)
