"""`eventpipe status`: what the local stack is doing, gathered from its state folder and its servers.

Each section is gathered on its own and reports its own error, so a stopped server does not hide the rest.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from eventpipe_cli.catalog import TABLES, last_snapshot, settings_for
from eventpipe_cli.state import StatePaths, read_json

LAG_METRIC_MARKER = "millis_behind"


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def parse_lag(metrics_text: str) -> dict[str, float]:
    """MillisBehindLatest per shard from the consumer's Prometheus text (a gauge labelled by shard)."""
    lag: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("#") or LAG_METRIC_MARKER not in line.split("{")[0].split(" ")[0]:
            continue
        name_labels, _, value = line.rpartition(" ")
        shard = "all"
        if 'shard' in name_labels and "{" in name_labels:
            labels = name_labels[name_labels.index("{") + 1:name_labels.rindex("}")]
            for part in labels.split(","):
                key, _, raw = part.partition("=")
                if key.strip().startswith("shard"):
                    shard = raw.strip().strip('"')
        try:
            lag[shard] = float(value)
        except ValueError:
            continue
    return lag


def components(paths: StatePaths) -> dict[str, Any]:
    stack = read_json(paths.stack)
    if stack is None:
        return {"running": False}
    return {
        "running": pid_alive(stack.get("pid")),
        "pid": stack.get("pid"),
        "urls": stack.get("urls", {}),
        "config": stack.get("config", {}),
        "components": {name: {**info, "alive": pid_alive(info.get("pid"))}
                       for name, info in stack.get("components", {}).items()},
    }


def shards(endpoint: str, stream: str) -> list[dict[str, Any]]:
    import boto3

    client = boto3.client("kinesis", endpoint_url=endpoint, region_name=os.environ.get("AWS_DEFAULT_REGION",
                                                                                           "us-east-1"),
                          aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
                          aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"))
    listed = client.list_shards(StreamName=stream)["Shards"]
    return [{"shard_id": s["ShardId"],
             "open": "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})} for s in listed]


def consumer_lag(metrics_url: str) -> dict[str, float]:
    with urllib.request.urlopen(metrics_url, timeout=3) as response:
        return parse_lag(response.read().decode())


def consumer_readiness(readyz_url: str) -> dict[str, Any]:
    """The consumer's /readyz answer: {"ready": bool, "stopped_shards": {shard: reason}} (503 when not ready)."""
    try:
        with urllib.request.urlopen(readyz_url, timeout=3) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:  # 503: a shard is stopped; the body says which and why
        body = exc.read()
    answer: dict[str, Any] = json.loads(body)
    return answer


def jobs(state_dir: Path) -> dict[str, Any]:
    """Job counts by state and their event counts, from the job store (eventpipe_jobs)."""
    import sqlalchemy as sa
    from eventpipe_jobs.schema import jobs_table

    db = state_dir / "jobs.db"
    if not db.exists():
        return {}
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(
                jobs_table.c.state, sa.func.count(), sa.func.sum(jobs_table.c.accepted),
                sa.func.sum(jobs_table.c.committed), sa.func.sum(jobs_table.c.rejected),
            ).group_by(jobs_table.c.state)).all()
    finally:
        engine.dispose()
    return {state: {"jobs": n, "accepted": int(acc or 0), "committed": int(com or 0), "rejected": int(rej or 0)}
            for state, n, acc, com, rej in rows}


def source_freshness(paths: StatePaths) -> dict[str, Any] | None:
    """The raw tables' last source freshness check (`dbt source freshness`, which the transform step runs before
    each build and writes to freshness.json): worst status, thresholds, each source's newest row and age."""
    return read_json(paths.freshness)


def gather(state_dir: Path) -> dict[str, Any]:
    paths = StatePaths.at(state_dir)
    report: dict[str, Any] = {"state_dir": str(paths.root)}
    report["stack"] = components(paths)
    config = report["stack"].get("config", {})
    settings = settings_for(paths.root, config.get("namespace"))
    if report["stack"]["running"]:
        try:
            report["shards"] = shards(f"http://127.0.0.1:{config['kinesis_port']}", config["stream_name"])
        except Exception as exc:  # noqa: BLE001 (report the error in its section, keep the rest)
            report["shards_error"] = str(exc)
        try:
            report["lag_ms"] = consumer_lag(f"http://127.0.0.1:{config['consumer_metrics_port']}/metrics")
        except (urllib.error.URLError, OSError) as exc:
            report["lag_error"] = str(exc)
        try:
            report["consumer"] = consumer_readiness(f"http://127.0.0.1:{config['consumer_metrics_port']}/readyz")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            report["consumer_error"] = str(exc)
    try:
        report["jobs"] = jobs(paths.root)
    except Exception as exc:  # noqa: BLE001
        report["jobs_error"] = str(exc)
    report["tables"] = {}
    for name in TABLES:
        try:
            report["tables"][name] = last_snapshot(settings, name)
        except Exception as exc:  # noqa: BLE001
            report["tables"][name] = {"error": str(exc)}
    report["transform"] = read_json(paths.transform)
    report["freshness"] = source_freshness(paths)
    return report
