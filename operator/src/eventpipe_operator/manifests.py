"""Pure builders: one EventPipeline -> the Kubernetes objects that run it.

Nothing here talks to the API server; handlers call `build_children` and apply the result with server-side
apply, so the whole desired state of a pipeline is visible (and unit-tested) as plain dicts. Secrets only
appear as references (secretKeyRef, a Secret volume, envFrom a Secret): never as values.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from .spec import Pipeline, PodSpec, Resources

INGEST_PORT = 8000
STATE_DIR = "/var/lib/eventpipe"
SCHEMA_DIR = "/etc/eventpipe/schema"
AUTH_DIR = "/etc/eventpipe/auth"
CONFIG_HASH_ANNOTATION = "eventpipe.io/config-hash"
PIPELINE_LABEL = "eventpipe.io/pipeline"
MANAGED_BY = "eventpipe-operator"
RUN_AS_USER = 10001
# eventpipe_ingest's /api/v1/ready waits 5 s for the stream and 5 s for the job store, one after the other.
READY_WAIT_SECONDS = 10

DEFAULT_RESOURCES = {
    "ingest": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
    "consumer": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
    # The DAG's dbt and GX pods (dag.json pods.resources): dbt on DuckDB holds a model's rows in memory.
    "transform": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
}


@dataclass(frozen=True)
class BuildOptions:
    """What the builders need besides the pipeline itself."""

    image: str
    consumer_replicas: int
    analytics_image: str
    monitoring_crds: bool = False


def labels(pipeline: Pipeline, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "eventpipe",
        "app.kubernetes.io/instance": pipeline.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        PIPELINE_LABEL: pipeline.name,
    }


def selector(pipeline: Pipeline, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": pipeline.name, "app.kubernetes.io/component": component}


def _meta(pipeline: Pipeline, name: str, component: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": pipeline.namespace,
        "labels": labels(pipeline, component),
        "ownerReferences": [pipeline.owner_reference()],
    }
    meta.update(extra)
    return meta


def child_name(pipeline: Pipeline, part: str) -> str:
    return f"{pipeline.name}-{part}"


def image_of(pipeline: Pipeline, default: str) -> str:
    image = pipeline.spec.image
    if image.repository is None and image.tag is None:
        return default
    repository, _, default_tag = default.rpartition(":")
    return f"{image.repository or repository}:{image.tag or default_tag}"


def lease_table(pipeline: Pipeline) -> str:
    """The consumers' lease table of this pipeline alone: two pipelines never share lease rows, even when
    they share one job-store database. A SQL identifier (<= 63 characters, PostgreSQL's limit) and a valid
    DynamoDB table name; a hash keeps long namespace/name pairs unique when they are cut."""
    raw = f"{pipeline.namespace}_{pipeline.name}"
    clean = re.sub(r"[^a-z0-9_]", "_", raw.lower())
    name = f"eventpipe_leases_{clean}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(raw.encode()).hexdigest()[:10]
    return f"{name[:52]}_{digest}"


def compiled_schema(pipeline: Pipeline) -> str | None:
    """The schema as canonical JSON (sorted keys): what the services load with eventpipe_core.Schema."""
    if pipeline.spec.schema_ is None:
        return None
    return json.dumps(pipeline.spec.schema_, sort_keys=True, separators=(",", ":"))


def settings_env(pipeline: Pipeline) -> dict[str, str]:
    """The EVENTPIPE_* settings (eventpipe_common.settings.PipelineSettings and the services' own fields)."""
    spec = pipeline.spec
    env = {
        "EVENTPIPE_PIPELINE_NAME": pipeline.name,
        "EVENTPIPE_LOG_LEVEL": spec.log_level,
        "EVENTPIPE_STATE_DIR": STATE_DIR,
        "EVENTPIPE_STREAM_NAME": pipeline.stream_name,
        "EVENTPIPE_AWS_REGION": spec.aws.region,
        "EVENTPIPE_NAMESPACE": spec.iceberg.namespace,
        "EVENTPIPE_CATALOG_NAME": spec.iceberg.catalog_name,
        "EVENTPIPE_CATALOG_PROPERTIES": json.dumps(spec.iceberg.catalog_properties, sort_keys=True),
        "EVENTPIPE_INGEST_HOST": "0.0.0.0",
        "EVENTPIPE_INGEST_PORT": str(INGEST_PORT),
        # Metrics on a port of their own: the API port (public, behind the Service) has none unauthenticated.
        "EVENTPIPE_INGEST_METRICS_HOST": "0.0.0.0",
        "EVENTPIPE_INGEST_METRICS_PORT": str(spec.ingest.metrics_port),
        "EVENTPIPE_CONSUMER_COMMIT_MAX_RECORDS": str(spec.consumer.batch_size),
        "EVENTPIPE_CONSUMER_COMMIT_INTERVAL_SECONDS": str(spec.consumer.commit_interval_seconds),
        "EVENTPIPE_CONSUMER_METRICS_HOST": "0.0.0.0",
        "EVENTPIPE_CONSUMER_METRICS_PORT": str(spec.consumer.metrics_port),
        "EVENTPIPE_CONSUMER_LEASE_STORE": spec.consumer.lease_store,
        "EVENTPIPE_CONSUMER_LEASE_TABLE": lease_table(pipeline),
        "EVENTPIPE_MAINTENANCE_SNAPSHOT_RETENTION_SECONDS": str(spec.maintenance.snapshot_retention_seconds),
        "EVENTPIPE_MAINTENANCE_ORPHAN_GRACE_SECONDS": str(spec.maintenance.orphan_grace_seconds),
    }
    if spec.aws.kinesis_endpoint_url:
        env["EVENTPIPE_KINESIS_ENDPOINT_URL"] = spec.aws.kinesis_endpoint_url
    if spec.schema_ is not None:
        env["EVENTPIPE_SCHEMA_PATH"] = f"{SCHEMA_DIR}/schema.json"
    if spec.ingest.auth is not None:
        env["EVENTPIPE_INGEST_API_KEYS_FILE"] = f"{AUTH_DIR}/{spec.ingest.auth.key}"
    return env


def config_map(pipeline: Pipeline) -> dict[str, Any]:
    data = settings_env(pipeline)
    schema = compiled_schema(pipeline)
    if schema is not None:
        data["schema.json"] = schema
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(pipeline, child_name(pipeline, "config"), "config"),
        "data": data,
    }


def config_hash(pipeline: Pipeline) -> str:
    """Changes whenever what the pods read changes (settings, schema, secret references): rolls the pods."""
    spec = pipeline.spec
    material = {
        "config": config_map(pipeline)["data"],
        "secrets": [spec.job_store.model_dump(mode="json"), spec.iceberg.catalog_secret_ref and
                    spec.iceberg.catalog_secret_ref.name, spec.ingest.auth and spec.ingest.auth.model_dump()],
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def _resources(component: str, override: Resources | None) -> dict[str, Any]:
    """The operator's defaults of a component with the spec's values on top (quantities as strings)."""
    base = DEFAULT_RESOURCES[component]
    if override is None:
        return {kind: dict(values) for kind, values in base.items()}
    return {
        "requests": {**base["requests"], **{k: str(v) for k, v in override.requests.items()}},
        "limits": {**base["limits"], **{k: str(v) for k, v in override.limits.items()}},
    }


def _env(pipeline: Pipeline, component: str) -> list[dict[str, Any]]:
    """Settings by reference to the ConfigMap, secrets by reference to their Secrets."""
    cm = child_name(pipeline, "config")
    env: list[dict[str, Any]] = [
        {"name": key, "valueFrom": {"configMapKeyRef": {"name": cm, "key": key}}}
        for key in sorted(settings_env(pipeline))
    ]
    dsn = pipeline.spec.job_store.dsn_secret_ref
    if dsn is not None:
        ref = {"secretKeyRef": {"name": dsn.name, "key": dsn.key}}
        env.append({"name": "EVENTPIPE_JOB_STORE_DSN", "valueFrom": ref})
        if component == "consumer" and pipeline.spec.consumer.lease_store == "sql":
            env.append({"name": "EVENTPIPE_CONSUMER_LEASE_DSN", "valueFrom": ref})
    return env


def _security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _volumes(pipeline: Pipeline, component: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Writable scratch space (the root filesystem is read-only), the schema file and, for ingest, API keys."""
    # mode shared keeps no state in the pod (the checks refuse a spec without shared stores); mode dev keeps
    # its SQLite catalog, job store and leases on the pipeline's one PersistentVolumeClaim.
    state: dict[str, Any] = ({"persistentVolumeClaim": {"claimName": child_name(pipeline, "state")}}
                             if pipeline.spec.mode == "dev" else {"emptyDir": {}})
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "state", **state},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "state", "mountPath": STATE_DIR},
    ]
    if pipeline.spec.schema_ is not None:
        volumes.append({"name": "schema", "configMap": {
            "name": child_name(pipeline, "config"), "items": [{"key": "schema.json", "path": "schema.json"}]}})
        mounts.append({"name": "schema", "mountPath": SCHEMA_DIR, "readOnly": True})
    auth = pipeline.spec.ingest.auth
    if component == "ingest" and auth is not None:
        volumes.append({"name": "auth", "secret": {
            "secretName": auth.secret_name, "items": [{"key": auth.key, "path": auth.key}], "defaultMode": 0o440}})
        mounts.append({"name": "auth", "mountPath": AUTH_DIR, "readOnly": True})
    return volumes, mounts


def _pod_custom(pipeline: Pipeline, component: str) -> PodSpec:
    """Maintenance pods run as consumers (same role, same scheduling)."""
    return pipeline.spec.ingest.pod if component == "ingest" else pipeline.spec.consumer.pod


def _pod_template(pipeline: Pipeline, component: str, container: dict[str, Any], opts: BuildOptions,
                  grace_seconds: int, account: str) -> dict[str, Any]:
    """The pod template of a component: the operator's settings first, the spec's customisation added."""
    volumes, mounts = _volumes(pipeline, component)
    env_from: list[dict[str, Any]] = []
    if pipeline.spec.iceberg.catalog_secret_ref is not None:
        # Every key of that Secret becomes one catalog property (pydantic-settings nested delimiter "__").
        env_from.append({"prefix": "EVENTPIPE_CATALOG_PROPERTIES__",
                         "secretRef": {"name": pipeline.spec.iceberg.catalog_secret_ref.name}})
    if pipeline.spec.aws.credentials_secret_ref is not None:
        env_from.append({"secretRef": {"name": pipeline.spec.aws.credentials_secret_ref.name}})
    resources = pipeline.spec.ingest.resources if component == "ingest" else pipeline.spec.consumer.resources
    full_container = {
        "name": component,
        "image": image_of(pipeline, opts.image),
        "imagePullPolicy": pipeline.spec.image.pull_policy,
        "env": _env(pipeline, component),
        "resources": _resources("ingest" if component == "ingest" else "consumer", resources),
        "securityContext": _security_context(),
        "volumeMounts": mounts,
        **container,
    }
    if env_from:
        full_container["envFrom"] = env_from
    custom = _pod_custom(pipeline, component)
    pod_labels = {**custom.labels, **labels(pipeline, component)}  # the operator's labels win (selectors)
    annotations = {**custom.annotations, CONFIG_HASH_ANNOTATION: config_hash(pipeline)}
    spec: dict[str, Any] = {
        "serviceAccountName": account,
        "automountServiceAccountToken": False,
        "securityContext": _pod_security_context(),
        "terminationGracePeriodSeconds": grace_seconds,
        "containers": [full_container],
        "volumes": volumes,
    }
    if custom.node_selector:
        spec["nodeSelector"] = dict(custom.node_selector)
    if custom.priority_class_name:
        spec["priorityClassName"] = custom.priority_class_name
    if custom.tolerations:
        spec["tolerations"] = [dict(t) for t in custom.tolerations]
    if custom.topology_spread_constraints:
        spec["topologySpreadConstraints"] = [dict(t) for t in custom.topology_spread_constraints]
    affinity = dict(custom.affinity or {})
    if pipeline.spec.mode == "dev" and component != "ingest":
        # The dev claim is ReadWriteOnce: the consumer and maintenance pods must share the ingest pod's node.
        pod_affinity = dict(affinity.get("podAffinity") or {})
        required = list(pod_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        required.append({"labelSelector": {"matchLabels": selector(pipeline, "ingest")},
                         "topologyKey": "kubernetes.io/hostname"})
        pod_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = required
        affinity["podAffinity"] = pod_affinity
    if affinity:
        spec["affinity"] = affinity
    return {"metadata": {"labels": pod_labels, "annotations": annotations}, "spec": spec}


def _deployment(pipeline: Pipeline, component: str, replicas: int, container: dict[str, Any],
                opts: BuildOptions, grace_seconds: int) -> dict[str, Any]:
    # mode dev: never two pods on the one claim at once (no surge); mode shared: roll without losing capacity.
    strategy: dict[str, Any] = ({"type": "Recreate"} if pipeline.spec.mode == "dev" else
                                {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(pipeline, child_name(pipeline, component), component),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector(pipeline, component)},
            "strategy": strategy,
            "template": _pod_template(pipeline, component, container, opts, grace_seconds,
                                      child_name(pipeline, component)),
        },
    }


def ingest_deployment(pipeline: Pipeline, opts: BuildOptions) -> dict[str, Any]:
    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "timeoutSeconds": 2,
                "failureThreshold": failures}

    container = {
        "command": ["python", "-m", "eventpipe_ingest"],
        "ports": [{"name": "http", "containerPort": INGEST_PORT, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": pipeline.spec.ingest.metrics_port, "protocol": "TCP"}],
        "startupProbe": probe("/api/v1/health", 2, 30),
        "livenessProbe": probe("/api/v1/health", 10, 3),
        # /ready waits up to READY_WAIT_SECONDS (the stream, then the job store): time out only after that.
        "readinessProbe": {**probe("/api/v1/ready", 15, 3), "timeoutSeconds": READY_WAIT_SECONDS + 2},
    }
    return _deployment(pipeline, "ingest", pipeline.spec.ingest.replicas, container, opts, grace_seconds=30)


def consumer_deployment(pipeline: Pipeline, opts: BuildOptions) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/metrics", "port": "metrics"}, "periodSeconds": 10, "timeoutSeconds": 2,
             "failureThreshold": 3}
    container = {
        "command": ["python", "-m", "eventpipe_consumer", "run"],
        "ports": [{"name": "metrics", "containerPort": pipeline.spec.consumer.metrics_port, "protocol": "TCP"}],
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 30},
        "livenessProbe": {**probe, "httpGet": {"path": "/healthz", "port": "metrics"}},
        # Not ready while a shard is stopped by a failure that is not content (eventpipe_consumer.metrics).
        "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "metrics"}},
    }
    # A consumer finishes its in-flight batch and commits on SIGTERM: give it time to.
    return _deployment(pipeline, "consumer", opts.consumer_replicas, container, opts, grace_seconds=90)


def service_accounts(pipeline: Pipeline) -> list[dict[str, Any]]:
    """One ServiceAccount per component, each with its own IAM role (IRSA): ingest only writes the stream.
    `<name>-transform` runs the DAG's dbt and GX pods (dag.json pods.serviceAccount), only while there is a DAG."""
    aws = pipeline.spec.aws
    roles = {"ingest": aws.ingest_role_arn, "consumer": aws.consumer_role_arn}
    if pipeline.spec.transform.enabled:
        roles["transform"] = aws.transform_role_arn
    accounts = []
    for component, role in roles.items():
        extra = {"annotations": {"eks.amazonaws.com/role-arn": role}} if role else {}
        accounts.append({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(pipeline, child_name(pipeline, component), component, **extra),
            "automountServiceAccountToken": False,
        })
    return accounts


def state_claim(pipeline: Pipeline) -> dict[str, Any]:
    """mode dev: the one claim holding the SQLite catalog, warehouse, job store and leases."""
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": pipeline.spec.dev.storage_size}}}
    if pipeline.spec.dev.storage_class_name:
        spec["storageClassName"] = pipeline.spec.dev.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(pipeline, child_name(pipeline, "state"), "state"),
        "spec": spec,
    }


def maintenance_command(pipeline: Pipeline) -> list[str]:
    """What the CronJob runs: the consumer's table maintenance on both tables (compact, expire, orphans).
    Expiry keeps the snapshots holding the consumers' shard map; the grace period comes from the ConfigMap."""
    return ["python", "-m", "eventpipe_consumer", "maintenance",
            "--quiet-seconds", str(pipeline.spec.maintenance.quiet_seconds)]


def maintenance_cronjob(pipeline: Pipeline, opts: BuildOptions) -> dict[str, Any]:
    container = {"command": maintenance_command(pipeline)}
    template = _pod_template(pipeline, "maintenance", container, opts, grace_seconds=300,
                             account=child_name(pipeline, "consumer"))
    template["spec"]["restartPolicy"] = "OnFailure"
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _meta(pipeline, child_name(pipeline, "maintenance"), "maintenance"),
        "spec": {
            "schedule": pipeline.spec.maintenance.schedule,
            "timeZone": "Etc/UTC",
            # Two runs at once would fight over the same commits: the second waits for the next slot.
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {"backoffLimit": 2, "template": template}},
        },
    }


