"""Pure builders of the task pods' parts from a DAG definition: env (plain values and secret references),
resources, service account, security. No secret value ever passes through here, only Secret names and keys.
"""

from __future__ import annotations

import json

from kubernetes.client import models as k8s

from eventpipe_dags.definition import PipelineDag

STATE_DIR = "/var/lib/eventpipe"
XCOM_RESULT = "/airflow/xcom/return.json"
RUN_AS_USER = 10001
DEFAULT_RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}


def labels(definition: PipelineDag, step: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "eventpipe", "app.kubernetes.io/instance": definition.pipeline,
            "app.kubernetes.io/component": "transform", "eventpipe.io/pipeline": definition.pipeline,
            "eventpipe.io/step": step.replace("_", "-")}


def service_account(definition: PipelineDag) -> str:
    return definition.pods.service_account or f"{definition.pipeline}-transform"


def plain_env(definition: PipelineDag, snapshot_id: str) -> dict[str, str]:
    """Non-secret values both launchers set: the run's snapshot and the email alert recipients."""
    env = {"EVENTPIPE_SNAPSHOT_ID": snapshot_id}
    recipients = [a.to for a in definition.alerts if a.type == "email" and a.to]
    if recipients:
        env["EVENTPIPE_ALERT_EMAIL_TO"] = json.dumps(recipients)
    return env


def env_vars(definition: PipelineDag, snapshot_id: str, state_host_path: str | None = None) -> list[k8s.V1EnvVar]:
    """Plain values, then secrets as secretKeyRef: the webhook URL of a slack/webhook alert, the job store DSN.
    With a shared host folder, EVENTPIPE_STATE_DIR names it (env wins over the ConfigMap's envFrom)."""
    plain = plain_env(definition, snapshot_id)
    if state_host_path:
        plain["EVENTPIPE_STATE_DIR"] = state_host_path
    out = [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(plain.items())]
    webhook = next((a.url_secret_ref for a in definition.alerts
                    if a.type in ("slack", "webhook") and a.url_secret_ref is not None), None)
    if webhook is not None:
        out.append(_secret_env("EVENTPIPE_ALERT_WEBHOOK_URL", webhook.name, webhook.key))
    dsn = definition.pods.job_store_dsn_secret_ref
    if dsn is not None:
        out.append(_secret_env("EVENTPIPE_JOB_STORE_DSN", dsn.name, dsn.key))
    return out


def _secret_env(name: str, secret: str, key: str) -> k8s.V1EnvVar:
    return k8s.V1EnvVar(name=name, value_from=k8s.V1EnvVarSource(
        secret_key_ref=k8s.V1SecretKeySelector(name=secret, key=key)))


def env_from(definition: PipelineDag) -> list[k8s.V1EnvFromSource]:
    """The pipeline's settings ConfigMap; the catalog Secret's keys as catalog properties; the AWS credentials
    Secret's keys (AWS_ACCESS_KEY_ID, ...) where there is no IRSA — all by reference."""
    sources = [k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name=definition.settings_config_map))]
    if definition.pods.catalog_secret_ref:
        sources.append(k8s.V1EnvFromSource(prefix="EVENTPIPE_CATALOG_PROPERTIES__",
                                           secret_ref=k8s.V1SecretEnvSource(name=definition.pods.catalog_secret_ref)))
    if definition.pods.aws_credentials_secret_ref:
        sources.append(k8s.V1EnvFromSource(
            secret_ref=k8s.V1SecretEnvSource(name=definition.pods.aws_credentials_secret_ref)))
    return sources


def resources(definition: PipelineDag) -> k8s.V1ResourceRequirements:
    spec = definition.pods.resources
    requests = {**DEFAULT_RESOURCES["requests"], **(spec.requests if spec else {})}
    limits = {**DEFAULT_RESOURCES["limits"], **(spec.limits if spec else {})}
    return k8s.V1ResourceRequirements(requests=requests, limits=limits)


def pod_security_context() -> k8s.V1PodSecurityContext:
    return k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=RUN_AS_USER, fs_group=RUN_AS_USER,
                                    seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"))


def container_security_context() -> k8s.V1SecurityContext:
    return k8s.V1SecurityContext(allow_privilege_escalation=False, read_only_root_filesystem=True,
                                 capabilities=k8s.V1Capabilities(drop=["ALL"]))


def volumes(state_host_path: str | None = None) -> list[k8s.V1Volume]:
    """/tmp and the state dir. The state dir is an emptyDir per pod (a cluster pipeline's warehouse is
    Snowflake), or, on a single local node only, one host folder every step's pod shares (the DuckDB target)."""
    state = (k8s.V1Volume(name="state", host_path=k8s.V1HostPathVolumeSource(path=state_host_path, type="Directory"))
             if state_host_path else k8s.V1Volume(name="state", empty_dir=k8s.V1EmptyDirVolumeSource()))
    return [k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()), state]


def state_dir(state_host_path: str | None = None) -> str:
    """Where the pods' state dir is mounted: a shared host folder at its own path (the catalog on SQLite names
    absolute file paths, which then mean the same in every pod and on the host), else STATE_DIR."""
    return state_host_path or STATE_DIR


def volume_mounts(state_host_path: str | None = None) -> list[k8s.V1VolumeMount]:
    return [k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
            k8s.V1VolumeMount(name="state", mount_path=state_dir(state_host_path))]


def container_command(argv: list[str], verdict: bool) -> tuple[list[str], list[str]]:
    """(cmds, arguments) of the container. A GX step writes its exit code for the XCom sidecar and exits 0 on
    a verdict (0 passed, 1 critical failure) so only errors (exit 2) fail the pod and are retried."""
    if not verdict:
        return ["python"], list(argv)
    script = ('python "$@"; code=$?; mkdir -p /airflow/xcom; '
              f'printf \'{{"exit_code": %d}}\' "$code" > {XCOM_RESULT}; [ "$code" -le 1 ]')
    return ["/bin/sh", "-c"], [script, "eventpipe-step", *argv]
