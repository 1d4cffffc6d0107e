"""Pure status logic: conditions with stable transition times, the lifecycle phase, and what changed.

Conditions follow the Kubernetes convention (type, status "True"/"False"/"Unknown", reason, message,
lastTransitionTime, observedGeneration) so that `kubectl wait --for=condition=Ready` works. `Ready` is True
only when every part is; parts the spec does not ask for are True with reason NotRequested.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PART_CONDITIONS = ("SpecValid", "StreamReady", "TableReady", "ChildrenOwned", "IngestAvailable", "ConsumersScaled",
                   "DagPublished")
PHASES = ("Pending", "Provisioning", "Running", "Degraded", "Failed")


@dataclass(frozen=True)
class Condition:
    type: str
    ok: bool | None          # None: Unknown
    reason: str
    message: str = ""

    @property
    def status(self) -> str:
        return "Unknown" if self.ok is None else ("True" if self.ok else "False")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready_condition(parts: list[Condition]) -> Condition:
    failing = [c for c in parts if c.ok is not True]
    if not failing:
        return Condition("Ready", True, "AllPartsReady", "every part of the pipeline is ready")
    first = failing[0]
    names = ", ".join(c.type for c in failing)
    return Condition("Ready", False if any(c.ok is False for c in failing) else None, first.reason,
                     f"not ready: {names}; {first.type}: {first.message}")


def merge_conditions(old: list[dict[str, Any]] | None, new: list[Condition], generation: int,
                     now: str) -> list[dict[str, Any]]:
    """New conditions as dicts, keeping lastTransitionTime where the status did not change."""
    previous = {c.get("type"): c for c in old or []}
    merged = []
    for cond in new:
        before = previous.get(cond.type)
        since = now
        if before is not None and before.get("status") == cond.status and before.get("lastTransitionTime"):
            since = before["lastTransitionTime"]
        merged.append({
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message,
            "observedGeneration": generation,
            "lastTransitionTime": since,
        })
    return merged


def phase_of(parts: list[Condition], previous_phase: str | None) -> str:
    """Failed on an invalid spec or a failed provisioning; Running when all is well; Degraded when a running
    pipeline lost a part; Provisioning while parts are coming up; Pending before the first reconcile."""
    by_type = {c.type: c for c in parts}
    spec_valid = by_type.get("SpecValid")
    if spec_valid is not None and spec_valid.ok is False:
        return "Failed"
    if any(c.ok is False and c.reason.endswith("Failed") for c in parts):
        return "Failed"
    if all(c.ok is True for c in parts):
        return "Running"
    if previous_phase in ("Running", "Degraded"):
        return "Degraded"
    return "Provisioning"


def transitions(old: list[dict[str, Any]] | None, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Conditions whose status changed (for Kubernetes Events)."""
    previous = {c.get("type"): c.get("status") for c in old or []}
    return [c for c in new if previous.get(c["type"]) != c["status"]]
