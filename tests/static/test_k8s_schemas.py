"""The Kubernetes schemas of scripts/k8s_schemas.py, checked with the real kubeconform (scripts/static.sh): the
static stage trusts a manifest because these schemas pass it, so they must also refuse what the API server refuses.

Needs EVENTPIPE_KUBECONFORM (the binary) and EVENTPIPE_K8S_SWAGGER (Kubernetes' OpenAPI v2 document), which
scripts/static.sh sets.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("k8s_schemas", REPO / "scripts" / "k8s_schemas.py")
assert _spec is not None and _spec.loader is not None
k8s_schemas = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(k8s_schemas)

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "x", "namespace": "shop"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "x"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{
                "name": "x", "image": "example/x:1",
                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": 1}},
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
            }]},
        },
    },
}


def test_file_names_are_kubeconforms() -> None:
    """kubeconform looks schemas up as <kind>-<first label of the group>-<version>.json, lower case."""
    assert k8s_schemas.file_name("apps/v1", "Deployment") == "deployment-apps-v1.json"
    assert k8s_schemas.file_name("v1", "ConfigMap") == "configmap-v1.json"
    assert k8s_schemas.file_name("networking.k8s.io/v1", "NetworkPolicy") == "networkpolicy-networking-v1.json"
    assert k8s_schemas.file_name("eventpipe.io/v1alpha1", "EventPipeline") == "eventpipeline-eventpipe-v1alpha1.json"


def _tool(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this through scripts/static.sh")
    return value


def _validate(tmp_path: Path, docs: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    """Schemas for these documents (built-ins and our CRD), then kubeconform -strict over them."""
    manifest = tmp_path / "docs.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    schemas = tmp_path / "schemas"
    argv = ["k8s_schemas", _tool("EVENTPIPE_K8S_SWAGGER"), str(schemas),
            "--crds", str(REPO / "crds" / "eventpipelines.eventpipe.io.yaml"), "--manifests", str(manifest)]
    saved, sys.argv = sys.argv, argv
    try:
        k8s_schemas.main()
    finally:
        sys.argv = saved
    return subprocess.run(
        [_tool("EVENTPIPE_KUBECONFORM"), "-strict", "-summary",
         "-schema-location", f"{schemas}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json", str(manifest)],
        capture_output=True, text=True, check=False)


def test_a_valid_deployment_passes_with_int_or_string_and_quantities(tmp_path: Path) -> None:
    result = _validate(tmp_path, [DEPLOYMENT])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path, value", [
    (("spec", "replica"), 2),                                   # misspelt field (strict)
    (("spec", "replicas"), "two"),                              # wrong type
    (("spec", "strategy", "rollingUpdate", "maxSurge"), [1]),   # neither int nor string
])
def test_an_invalid_deployment_is_refused(tmp_path: Path, path: tuple[str, ...], value: object) -> None:
    doc = copy.deepcopy(DEPLOYMENT)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    result = _validate(tmp_path, [doc])
    assert result.returncode != 0 and "Invalid: 1" in result.stdout, result.stdout


def test_the_crd_schema_checks_pipelines(tmp_path: Path) -> None:
    """The examples pass the CRD's schema; a field the CRD does not declare is refused."""
    example = yaml.safe_load((REPO / "examples" / "shop-pipeline.yaml").read_text())
    assert _validate(tmp_path, [example]).returncode == 0
    bad = copy.deepcopy(example)
    bad["spec"]["stream"]["shard"] = 4
    result = _validate(tmp_path, [bad])
    assert result.returncode != 0 and "Invalid: 1" in result.stdout, result.stdout
