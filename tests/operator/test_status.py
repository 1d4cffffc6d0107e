"""Conditions, phases and transition Events: pure status logic."""

from __future__ import annotations

from eventpipe_operator.status import Condition, merge_conditions, phase_of, ready_condition, transitions

OK = [Condition(t, True, "Fine") for t in ("SpecValid", "StreamReady", "TableReady", "IngestAvailable",
                                            "ConsumersScaled", "DagPublished")]


def test_ready_only_when_every_part_is() -> None:
    assert ready_condition(OK).status == "True"
    parts = [*OK[:3], Condition("IngestAvailable", False, "MinimumReplicasUnavailable", "0/2 available"), *OK[4:]]
    ready = ready_condition(parts)
    assert ready.status == "False" and ready.reason == "MinimumReplicasUnavailable"
    assert "IngestAvailable" in ready.message and "0/2 available" in ready.message
    unknown = [*OK[:1], Condition("StreamReady", None, "StreamUnreachable", "timeout"), *OK[2:]]
    assert ready_condition(unknown).status == "Unknown"


def test_phases() -> None:
    assert phase_of(OK, None) == "Running"
    down = [*OK[:3], Condition("IngestAvailable", False, "MinimumReplicasUnavailable"), *OK[4:]]
    assert phase_of(down, None) == "Provisioning"
    assert phase_of(down, "Running") == "Degraded"
    assert phase_of([Condition("SpecValid", False, "InvalidSpec")], None) == "Failed"
    failed = [*OK[:1], Condition("StreamReady", False, "StreamProvisioningFailed"), *OK[2:]]
    assert phase_of(failed, "Running") == "Failed"


def test_transition_time_kept_while_status_unchanged() -> None:
    first = merge_conditions(None, OK, 1, "2026-01-01T00:00:00Z")
    assert {c["lastTransitionTime"] for c in first} == {"2026-01-01T00:00:00Z"}
    changed = [*OK[:3], Condition("IngestAvailable", False, "Down"), *OK[4:]]
    second = merge_conditions(first, changed, 2, "2026-01-01T00:05:00Z")
    times = {c["type"]: c["lastTransitionTime"] for c in second}
    assert times["IngestAvailable"] == "2026-01-01T00:05:00Z"
    assert times["StreamReady"] == "2026-01-01T00:00:00Z"
    assert all(c["observedGeneration"] == 2 for c in second)
    assert [c["type"] for c in transitions(first, second)] == ["IngestAvailable"]
