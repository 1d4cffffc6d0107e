"""The DAG's operators. The analytics steps have two launchers over one command (commands.step_command):
a subprocess in the analytics venv (local) or a KubernetesPodOperator pod of the analytics image (cluster).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.utils import xcom_sidecar
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from kubernetes.client import models as k8s

from eventpipe_dags import pods, runlog, snapshots
from eventpipe_dags.callbacks import RESOLVE_TASK
from eventpipe_dags.commands import RunParams, gx_verdict, step_command
from eventpipe_dags.definition import PipelineDag
from eventpipe_dags.triggers import NewSnapshotTrigger


def _snapshot(context: Mapping[str, Any]) -> str:
    value = context["ti"].xcom_pull(task_ids=RESOLVE_TASK)
    return str(value["snapshot_id"]) if isinstance(value, Mapping) else ""


class ResolveSnapshotOperator(BaseOperator):
    """Which snapshot this run processes: the requested one, or the next new one (deferring until it exists)."""

    def __init__(self, *, definition: PipelineDag, poll_interval: float, wait_timeout: float,
                 wait_for_new: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.definition = definition
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.wait_for_new = wait_for_new

    def execute(self, context: Any) -> dict[str, Any]:
        params = RunParams.from_mapping(context["params"])
        name, properties = snapshots.catalog_properties()
        current, known = snapshots.table_snapshots(name, properties, self.definition.tables.raw_events)
        processed = snapshots.read_processed(self.definition.pipeline)
        decision = snapshots.decide(current, processed, params.snapshot_id, params.force, known)
        self.log.info("snapshot decision: %s (%s); current=%s processed=%s", decision.action, decision.reason,
                      current, processed)
        if decision.action == "skip":
            raise AirflowSkipException(f"snapshot {decision.snapshot_id}: {decision.reason}")
        if decision.action == "wait" and not self.wait_for_new:
            raise AirflowSkipException(f"scheduled run: {decision.reason}")
        if decision.action == "wait":
            self.defer(trigger=NewSnapshotTrigger(self.definition.tables.raw_events, processed, self.poll_interval),
                       method_name="execute_complete", timeout=timedelta(seconds=self.wait_timeout))
        return {"snapshot_id": decision.snapshot_id, "reason": decision.reason}

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        self.log.info("new snapshot %s", event["snapshot_id"])
        return {"snapshot_id": event["snapshot_id"], "reason": event.get("reason", "new snapshot")}


class LocalAnalyticsOperator(BaseOperator):
    """Runs one analytics step as a subprocess of the analytics venv; output goes to the task log."""

    def __init__(self, *, definition: PipelineDag, step: str, python: Path, verdict: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.definition = definition
        self.step = step
        self.python = python
        self.verdict = verdict

    def execute(self, context: Any) -> dict[str, Any] | None:
        argv = [str(self.python), *step_command(self.step, self.definition, RunParams.from_mapping(context["params"]))]
        env = {**os.environ, **pods.plain_env(self.definition, _snapshot(context))}
        self.log.info("running %s", " ".join(argv))
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            self.log.info("%s", line.rstrip())
        code = proc.wait()
        self.log.info("%s exited with %d after %.1fs", self.step, code, time.monotonic() - started)
        if self.verdict:
            return {"step": self.step, "exit_code": code, "passed": gx_verdict(code)}
        if code != 0:
            raise RuntimeError(f"{self.step} failed with exit code {code}")
        return None


class AnalyticsPodOperator(KubernetesPodOperator):
    """The same step as a pod: the analytics image, the pipeline's settings ConfigMap, service account and
    resources, secrets only as references. A GX step reports its exit code through the XCom sidecar."""

    def __init__(self, *, definition: PipelineDag, step: str, image: str, verdict: bool,
                 state_host_path: str | None = None, **kwargs: Any) -> None:
        spec = definition.pods
        task_image = spec.image or image
        super().__init__(
            namespace=definition.k8s_namespace,
            image=task_image,
            image_pull_policy=spec.image_pull_policy,
            name=f"{definition.pipeline}-{step.replace('_', '-')}",
            labels=pods.labels(definition, step),
            service_account_name=pods.service_account(definition),
            env_from=pods.env_from(definition),
            container_resources=pods.resources(definition),
            security_context=pods.pod_security_context(),
            container_security_context=pods.container_security_context(),
            volumes=pods.volumes(state_host_path),
            volume_mounts=pods.volume_mounts(state_host_path),
            do_xcom_push=verdict,
            xcom_sidecar_container_security_context=pods.container_security_context(),
            get_logs=True,
            on_finish_action="delete_succeeded_pod",
            **kwargs,
        )
        self.definition = definition
        self.step = step
        self.verdict = verdict
        self.state_host_path = state_host_path

    def prepare(self, params: Mapping[str, Any], snapshot_id: str) -> None:
        """Command and env of this run (its params and snapshot decide them); called by execute and by tests."""
        argv = step_command(self.step, self.definition, RunParams.from_mapping(params))
        self.cmds, self.arguments = pods.container_command(argv, self.verdict)
        self.env_vars = pods.env_vars(self.definition, snapshot_id, self.state_host_path)

    def build_pod_request_obj(self, context: Any = None, *, dry_run: bool = False) -> k8s.V1Pod:
        """The provider's pod, with the XCom sidecar on the task's own image (it only needs a shell, and the
        image is already on the node) instead of the provider's default `alpine` from Docker Hub, which an
        air-gapped node cannot pull (the provider takes another sidecar image only from its connection)."""
        pod = super().build_pod_request_obj(context, dry_run=dry_run)
        for container in pod.spec.containers:
            if container.name == xcom_sidecar.PodDefaults.SIDECAR_CONTAINER_NAME:
                container.image = self.image
                container.image_pull_policy = self.image_pull_policy
        return pod

    def execute(self, context: Any) -> Any:
        self.prepare(context["params"], _snapshot(context))
        result = super().execute(context)
        if self.verdict:
            code = int(result["exit_code"]) if isinstance(result, Mapping) else 2
            return {"step": self.step, "exit_code": code, "passed": gx_verdict(code)}
        return result


class PublishResultsOperator(BaseOperator):
    """Collects the GX verdicts, records them, and fails the run on a critical failure (after the quality
    step has sent its alerts): Airflow never retries a data problem."""

    def __init__(self, *, definition: PipelineDag, gx_tasks: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.definition = definition
        self.gx_tasks = gx_tasks

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        verdicts = {task: ti.xcom_pull(task_ids=task) for task in self.gx_tasks}
        failed = [task for task, v in verdicts.items() if not (isinstance(v, Mapping) and v.get("passed"))]
        record = {"event": "quality", "pipeline": self.definition.pipeline, "run_id": context["run_id"],
                  "snapshot_id": _snapshot(context), "verdicts": verdicts, "critical_failures": failed}
        runlog.append(record)
        self.log.info("quality results: %s", json.dumps(record, default=str))
        if failed:
            raise AirflowFailException(f"critical quality failures in {', '.join(failed)} on snapshot "
                                       f"{record['snapshot_id']}; alerts were sent by the quality step")
        return record


class MarkProcessedOperator(BaseOperator):
    """Records the snapshot as processed (Property 19): the next run waits for a newer one."""

    def __init__(self, *, definition: PipelineDag, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.definition = definition

    def execute(self, context: Any) -> dict[str, Any]:
        snapshot = _snapshot(context)
        name, properties = snapshots.catalog_properties()
        _, order = snapshots.snapshot_history(name, properties, self.definition.tables.raw_events)
        previous = snapshots.read_processed(self.definition.pipeline)
        marker = snapshots.next_marker(previous, snapshot, order)
        snapshots.write_processed(self.definition.pipeline, marker)
        record = {"event": "run_succeeded", "pipeline": self.definition.pipeline, "run_id": context["run_id"],
                  "snapshot_id": snapshot, "processed_marker": marker}
        runlog.append(record)
        state_dir = os.environ.get("EVENTPIPE_STATE_DIR")
        if state_dir:
            rejected, _ = snapshots.snapshot_history(name, properties, self.definition.tables.rejected)
            _write_transform_record(Path(state_dir), f"{snapshot}:{rejected or '-'}")
        return record


def _write_transform_record(state_dir: Path, snapshot: str) -> None:
    """The record `eventpipe status` / `wait --modelled` read, as the light transform loop writes it (`snapshot`
    is the CLI's fingerprint: raw_events and raw_events_rejected snapshot ids)."""
    path = state_dir / "transform.json"
    previous: dict[str, Any] = {}
    if path.exists():
        try:
            previous = json.loads(path.read_text())
        except json.JSONDecodeError:
            previous = {}
    now = time.time()
    record = {"snapshot": snapshot, "started_at": now, "finished_at": now, "ok": True, "dbt_ok": True,
              "quality_ok": True, "steps": [], "runs": int(previous.get("runs", 0)) + 1, "orchestrator": "airflow"}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)
