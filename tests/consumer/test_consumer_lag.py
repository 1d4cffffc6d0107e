"""The lag the consumer reports (eventpipe_consumer_lag_seconds, what the operator scales on): MillisBehindLatest,
the age of the newest record read, or the age of the oldest record read and not yet committed, whichever is
largest: kinesalite answers MillisBehindLatest 0 on open shards however far behind the reader is, and a reader
that keeps up while commits wait shows no read lag (the cluster test's scaler saw no lag at all before this)."""

from __future__ import annotations

import asyncio
import time

from aiobotocore.session import get_session
from eventpipe_consumer.kinesis import ShardReader, lag_seconds
from eventpipe_consumer.records import StreamRecord
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers.consumer_helpers import Stream, encode, make_event

NOW_US = 1_800_000_000_000_000


def _record(arrival_us: int) -> StreamRecord:
    return StreamRecord("shardId-000000000000", "1", b"{}", arrival_us)


@given(behind=st.none() | st.integers(min_value=0, max_value=86_400_000),
       ages_us=st.lists(st.integers(min_value=-5_000_000, max_value=86_400_000_000), max_size=5),
       pending_age_us=st.none() | st.integers(min_value=-5_000_000, max_value=86_400_000_000))
def test_lag_is_the_largest_of_millis_behind_newest_read_and_oldest_pending(
        behind: int | None, ages_us: list[int], pending_age_us: int | None) -> None:
    """Read lag (MillisBehindLatest, the newest record's age) and commit lag (the oldest record read and not yet
    taken to a commit): the largest counts, never negative (clocks may disagree by a little)."""
    records = [_record(NOW_US - age) for age in ages_us]
    pending = None if pending_age_us is None else NOW_US - pending_age_us
    lag = lag_seconds(behind, records, NOW_US, pending)
    known = ([] if behind is None else [behind / 1000]) + ([max(ages_us[-1], 0) / 1_000_000] if records else [])
    known += [] if pending_age_us is None else [max(pending_age_us, 0) / 1_000_000]
    if not known:
        assert lag is None
    else:
        assert lag == max(known)
        assert lag >= 0


def test_kinesalite_backlog_shows_as_lag(stream: Stream) -> None:
    """A reader five records into a backlog that waited 1.5 s reports at least 1.5 s of lag, though kinesalite
    says MillisBehindLatest 0; once it has read everything, an empty read reports 0."""
    stream.put([encode(make_event(i)) for i in range(20)])
    time.sleep(1.5)

    async def read() -> tuple[int | None, float | None, list[float | None]]:
        async with get_session().create_client("kinesis", region_name="us-east-1",
                                               endpoint_url=stream.endpoint) as kinesis:
            reader = ShardReader(kinesis, stream.name, stream.shard_ids()[0], None, limit=5, min_interval=0.2,
                                 idle_backoff_max=0.5)
            first = await reader.read()
            assert len(first.records) == 5
            first_lag = lag_seconds(first.millis_behind_latest, first.records, time.time_ns() // 1000)
            later: list[float | None] = []
            for _ in range(10):
                result = await reader.read()
                later.append(lag_seconds(result.millis_behind_latest, result.records, time.time_ns() // 1000))
                if not result.records:
                    break
            return first.millis_behind_latest, first_lag, later

    millis_behind, first_lag, later = asyncio.run(read())
    assert millis_behind == 0  # kinesalite's answer, 15 records behind: why the age is needed
    assert first_lag is not None and first_lag >= 1.5
    assert later[-1] == 0.0
