"""The local stack's decisions: restart with backoff, give up on a crash loop, transform on new snapshots."""

from __future__ import annotations

from eventpipe_cli.batching import batches
from eventpipe_cli.supervisor import GiveUp, LetExit, Restart, RestartPolicy, should_transform, stop_order
from hypothesis import given, settings
from hypothesis import strategies as st


def test_first_crash_restarts_quickly_then_backs_off() -> None:
    policy = RestartPolicy(max_restarts=5, window=300, base_delay=1, max_delay=30)
    assert policy.decide("consumer", 1, [], 100.0, stopping=False) == Restart(1)
    assert policy.decide("consumer", 1, [90.0], 100.0, stopping=False) == Restart(2)
    assert policy.decide("consumer", 1, [80.0, 90.0, 95.0], 100.0, stopping=False) == Restart(8)


def test_a_crash_loop_stops_the_stack_with_a_reason() -> None:
    policy = RestartPolicy(max_restarts=3, window=60)
    action = policy.decide("ingest", 3, [50.0, 55.0, 59.0], 60.0, stopping=False)
    assert isinstance(action, GiveUp)
    assert "ingest" in action.reason and "code 3" in action.reason


def test_old_restarts_are_forgotten() -> None:
    policy = RestartPolicy(max_restarts=3, window=60)
    assert isinstance(policy.decide("ingest", 1, [0.0, 1.0, 2.0], 1000.0, stopping=False), Restart)


def test_exits_while_stopping_are_expected() -> None:
    assert RestartPolicy().decide("consumer", -15, [], 1.0, stopping=True) == LetExit()


@settings(max_examples=50, deadline=None)
@given(restarts=st.lists(st.floats(0, 1000), max_size=20), now=st.floats(0, 1000))
def test_delay_is_bounded_and_restarts_are_bounded(restarts: list[float], now: float) -> None:
    policy = RestartPolicy(max_restarts=4, window=100, base_delay=0.5, max_delay=10)
    action = policy.decide("x", 1, restarts, now, stopping=False)
    recent = [t for t in restarts if now - t <= 100]
    if len(recent) >= 4:
        assert isinstance(action, GiveUp)
    else:
        assert isinstance(action, Restart) and 0.5 <= action.delay <= 10


def test_stop_order_is_reverse_start_order() -> None:
    assert stop_order(["kinesalite", "consumer", "ingest", "transform"]) == [
        "transform", "ingest", "consumer", "kinesalite"]


def test_transform_runs_on_a_new_snapshot_at_most_once_per_interval() -> None:
    assert not should_transform(None, None, None, 0.0, 5.0)
    assert should_transform(None, "s1", None, 0.0, 5.0)
    assert not should_transform("s1", "s1", 0.0, 100.0, 5.0)
    assert not should_transform("s1", "s2", 10.0, 12.0, 5.0)
    assert should_transform("s1", "s2", 10.0, 15.0, 5.0)


@settings(max_examples=50, deadline=None)
@given(lines=st.lists(st.text(max_size=50), max_size=200), size=st.integers(1, 50),
       max_bytes=st.none() | st.integers(1, 400))
def test_batches_keep_order_and_limits(lines: list[str], size: int, max_bytes: int | None) -> None:
    out = list(batches(lines, size, max_bytes=max_bytes))
    assert [line for batch in out for line in batch] == lines
    for batch in out:
        assert 1 <= len(batch) <= size
        if max_bytes is not None and len(batch) > 1:
            assert sum(len(line.encode()) + 1 for line in batch) <= max_bytes


def test_transform_waits_until_a_burst_of_commits_settles() -> None:
    # The fingerprint changed at t=100; with a 5 s settle nothing runs before t=105.
    assert not should_transform("s1", "s2", None, 103.0, 1.0, changed_at=100.0, settle=5.0)
    assert should_transform("s1", "s2", None, 105.0, 1.0, changed_at=100.0, settle=5.0)
