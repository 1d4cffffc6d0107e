"""The local stack's monitoring: a Prometheus server scraping the components, and the Streamlit dashboard.

Prometheus is Debian's `prometheus` package (scripts/tools.sh prometheus installs it); it loads the project's
rules (helm/eventpipe-operator/rules/eventpipe.rules.yaml, the same file the chart ships) and keeps its TSDB in
`<state>/prometheus`. The operator is scraped on its default metrics port when one runs locally (it shows as
down otherwise). The dashboard runs from its own virtualenv (envs/dashboard.txt). Pure planning here; `stack`
starts the processes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventpipe_cli import locations

if TYPE_CHECKING:
    from eventpipe_cli.stack import ComponentSpec, StackConfig
    from eventpipe_cli.state import StatePaths

HOST = "127.0.0.1"
SCRAPE_INTERVAL = "5s"
OPERATOR_METRICS_PORT = 8080


def rules_file() -> Path:
    return locations.repo_root() / "helm" / "eventpipe-operator" / "rules" / "eventpipe.rules.yaml"


def dashboard_app() -> Path:
    return locations.repo_root() / "dashboard" / "app.py"


def dashboard_python() -> Path:
    override = os.environ.get("EVENTPIPE_DASHBOARD_PYTHON")
    if override:
        return Path(override)
    return locations.repo_root() / ".venvs" / "dashboard" / "bin" / "python"


def prometheus_bin() -> Path | None:
    found = os.environ.get("EVENTPIPE_PROMETHEUS_BIN") or shutil.which("prometheus")
    return Path(found) if found else None


def scrape_config(name: str, port: int, path: str = "/metrics") -> dict[str, Any]:
    return {"job_name": name, "metrics_path": path, "static_configs": [{"targets": [f"{HOST}:{port}"]}]}


def prometheus_config(config: StackConfig) -> dict[str, Any]:
    """prometheus.yml of the local stack: every component on 127.0.0.1, the project's rules loaded."""
    jobs = [
        scrape_config("ingest", config.ingest_metrics_port),
        scrape_config("consumer", config.consumer_metrics_port),
    ]
    if not (config.airflow and config.airflow_port == OPERATOR_METRICS_PORT):
        jobs.append(scrape_config("operator", OPERATOR_METRICS_PORT))
    if config.transform and not config.airflow:
        jobs.append(scrape_config("transform", config.transform_metrics_port))
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "15s"},
        "rule_files": [str(rules_file())],
        "scrape_configs": jobs,
    }


def write_prometheus_config(config: StackConfig, paths: StatePaths) -> Path:
    """Written as JSON, which is YAML too (the services image has no YAML library)."""
    path = paths.root / "prometheus.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(prometheus_config(config), indent=2))
    return path


def components(config: StackConfig, paths: StatePaths, base_env: dict[str, str]) -> list[ComponentSpec]:
    """Prometheus (when its binary is there) and the dashboard (when its virtualenv is there), in start order."""
    from eventpipe_cli.stack import ComponentSpec

    specs: list[ComponentSpec] = []
    prometheus = prometheus_bin()
    if prometheus is not None:
        specs.append(ComponentSpec(
            "prometheus",
            [str(prometheus), f"--config.file={paths.root / 'prometheus.yml'}",
             f"--storage.tsdb.path={paths.root / 'prometheus'}", "--storage.tsdb.retention.time=7d",
             f"--web.listen-address={HOST}:{config.prometheus_port}"],
            dict(base_env), port=config.prometheus_port,
            ready_url=f"http://{HOST}:{config.prometheus_port}/-/ready"))
    python = dashboard_python()
    if python.exists():
        specs.append(ComponentSpec(
            "dashboard",
            [str(python), "-m", "streamlit", "run", str(dashboard_app()), "--server.address", HOST,
             "--server.port", str(config.dashboard_port), "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"],
            {**base_env, "EVENTPIPE_PROMETHEUS_URL": f"http://{HOST}:{config.prometheus_port}"},
            port=config.dashboard_port, ready_url=f"http://{HOST}:{config.dashboard_port}/_stcore/health"))
    return specs


def urls(config: StackConfig) -> dict[str, str]:
    found = {}
    if prometheus_bin() is not None:
        found["prometheus"] = f"http://{HOST}:{config.prometheus_port}"
    if dashboard_python().exists():
        found["dashboard"] = f"http://{HOST}:{config.dashboard_port}"
    return found
