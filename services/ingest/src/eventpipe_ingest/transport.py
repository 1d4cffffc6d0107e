"""The one interface between the publisher and Kinesis: a PutRecords transport.

A transport takes `(data, partition_key)` pairs and returns one `RecordResult` per pair, in order; a call that
gets no per-record answer raises `StreamError` (the stream answered the call with an error) or `TransportError`
(no usable answer: connection, timeout, a broken or short answer). Nothing botocore-shaped crosses it, so the
publisher and the merging of calls (eventpipe_ingest.coalesce) do not depend on which client sends the call.

Implementations: `eventpipe_ingest.kinesis.LeanTransport` (the default: body built by the Rust core, signed by
eventpipe_ingest.sigv4, sent by eventpipe_ingest.httpclient), `eventpipe_ingest.kinesis.AiobotocoreTransport`
(botocore's generic client), and `eventpipe_ingest.coalesce.CoalescedTransport`, which wraps either. The same
contract tests run against both real ones (tests/ingest/test_ingest_transport.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import NamedTuple, Protocol

# One record to put: its data and its partition key.
Record = tuple[bytes, str]


class RecordResult(NamedTuple):
    """Kinesis's answer for one record: where it landed, or why it did not (then it may be sent again)."""

    shard_id: str | None = None
    sequence_number: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def failed(self) -> bool:
        return self.error_code is not None


class PutRecordsTransport(Protocol):
    """`await transport(records)`: one PutRecords call, one result per record in the order sent."""

    def __call__(self, records: list[Record], /) -> Awaitable[list[RecordResult]]: ...


class StreamError(Exception):
    """The stream refused the whole call with an error code (e.g. ResourceNotFoundException, throttling)."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class TransportError(Exception):
    """The call got no usable answer (connection refused or reset, timeout, unparsable or short answer): its
    records may or may not have landed, so sending them again is the only safe move (consumers dedupe)."""


def failed_count(results: Sequence[RecordResult]) -> int:
    return sum(1 for r in results if r.error_code is not None)


class ShortAnswerError(TransportError):
    """Fewer per-record results than records sent: nothing of the call counts as acknowledged (sent again)."""

    def __init__(self, answered: int, sent: int) -> None:
        super().__init__(f"PutRecords answered {answered} records for {sent} sent")