def ingest_service(pipeline: Pipeline) -> dict[str, Any]:
    meta = _meta(pipeline, child_name(pipeline, "ingest"), "ingest")
    meta["labels"]["eventpipe.io/metrics"] = "true"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": selector(pipeline, "ingest"),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                      {"name": "metrics", "port": pipeline.spec.ingest.metrics_port, "targetPort": "metrics",
                       "protocol": "TCP"}],
        },
    }


def consumer_metrics_service(pipeline: Pipeline) -> dict[str, Any]:
    """Headless: Prometheus (and the operator's lag reader) address each consumer pod."""
    meta = _meta(pipeline, child_name(pipeline, "consumer"), "consumer")
    meta["labels"]["eventpipe.io/metrics"] = "true"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "clusterIP": "None",
            "selector": selector(pipeline, "consumer"),
            "ports": [{"name": "metrics", "port": pipeline.spec.consumer.metrics_port,
                       "targetPort": "metrics", "protocol": "TCP"}],
        },
    }


def ingest_pdb(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(pipeline, child_name(pipeline, "ingest"), "ingest"),
        "spec": {"maxUnavailable": pipeline.spec.ingest.max_unavailable,
                 "selector": {"matchLabels": selector(pipeline, "ingest")}},
    }


def network_policies(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Only the ports each component serves are reachable; egress stays open (AWS endpoints, catalogs)."""
    def policy(component: str, *ports: int) -> dict[str, Any]:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(pipeline, child_name(pipeline, component), component),
            "spec": {
                "podSelector": {"matchLabels": selector(pipeline, component)},
                "policyTypes": ["Ingress"],
                "ingress": [{"ports": [{"protocol": "TCP", "port": port} for port in ports]}],
            },
        }

    return [policy("ingest", INGEST_PORT, pipeline.spec.ingest.metrics_port),
            policy("consumer", pipeline.spec.consumer.metrics_port)]


def dag_pods(pipeline: Pipeline, analytics_image: str) -> dict[str, Any]:
    """The DAG's task pods (dag.json `pods`): the analytics image, the `<name>-transform` account, resources and
    the Secrets the pods read — by name (and key) only; the pipeline's settings come from `settingsConfigMap`."""
    spec = pipeline.spec
    dsn = spec.job_store.dsn_secret_ref
    return {
        "image": analytics_image,
        "imagePullPolicy": spec.image.pull_policy,
        "serviceAccount": child_name(pipeline, "transform"),
        "resources": _resources("transform", spec.transform.resources),
        "catalogSecretRef": spec.iceberg.catalog_secret_ref.name if spec.iceberg.catalog_secret_ref else None,
        "jobStoreDsnSecretRef": {"name": dsn.name, "key": dsn.key} if dsn else None,
        "awsCredentialsSecretRef": (spec.aws.credentials_secret_ref.name
                                    if spec.aws.credentials_secret_ref else None),
    }


def dag_definition(pipeline: Pipeline, analytics_image: str) -> dict[str, Any]:
    """What the dags/ factory reads to build this pipeline's Airflow DAG (shape documented in operator/README)."""
    spec = pipeline.spec
    ns = spec.iceberg.namespace
    return {
        "apiVersion": "eventpipe.io/v1alpha1",
        "kind": "PipelineDag",
        "pipeline": pipeline.name,
        "k8sNamespace": pipeline.namespace,
        "enabled": spec.transform.enabled,
        "trigger": spec.transform.trigger,
        "schedule": spec.transform.schedule if spec.transform.trigger == "schedule" else None,
        "settingsConfigMap": child_name(pipeline, "config"),
        "catalog": {"name": spec.iceberg.catalog_name, "namespace": ns},
        "tables": {"rawEvents": f"{ns}.raw_events", "rejected": f"{ns}.raw_events_rejected"},
        "dbt": {"target": spec.transform.dbt.target, "select": list(spec.transform.dbt.select)},
        "gx": {"suites": list(spec.transform.gx.suites)},
        "alerts": [alert.model_dump(mode="json", by_alias=True, exclude_none=True)
                   for alert in spec.transform.alerts],
        "pods": dag_pods(pipeline, analytics_image),
    }


def dag_config_map(pipeline: Pipeline, analytics_image: str) -> dict[str, Any]:
    meta = _meta(pipeline, child_name(pipeline, "dag"), "dag")
    meta["labels"]["eventpipe.io/dag"] = "true"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {"dag.json": json.dumps(dag_definition(pipeline, analytics_image), indent=2, sort_keys=True)},
    }


