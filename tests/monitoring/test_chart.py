"""The chart ships the same rules and dashboards: PrometheusRule = rules/eventpipe.rules.yaml, one ConfigMap per
dashboard with Grafana's sidecar label, and the dashboard's Deployment when enabled (`helm template`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "eventpipe-operator"


def helm(*args: str) -> list[dict[str, Any]]:
    tools = subprocess.run([str(REPO / "scripts" / "k8s-tools.sh"), "--check"], capture_output=True, text=True)
    assert tools.returncode == 0, "helm is missing: scripts/k8s-tools.sh builds it"
    out = subprocess.run([f"{tools.stdout.strip()}/helm", "template", "ep", str(CHART), "-n", "eventpipe-system",
                          *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_prometheus_rule_is_the_tested_rules_file() -> None:
    assert not [d for d in helm() if d["kind"] == "PrometheusRule"]
    docs = helm("--set", "monitoring.prometheusRule.enabled=true",
                "--set", "monitoring.prometheusRule.labels.release=kube-prometheus-stack")
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"] == yaml.safe_load((CHART / "rules" / "eventpipe.rules.yaml").read_text())["groups"]


def test_dashboards_ship_as_sidecar_config_maps() -> None:
    maps = {d["metadata"]["name"]: d for d in helm() if d["kind"] == "ConfigMap"}
    for path in sorted((CHART / "dashboards").glob("*.json")):
        config_map = maps[f"ep-eventpipe-operator-dashboard-{path.stem}"]
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(config_map["data"][path.name]) == json.loads(path.read_text())
    assert not [d for d in helm("--set", "monitoring.grafanaDashboards.enabled=false") if d["kind"] == "ConfigMap"
                and "dashboard" in d["metadata"]["name"]]


def test_dashboard_option_deploys_the_streamlit_app() -> None:
    assert not [d for d in helm() if d["kind"] == "Deployment" and "dashboard" in d["metadata"]["name"]]
    docs = helm("--set", "dashboard.enabled=true", "--set", "dashboard.snowflakeSecretRef=snowflake")
    deployment = next(d for d in docs if d["kind"] == "Deployment" and "dashboard" in d["metadata"]["name"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:3] == ["streamlit", "run", "dashboard/app.py"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["EVENTPIPE_DASHBOARD_KUBERNETES"] == "1"
    assert container["envFrom"] == [{"secretRef": {"name": "snowflake"}}]
    role = next(d for d in docs if d["kind"] == "ClusterRole" and "dashboard" in d["metadata"]["name"])
    assert role["rules"] == [{"apiGroups": ["eventpipe.io"], "resources": ["eventpipelines"],
                              "verbs": ["get", "list"]}]
