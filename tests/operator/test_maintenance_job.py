"""The maintenance CronJob: applied on the real API server, then its own command run against a real table.

The CronJob and its ConfigMap are applied with the operator's server-side apply and read back from the API
server; the container's command and environment are resolved from what the server stored (ConfigMap keys,
the job-store Secret) exactly as the kubelet would, and run as a process of the services' environment
(.venvs/services, where eventpipe_consumer lives) against a SQLite catalog with a file warehouse. No kubelet
runs here, so the process is started by the test, not by a Job.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from eventpipe_operator import manifests, provision
from eventpipe_operator.kube import Kube
from eventpipe_operator.spec import Pipeline
from kubernetes import client

from tests.helpers.op_helpers import REPO, body, ensure_namespace

NS = "maint"
SERVICES_PYTHON = REPO / ".venvs" / "services" / "bin" / "python"

SEED = """
import datetime as dt, json, sys
import pyarrow as pa
from eventpipe_consumer import iceberg
catalog = iceberg.open_catalog(sys.argv[1], json.loads(sys.argv[2]))
table = catalog.load_table(sys.argv[3] + ".raw_events")
stream = sys.argv[4]
for n in range(4):  # four small consumer commits in one partition, each carrying the shard map
    seqs = [n * 10 + i for i in range(1, 4)]
    ts = [dt.datetime(2026, 11, 20, 13, 0, i, tzinfo=dt.UTC) for i in range(len(seqs))]
    rows = pa.table({
        "event_id": [f"e-{s}" for s in seqs], "event_type": ["page_view"] * 3,
        "event_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "event_date": pa.array([t.date() for t in ts], pa.date32()),
        "event_hour": pa.array([t.hour for t in ts], pa.int32()),
        "user_id": [None] * 3, "session_id": [None] * 3, "properties": ["{}"] * 3,
        "schema_version": pa.array([1] * 3, pa.int32()),
        "ingested_at": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "job_id": ["job"] * 3, "shard_id": ["shardId-000000000000"] * 3,
        "sequence_number": [str(s) for s in seqs],
    })
    iceberg.commit_pieces(table, [iceberg.Piece("shardId-000000000000", seqs[0], seqs[-1], rows)],
                          stream=stream, writer="pyiceberg")
    table.refresh()
"""

INSPECT = """
import json, sys
from eventpipe_consumer import checkpoints, iceberg
catalog = iceberg.open_catalog(sys.argv[1], json.loads(sys.argv[2]))
table = catalog.load_table(sys.argv[3] + ".raw_events")
rows = table.scan().to_arrow()
print(json.dumps({
    "files": len(list(table.scan().plan_files())),
    "rows": sorted(rows.column("event_id").to_pylist()),
    "map": checkpoints.read_map(table.metadata, sys.argv[4]),
    "location": table.location(),
}))
"""


def services(script: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([str(SERVICES_PYTHON), "-c", script, *args], capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout) if out.stdout.strip() else {}
    return result


def resolve_env(container: dict[str, Any], core: client.CoreV1Api) -> dict[str, str]:
    """The container's environment as the kubelet would build it, from the objects on the API server."""
    env: dict[str, str] = {}
    for entry in container.get("env") or []:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]
        if "configMapKeyRef" in ref:
            cm = core.read_namespaced_config_map(ref["configMapKeyRef"]["name"], NS)
            env[entry["name"]] = cm.data[ref["configMapKeyRef"]["key"]]
        else:
            secret = core.read_namespaced_secret(ref["secretKeyRef"]["name"], NS)
            env[entry["name"]] = base64.b64decode(secret.data[ref["secretKeyRef"]["key"]]).decode()
    return env