def _monitoring_meta(pipeline: Pipeline, name: str) -> dict[str, Any]:
    meta = _meta(pipeline, name, "monitoring")
    meta["labels"] = {**pipeline.spec.monitoring.labels, **meta["labels"]}  # e.g. release: kube-prometheus-stack
    return meta


def _endpoint(pipeline: Pipeline, port: str, path: str) -> dict[str, Any]:
    mon = pipeline.spec.monitoring
    return {"port": port, "path": path, "interval": mon.scrape_interval, "scrapeTimeout": mon.scrape_timeout}


def service_monitor(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _monitoring_meta(pipeline, pipeline.name),
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/instance": pipeline.name, "eventpipe.io/metrics": "true"}},
            "namespaceSelector": {"matchNames": [pipeline.namespace]},
            # Ingest and consumer Services both name their metrics port "metrics".
            "endpoints": [_endpoint(pipeline, "metrics", "/metrics")],
        },
    }


def pod_monitor(pipeline: Pipeline) -> dict[str, Any]:
    """The pods scraped directly (e.g. where Services are not scraped); same endpoints as the ServiceMonitor."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _monitoring_meta(pipeline, pipeline.name),
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/instance": pipeline.name}},
            "namespaceSelector": {"matchNames": [pipeline.namespace]},
            "podMetricsEndpoints": [_endpoint(pipeline, "metrics", "/metrics")],
        },
    }


LAG_METRIC = "eventpipe_consumer_lag_seconds"
RUNBOOKS = "https://github.com/eventpipe/eventpipe/blob/main/docs/runbooks.md"


def prometheus_rule(pipeline: Pipeline) -> dict[str, Any]:
    ns, name = pipeline.namespace, pipeline.name
    lag_seconds = pipeline.spec.monitoring.lag_alert_seconds
    labels_sel = f'namespace="{ns}", service="{child_name(pipeline, "consumer")}"'
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _monitoring_meta(pipeline, name),
        "spec": {"groups": [{
            "name": f"eventpipe-{name}",
            "rules": [
                {"alert": "EventPipelineLagAboveSpec",
                 "expr": f"max({LAG_METRIC}{{{labels_sel}}}) > {lag_seconds}",
                 "for": "10m", "labels": {"severity": "warning", "pipeline": name},
                 "annotations": {
                     "summary": f"Pipeline {name}: consumers are more than {lag_seconds}s behind the stream",
                     "description": f"The worst shard of {ns}/{name} has been above the pipeline's "
                                    f"spec.monitoring.lagAlertSeconds ({lag_seconds}s) for 10 minutes.",
                     "runbook_url": f"{RUNBOOKS}#eventpipelinelagabovespec"}},
                {"alert": "EventPipelineIngestDown",
                 "expr": f'absent(up{{namespace="{ns}", service="{child_name(pipeline, "ingest")}"}} == 1)',
                 "for": "5m", "labels": {"severity": "critical", "pipeline": name},
                 "annotations": {
                     "summary": f"Pipeline {name}: no ingest pod is up",
                     "description": f"Prometheus has scraped no ingest pod of {ns}/{name} for 5 minutes: "
                                    "clients get connection errors.",
                     "runbook_url": f"{RUNBOOKS}#eventpipelineingestdown"}},
            ],
        }]},
    }


def build_children(pipeline: Pipeline, opts: BuildOptions) -> list[dict[str, Any]]:
    """Every object the operator keeps for one pipeline, in apply order (config before the pods that read it)."""
    children = [
        config_map(pipeline),
        *([state_claim(pipeline)] if pipeline.spec.mode == "dev" else []),
        *service_accounts(pipeline),
        ingest_service(pipeline),
        consumer_metrics_service(pipeline),
        ingest_pdb(pipeline),
        ingest_deployment(pipeline, opts),
        consumer_deployment(pipeline, opts),
    ]
    if pipeline.spec.network_policy.enabled:
        children.extend(network_policies(pipeline))
    if pipeline.spec.maintenance.enabled:
        children.append(maintenance_cronjob(pipeline, opts))
    if pipeline.spec.transform.enabled:
        children.append(dag_config_map(pipeline, opts.analytics_image))
    if opts.monitoring_crds and pipeline.spec.monitoring.service_monitor:
        children.append(service_monitor(pipeline))
    if opts.monitoring_crds and pipeline.spec.monitoring.pod_monitor:
        children.append(pod_monitor(pipeline))
    if opts.monitoring_crds and pipeline.spec.monitoring.prometheus_rule:
        children.append(prometheus_rule(pipeline))
    return children


def child_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    """(apiVersion, kind, name): how stale children are recognised."""
    return obj["apiVersion"], obj["kind"], obj["metadata"]["name"]
