"""Shared test data for the operator tests: the example pipeline as a dict, and a builder for bodies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "shop-pipeline.yaml"
CRD = REPO / "crds" / "eventpipelines.eventpipe.io.yaml"
CHART = REPO / "helm" / "eventpipe-operator"


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
