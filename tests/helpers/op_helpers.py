"""Helpers of the operator tests: the example pipeline as a dict, a builder for bodies, the operator run in this
process (kopf's KopfRunner), and polling the API server."""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.helpers.servers import free_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "shop-pipeline.yaml"
CRD = REPO / "crds" / "eventpipelines.eventpipe.io.yaml"
CHART = REPO / "helm" / "eventpipe-operator"
# The in-process operator serves its metrics here (tests/operator/conftest.py sets it in its environment).
OPERATOR_METRICS_PORT = free_port()


def example() -> dict[str, Any]:
    with open(EXAMPLE, encoding="utf-8") as fh:
        doc: dict[str, Any] = yaml.safe_load(fh)
    return doc


def body(spec_changes: dict[str, Any] | None = None, name: str = "shop", namespace: str = "shop",
         uid: str = "0b5e1a9e-1111-4222-8333-444455556666", generation: int = 1) -> dict[str, Any]:
    """The example as an object the API server would return (metadata filled in), spec deep-merged."""
    doc = example()
    doc["metadata"] = {"name": name, "namespace": namespace, "uid": uid, "generation": generation}
    if spec_changes:
        doc["spec"] = merge(doc["spec"], spec_changes)
    return doc


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = copy.deepcopy(value)
    return out


def shop_schema() -> dict[str, Any]:
    return json.loads((REPO / "examples" / "shop-schema.json").read_text())


def ensure_namespace(core: client.CoreV1Api, name: str) -> None:
    try:
        core.create_namespace({"metadata": {"name": name}})
    except client.ApiException as exc:
        if exc.status != 409:
            raise


@contextlib.contextmanager
def run_operator(custom: client.CustomObjectsApi, priority: int = 0) -> Iterator[Any]:
    """The operator in this process (kopf's KopfRunner), watching every namespace, with peering on."""
    from kopf.testing import KopfRunner

    try:
        custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings",
                                            {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                                             "metadata": {"name": "eventpipe-tests"}})
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    with KopfRunner(["run", "-A", "--peering", "eventpipe-tests", "--priority", str(priority),
                     "-m", "eventpipe_operator.handlers"], timeout=60) as runner:
        yield runner
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.25) -> Any:
    """Poll until probe() returns something truthy; fail with the last value (or error) otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except client.ApiException as exc:
            last = f"{exc.status} {exc.reason}"
            if exc.status not in (404, 409):
                raise
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
