"""Terraform's IRSA roles trust ServiceAccounts by name: those names must be the ones the chart and the operator
create, or the pods get no AWS credentials. Read from the Terraform sources, the rendered chart (helm from
EVENTPIPE_HELM, set by scripts/static.sh) and the operator's pure builders."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from eventpipe_operator import manifests
from eventpipe_operator.spec import Pipeline

REPO = Path(__file__).resolve().parents[2]
MODULES = REPO / "terraform" / "modules"


def _default(variables_tf: Path, name: str) -> str:
    """The string default of one variable of a variables.tf."""
    block = re.search(r'variable "' + re.escape(name) + r'" \{(.*?)\n\}', variables_tf.read_text(), re.S)
    assert block, f"no variable {name} in {variables_tf}"
    value = re.search(r'default\s*=\s*"([^"]*)"', block.group(1))
    assert value, f"variable {name} has no string default"
    return value.group(1)


def test_the_operator_role_trusts_the_charts_service_account() -> None:
    helm = os.environ.get("EVENTPIPE_HELM") or pytest.fail("EVENTPIPE_HELM is not set: run through scripts/static.sh")
    variables = MODULES / "operator-iam" / "variables.tf"
    namespace, account = _default(variables, "k8s_namespace"), _default(variables, "service_account")
    out = subprocess.run([helm, "template", "eventpipe", str(REPO / "helm" / "eventpipe-operator"), "-n", namespace],
                         capture_output=True, text=True, check=True).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    accounts = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "ServiceAccount"}
    assert (namespace, account) in accounts
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account


def test_the_pipeline_roles_trust_the_operators_service_accounts() -> None:
    """pipeline-iam makes <prefix><pipeline>-<component> trusted by <ns>/<pipeline>-<component>: the names the
    operator gives the ServiceAccounts (and the pods that use them), and the ARNs the example pipeline names."""
    main_tf = (MODULES / "pipeline-iam" / "main.tf").read_text()
    assert 'service_account   = "${var.pipeline}-${each.key}"' in main_tf
    assert 'name              = "${var.role_name_prefix}${var.pipeline}-${each.key}"' in main_tf
    components = set(re.findall(r"^\s+(\w+)\s+= jsonencode\(local\.\w+_policy\)", main_tf, re.M))
    assert components == {"ingest", "consumer", "transform"}
    prefix = _default(MODULES / "pipeline-iam" / "variables.tf", "role_name_prefix")

    body = yaml.safe_load((REPO / "examples" / "shop-pipeline.yaml").read_text())
    body["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    pipeline = Pipeline.from_body(body)
    opts = manifests.BuildOptions(image="x:1", consumer_replicas=1, analytics_image="y:1")
    children = manifests.build_children(pipeline, opts)
    accounts = {c["metadata"]["name"]: c["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
                for c in children if c["kind"] == "ServiceAccount"}
    assert set(accounts) == {f"{pipeline.name}-{c}" for c in components}
    for component in components:
        arn = accounts[f"{pipeline.name}-{component}"]
        assert arn.endswith(f":role/{prefix}{pipeline.name}-{component}"), arn
    pod_accounts = {c["spec"]["template"]["spec"]["serviceAccountName"] for c in children if c["kind"] == "Deployment"}
    pod_accounts |= {c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"]
                     for c in children if c["kind"] == "CronJob"}
    assert pod_accounts <= set(accounts)