def test_maintenance_cronjob_command_runs_on_a_real_table(cluster: Any, api: client.ApiClient,
                                                          core: client.CoreV1Api, tmp_path: Path) -> None:
    assert SERVICES_PYTHON.exists(), "scripts/test.sh operator builds .venvs/services first"
    ensure_namespace(core, NS)
    (tmp_path / "warehouse").mkdir()
    props = {"type": "sql", "uri": f"sqlite:///{tmp_path / 'catalog.db'}",
             "warehouse": (tmp_path / "warehouse").as_uri()}
    pipeline = Pipeline.from_body(body({
        "schema": None, "iceberg": {"catalogProperties": props, "createTables": True},
        "maintenance": {"schedule": "15 2 * * *", "quietSeconds": 60, "orphanGraceSeconds": 3 * 24 * 3600},
        "jobStore": {"dsnSecretRef": {"name": "maint-job-store", "key": "dsn"}},
    }, name="maint", namespace=NS))
    opts = manifests.BuildOptions(image="ghcr.io/eventpipe/services:test", consumer_replicas=1,
                                  analytics_image="ghcr.io/eventpipe/analytics:test")
    core.create_namespaced_secret(NS, {"metadata": {"name": "maint-job-store"},
                                       "stringData": {"dsn": f"sqlite:///{tmp_path / 'jobs.db'}"}})
    kube = Kube(api, "eventpipe-operator")
    kube.apply(manifests.config_map(pipeline))
    kube.apply(manifests.maintenance_cronjob(pipeline, opts))

    stored = client.BatchV1Api(api).read_namespaced_cron_job("maint-maintenance", NS)
    assert stored.spec.schedule == "15 2 * * *" and stored.spec.concurrency_policy == "Forbid"
    pod = api.sanitize_for_serialization(stored.spec.job_template.spec.template)
    (container,) = pod["spec"]["containers"]
    assert pod["spec"]["serviceAccountName"] == "maint-consumer"
    env = resolve_env(container, core)
    assert env["EVENTPIPE_MAINTENANCE_ORPHAN_GRACE_SECONDS"] == str(3 * 24 * 3600)

    # A real table: provisioned by the operator, then four consumer commits (each with the shard map).
    provision.ensure_tables(provision.catalog_for(pipeline), pipeline)
    stream = pipeline.stream_name
    services(SEED, "eventpipe", json.dumps(props), "shop", stream)
    before = services(INSPECT, "eventpipe", json.dumps(props), "shop", stream)
    assert before["files"] == 4 and before["map"] == {"shardId-000000000000": 33}
    data = Path(before["location"].removeprefix("file://")) / "data"
    old_orphan, new_orphan = data / "stray-old.parquet", data / "stray-new.parquet"
    old_orphan.write_bytes(b"nobody references this")
    new_orphan.write_bytes(b"a consumer may still commit this")
    four_days_ago = time.time() - 4 * 24 * 3600
    os.utime(old_orphan, (four_days_ago, four_days_ago))
    # Compaction leaves partitions alone that a commit touched within quietSeconds (60 s, the CRD's minimum).
    time.sleep(61)

    # The image's python is this venv's; the pod's state dir (/var/lib/eventpipe) is a temporary one here.
    command = [str(SERVICES_PYTHON), *container["command"][1:]]
    assert container["command"][:4] == ["python", "-m", "eventpipe_consumer", "maintenance"]
    run = subprocess.run(command, env={**{k: v for k, v in os.environ.items() if not k.startswith("EVENTPIPE_")},
                                       **env, "EVENTPIPE_STATE_DIR": str(tmp_path / "state")},
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    reports = {r["table"]: r for r in json.loads(run.stdout)}
    assert set(reports) == {"raw_events", "raw_events_rejected"}
    assert reports["raw_events"]["compacted_partitions"] == 1 and reports["raw_events"]["files_removed"] == 4
    assert [Path(p).name for p in reports["raw_events"]["orphans_deleted"]] == ["stray-old.parquet"]
    after = services(INSPECT, "eventpipe", json.dumps(props), "shop", stream)
    assert after["files"] == 1 and after["rows"] == before["rows"]
    assert after["map"] == before["map"]  # the snapshot chain holding the shard map is kept
    assert not old_orphan.exists() and new_orphan.exists()


@pytest.mark.parametrize("grace", [3599, 60])
def test_orphan_grace_below_the_floor_is_refused_by_the_api_server(custom: client.CustomObjectsApi, grace: int,
                                                                   core: client.CoreV1Api) -> None:
    ensure_namespace(core, NS)
    doc = body({"maintenance": {"orphanGraceSeconds": grace}}, name="maint-grace", namespace=NS)
    doc["metadata"] = {"name": "maint-grace", "namespace": NS}
    with pytest.raises(client.ApiException) as err:
        custom.create_namespaced_custom_object("eventpipe.io", "v1alpha1", NS, "eventpipelines", doc, dry_run="All")
    assert err.value.status == 422 and "orphanGraceSeconds" in err.value.body

