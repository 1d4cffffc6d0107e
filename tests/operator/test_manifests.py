"""The pure builders: every child of the example pipeline, its references, security and rollout behaviour."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from eventpipe_operator import manifests
from eventpipe_operator.spec import Pipeline
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.op_helpers import body, shop_schema

ANALYTICS = "ghcr.io/eventpipe/analytics:1.2.3"
OPTS = manifests.BuildOptions(image="ghcr.io/eventpipe/services:1.2.3", consumer_replicas=2,
                              analytics_image=ANALYTICS)


def _by_kind(children: list[dict]) -> dict[tuple[str, str], dict]:
    return {(c["kind"], c["metadata"]["name"]): c for c in children}


def test_example_builds_every_child_with_owner_references() -> None:
    pipeline = Pipeline.from_body(body())
    children = manifests.build_children(pipeline, OPTS)
    kinds = sorted(_by_kind(children))
    assert kinds == sorted([
        ("ConfigMap", "shop-config"), ("ConfigMap", "shop-dag"), ("ServiceAccount", "shop-ingest"),
        ("ServiceAccount", "shop-consumer"), ("ServiceAccount", "shop-transform"), ("Service", "shop-ingest"),
        ("Service", "shop-consumer"),
        ("PodDisruptionBudget", "shop-ingest"), ("Deployment", "shop-ingest"), ("Deployment", "shop-consumer"),
        ("NetworkPolicy", "shop-ingest"), ("NetworkPolicy", "shop-consumer"), ("CronJob", "shop-maintenance"),
    ])
    for child in children:
        meta = child["metadata"]
        assert meta["namespace"] == "shop"
        assert meta["ownerReferences"] == [{
            "apiVersion": "eventpipe.io/v1alpha1", "kind": "EventPipeline", "name": "shop",
            "uid": pipeline.uid, "controller": True, "blockOwnerDeletion": True}]
        assert meta["labels"]["eventpipe.io/pipeline"] == "shop"


def test_monitoring_children_only_when_the_crds_exist() -> None:
    pipeline = Pipeline.from_body(body())
    with_crds = manifests.BuildOptions(image=OPTS.image, consumer_replicas=1, analytics_image=ANALYTICS,
                                       monitoring_crds=True)
    kinds = {c["kind"] for c in manifests.build_children(pipeline, with_crds)}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds and "PodMonitor" not in kinds
    off = Pipeline.from_body(body({"monitoring": {"serviceMonitor": False, "prometheusRule": False}}))
    assert not {"ServiceMonitor", "PrometheusRule"} & {c["kind"] for c in manifests.build_children(off, with_crds)}
    pods = Pipeline.from_body(body({"monitoring": {"podMonitor": True, "labels": {"release": "kps"},
                                                   "scrapeInterval": "15s", "scrapeTimeout": "5s"}}))
    objs = {c["kind"]: c for c in manifests.build_children(pods, with_crds)}
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        assert objs[kind]["metadata"]["labels"]["release"] == "kps"  # what kube-prometheus-stack selects on
        assert objs[kind]["metadata"]["labels"]["eventpipe.io/pipeline"] == "shop"
    for endpoint in [*objs["ServiceMonitor"]["spec"]["endpoints"], *objs["PodMonitor"]["spec"]["podMetricsEndpoints"]]:
        assert endpoint["interval"] == "15s" and endpoint["scrapeTimeout"] == "5s"
        # Only the metrics ports are scraped: the ingest API port has no unauthenticated metrics.
        assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    rule = objs["PrometheusRule"]["spec"]["groups"][0]["rules"][0]
    assert rule["expr"].startswith("max(eventpipe_consumer_lag_seconds{") and rule["expr"].endswith("> 300")


def test_pipeline_alerts_do_not_collide_with_the_chart_rules_and_have_runbooks() -> None:
    """The operator's per-pipeline alerts sit beside the chart's PrometheusRule: their names must differ (or one
    Alertmanager route would see two alerts of one name), and each points at its runbook section."""
    repo = Path(__file__).resolve().parents[2]
    chart_rules = yaml.safe_load((repo / "helm/eventpipe-operator/rules/eventpipe.rules.yaml").read_text())
    chart_alerts = {r["alert"] for g in chart_rules["groups"] for r in g["rules"] if "alert" in r}
    anchors = {h.strip().lower() for h in re.findall(r"^## (.+)$", (repo / "docs/runbooks.md").read_text(), re.M)}
    rules = manifests.prometheus_rule(Pipeline.from_body(body()))["spec"]["groups"][0]["rules"]
    assert rules and not {r["alert"] for r in rules} & chart_alerts
    for rule in rules:
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
        assert rule["annotations"]["runbook_url"].rsplit("#", 1)[1] in anchors


def test_config_map_carries_the_settings_contract_and_the_schema() -> None:
    cm = manifests.config_map(Pipeline.from_body(body()))
    data = cm["data"]
    assert data["EVENTPIPE_PIPELINE_NAME"] == "shop"
    assert data["EVENTPIPE_STREAM_NAME"] == "eventpipe-shop"
    assert data["EVENTPIPE_AWS_REGION"] == "eu-west-1"
    assert data["EVENTPIPE_NAMESPACE"] == "shop"
    assert data["EVENTPIPE_CATALOG_NAME"] == "eventpipe"
    assert json.loads(data["EVENTPIPE_CATALOG_PROPERTIES"]) == {
        "type": "glue", "warehouse": "s3://example-shop-lake/warehouse"}
    assert data["EVENTPIPE_SCHEMA_PATH"] == "/etc/eventpipe/schema/schema.json"
    assert json.loads(data["schema.json"]) == shop_schema()
    assert "EVENTPIPE_KINESIS_ENDPOINT_URL" not in data  # production: the AWS endpoint
    assert "EVENTPIPE_JOB_STORE_DSN" not in data  # a secret: only by reference
    assert data["EVENTPIPE_CONSUMER_LEASE_TABLE"] == "eventpipe_leases_shop_shop"


def test_pods_are_locked_down_with_probes_and_resources() -> None:
    children = _by_kind(manifests.build_children(Pipeline.from_body(body()), OPTS))
    for component in ("ingest", "consumer"):
        pod = children[("Deployment", f"shop-{component}")]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] == f"shop-{component}"
        (container,) = pod["containers"]
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["livenessProbe"] and container["readinessProbe"]
        assert container["image"] == "ghcr.io/eventpipe/services:1.2.3"
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts and manifests.STATE_DIR in mounts
    ingest = children[("Deployment", "shop-ingest")]["spec"]["template"]["spec"]["containers"][0]
    assert ingest["command"] == ["python", "-m", "eventpipe_ingest"]
    assert ingest["livenessProbe"]["httpGet"]["path"] == "/api/v1/health"
    assert ingest["readinessProbe"]["httpGet"]["path"] == "/api/v1/ready"
    # Metrics on a port of their own, which the Service, the NetworkPolicy and the settings name too.
    assert {p["name"]: p["containerPort"] for p in ingest["ports"]} == {"http": 8000, "metrics": 9104}
    service_ports = {p["name"]: p["targetPort"] for p in children[("Service", "shop-ingest")]["spec"]["ports"]}
    assert service_ports == {"http": "http", "metrics": "metrics"}
    policy = children[("NetworkPolicy", "shop-ingest")]["spec"]["ingress"][0]["ports"]
    assert sorted(p["port"] for p in policy) == [8000, 9104]
    settings = children[("ConfigMap", "shop-config")]["data"]
    assert (settings["EVENTPIPE_INGEST_METRICS_HOST"], settings["EVENTPIPE_INGEST_METRICS_PORT"]) == ("0.0.0.0", "9104")
    # /ready may wait READY_WAIT_SECONDS before answering: the probe must not time out first.
    assert ingest["readinessProbe"]["timeoutSeconds"] > manifests.READY_WAIT_SECONDS
    consumer = children[("Deployment", "shop-consumer")]
    assert consumer["spec"]["replicas"] == 2
    assert consumer["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python", "-m", "eventpipe_consumer", "run"]
    consumer_container = consumer["spec"]["template"]["spec"]["containers"][0]
    assert consumer_container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # 503 while a shard is stopped
    assert consumer_container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_secrets_are_references_only() -> None:
    children = _by_kind(manifests.build_children(Pipeline.from_body(body()), OPTS))
    consumer = children[("Deployment", "shop-consumer")]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in consumer["env"]}
    assert env["EVENTPIPE_JOB_STORE_DSN"]["valueFrom"] == {"secretKeyRef": {"name": "shop-job-store", "key": "dsn"}}
    assert env["EVENTPIPE_CONSUMER_LEASE_DSN"]["valueFrom"]["secretKeyRef"]["name"] == "shop-job-store"
    assert all("value" not in e for e in consumer["env"])
    ingest = children[("Deployment", "shop-ingest")]["spec"]["template"]["spec"]
    auth = next(v for v in ingest["volumes"] if v["name"] == "auth")
    assert auth["secret"]["secretName"] == "shop-ingest-api-keys"
    dag = json.loads(children[("ConfigMap", "shop-dag")]["data"]["dag.json"])
    assert dag["alerts"][0]["urlSecretRef"] == {"name": "shop-alerts", "key": "slack-webhook"}


def test_irsa_annotation_on_service_accounts() -> None:
    """Separate accounts and roles: ingest only writes the stream, the consumer (and maintenance) the tables."""
    accounts = {sa["metadata"]["name"]: sa for sa in manifests.service_accounts(Pipeline.from_body(body()))}
    assert accounts["shop-ingest"]["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/eventpipe-shop-ingest"}
    assert accounts["shop-consumer"]["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/eventpipe-shop-consumer"}
    assert accounts["shop-transform"]["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/eventpipe-shop-transform"}
    assert accounts["shop-transform"]["metadata"]["labels"]["app.kubernetes.io/component"] == "transform"
    assert all(sa["automountServiceAccountToken"] is False for sa in accounts.values())
    plain = manifests.service_accounts(Pipeline.from_body(body({"aws": {
        "ingestRoleArn": None, "consumerRoleArn": None, "transformRoleArn": None}})))
    assert all("annotations" not in sa["metadata"] for sa in plain)
    # No DAG, no task pods: the transform account goes with the DAG ConfigMap (pruned with it).
    off = manifests.service_accounts(Pipeline.from_body(body({"transform": {"enabled": False}})))
    assert sorted(sa["metadata"]["name"] for sa in off) == ["shop-consumer", "shop-ingest"]
    cron = manifests.maintenance_cronjob(Pipeline.from_body(body()), OPTS)
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"] == "shop-consumer"


def test_lease_tables_are_per_pipeline() -> None:
    """Two pipelines never share lease rows: the table differs whenever namespace or name differs, and it is a
    valid SQL identifier of at most 63 characters even for the longest names."""
    tables = {manifests.lease_table(Pipeline.from_body(body(name=n, namespace=ns)))
              for n, ns in [("shop", "shop"), ("shop", "other"), ("shop-2", "shop"), ("shop", "shop-2")]}
    assert len(tables) == 4
    long_ns = "n" * 63
    one = manifests.lease_table(Pipeline.from_body(body(name="a" * 40, namespace=long_ns)))
    two = manifests.lease_table(Pipeline.from_body(body(name="a" * 39 + "b", namespace=long_ns)))
    assert one != two and len(one) <= 63 and len(two) <= 63


def test_dev_mode_keeps_state_on_one_claim() -> None:
    dev = Pipeline.from_body(body({"mode": "dev", "ingest": {"replicas": 1},
                                   "consumer": {"minReplicas": 1, "maxReplicas": 1},
                                   "dev": {"storageSize": "5Gi", "storageClassName": "fast"}}))
    opts = manifests.BuildOptions(image="i:1", consumer_replicas=1, analytics_image="a:1")
    children = _by_kind(manifests.build_children(dev, opts))
    claim = children[("PersistentVolumeClaim", "shop-state")]
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}},
                             "storageClassName": "fast"}
    for kind, name in [("Deployment", "shop-ingest"), ("Deployment", "shop-consumer")]:
        obj = children[(kind, name)]
        assert obj["spec"]["strategy"] == {"type": "Recreate"}  # never two pods on the claim during a rollout
        volumes = {v["name"]: v for v in obj["spec"]["template"]["spec"]["volumes"]}
        assert volumes["state"] == {"name": "state", "persistentVolumeClaim": {"claimName": "shop-state"}}
    consumer_pod = children[("Deployment", "shop-consumer")]["spec"]["template"]["spec"]
    (term,) = consumer_pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "ingest"
    shared = _by_kind(manifests.build_children(Pipeline.from_body(body()), OPTS))
    assert not [k for k in shared if k[0] == "PersistentVolumeClaim"]


def test_pod_customisation_per_component() -> None:
    custom = {"labels": {"team": "data", "app.kubernetes.io/component": "mine"}, "annotations": {"a": "b"},
              "nodeSelector": {"pool": "ingest"}, "priorityClassName": "high",
              "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
              "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                  "nodeSelectorTerms": [{"matchExpressions": [{"key": "z", "operator": "In", "values": ["a"]}]}]}}},
              "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                             "whenUnsatisfiable": "ScheduleAnyway"}]}
    pipeline = Pipeline.from_body(body({"ingest": {"pod": custom}}))
    children = _by_kind(manifests.build_children(pipeline, OPTS))
    template = children[("Deployment", "shop-ingest")]["spec"]["template"]
    spec = template["spec"]
    assert template["metadata"]["labels"]["team"] == "data"
    assert template["metadata"]["labels"]["app.kubernetes.io/component"] == "ingest"  # the selector is kept
    assert template["metadata"]["annotations"]["a"] == "b"
    assert manifests.CONFIG_HASH_ANNOTATION in template["metadata"]["annotations"]
    assert spec["nodeSelector"] == {"pool": "ingest"} and spec["priorityClassName"] == "high"
    assert spec["tolerations"] == custom["tolerations"] and spec["affinity"] == custom["affinity"]
    assert spec["topologySpreadConstraints"] == custom["topologySpreadConstraints"]
    consumer = children[("Deployment", "shop-consumer")]["spec"]["template"]["spec"]
    assert not {"nodeSelector", "priorityClassName", "tolerations", "affinity"} & set(consumer)


def test_maintenance_cronjob_runs_the_consumers_maintenance() -> None:
    pipeline = Pipeline.from_body(body({"maintenance": {"schedule": "0 4 * * 0", "quietSeconds": 600}}))
    cron = _by_kind(manifests.build_children(pipeline, OPTS))[("CronJob", "shop-maintenance")]
    assert cron["spec"]["schedule"] == "0 4 * * 0" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "eventpipe_consumer", "maintenance", "--quiet-seconds", "600"]
    env = {e["name"] for e in container["env"]}
    assert {"EVENTPIPE_MAINTENANCE_ORPHAN_GRACE_SECONDS", "EVENTPIPE_MAINTENANCE_SNAPSHOT_RETENTION_SECONDS",
            "EVENTPIPE_CATALOG_PROPERTIES", "EVENTPIPE_STREAM_NAME"} <= env
    off = Pipeline.from_body(body({"maintenance": {"enabled": False}}))
    assert not [c for c in manifests.build_children(off, OPTS) if c["kind"] == "CronJob"]


def test_aws_credentials_secret_reaches_both_deployments_as_env_from() -> None:
    """Without IRSA (kind, a local node) the pods take AWS_* from a Secret, by reference only."""
    pipeline = Pipeline.from_body(body({"aws": {"credentialsSecretRef": {"name": "shop-aws"}}}))
    children = _by_kind(manifests.build_children(pipeline, OPTS))
    for name in ("shop-ingest", "shop-consumer"):
        container = children[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]
        assert {"secretRef": {"name": "shop-aws"}} in container["envFrom"]
    plain = _by_kind(manifests.build_children(Pipeline.from_body(body()), OPTS))
    container = plain[("Deployment", "shop-ingest")]["spec"]["template"]["spec"]["containers"][0]
    assert {"secretRef": {"name": "shop-aws"}} not in container.get("envFrom", [])


def test_config_hash_rolls_pods_on_spec_changes_that_reach_them() -> None:
    base = Pipeline.from_body(body())
    same = Pipeline.from_body(body({"ingest": {"replicas": 5}}))
    changed_schema = Pipeline.from_body(body({"schema": {"event_types": ["page_view"]}}))
    changed_batch = Pipeline.from_body(body({"consumer": {"batchSize": 10}}))
    assert manifests.config_hash(base) == manifests.config_hash(same)
    assert manifests.config_hash(base) != manifests.config_hash(changed_schema)
    assert manifests.config_hash(base) != manifests.config_hash(changed_batch)
    deployment = manifests.ingest_deployment(changed_schema, OPTS)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations[manifests.CONFIG_HASH_ANNOTATION] == manifests.config_hash(changed_schema)


def test_dag_definition_shape() -> None:
    dag = manifests.dag_definition(Pipeline.from_body(body()), ANALYTICS)
    assert dag == {
        "apiVersion": "eventpipe.io/v1alpha1", "kind": "PipelineDag", "pipeline": "shop", "k8sNamespace": "shop",
        "enabled": True, "trigger": "on-snapshot", "schedule": None, "settingsConfigMap": "shop-config",
        "catalog": {"name": "eventpipe", "namespace": "shop"},
        "tables": {"rawEvents": "shop.raw_events", "rejected": "shop.raw_events_rejected"},
        "dbt": {"target": "duckdb", "select": ["+fact_events", "+dim_users", "+dim_products"]},
        "gx": {"suites": ["staging", "marts"]},
        "alerts": [
            {"type": "slack", "severity": "critical", "urlSecretRef": {"name": "shop-alerts", "key": "slack-webhook"}},
            {"type": "log", "severity": "warning"}],
        "pods": {"image": ANALYTICS, "imagePullPolicy": "IfNotPresent", "serviceAccount": "shop-transform",
                 "resources": manifests.DEFAULT_RESOURCES["transform"], "catalogSecretRef": None,
                 "jobStoreDsnSecretRef": {"name": "shop-job-store", "key": "dsn"},
                 "awsCredentialsSecretRef": None},
    }
    scheduled = manifests.dag_definition(Pipeline.from_body(body({"transform": {
        "trigger": "schedule", "schedule": "@hourly"}})), ANALYTICS)
    assert scheduled["trigger"] == "schedule" and scheduled["schedule"] == "@hourly"


def test_dag_pods_follow_the_spec_with_secrets_by_name_only() -> None:
    """The task pods' block: resources from spec.transform (merged over the defaults, quantities as strings), the
    pipeline's pull policy, the catalog, job-store and AWS credentials Secrets by name; the ConfigMap written
    to the API server carries exactly that."""
    pipeline = Pipeline.from_body(body({
        "image": {"pullPolicy": "Always"},
        "aws": {"credentialsSecretRef": {"name": "shop-aws"}},
        "iceberg": {"catalogSecretRef": {"name": "shop-catalog"}},
        "transform": {"resources": {"requests": {"cpu": 1}, "limits": {"memory": "8Gi"}}},
    }))
    pods = manifests.dag_pods(pipeline, "registry.local/analytics:7")
    assert pods == {
        "image": "registry.local/analytics:7", "imagePullPolicy": "Always", "serviceAccount": "shop-transform",
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}},
        "catalogSecretRef": "shop-catalog", "jobStoreDsnSecretRef": {"name": "shop-job-store", "key": "dsn"},
        "awsCredentialsSecretRef": "shop-aws"}
    cm = _by_kind(manifests.build_children(pipeline, OPTS))[("ConfigMap", "shop-dag")]
    written = json.loads(cm["data"]["dag.json"])
    assert written["pods"] == {**pods, "image": ANALYTICS}  # the operator's setting, through BuildOptions
    assert written["settingsConfigMap"] == "shop-config"
    accounts = {sa["metadata"]["name"] for sa in manifests.service_accounts(pipeline)}
    assert written["pods"]["serviceAccount"] in accounts
    # Without a job store or transform section: no DSN reference, the defaults.
    bare = manifests.dag_pods(Pipeline.from_body(body({"jobStore": {"dsnSecretRef": None}})), "a:1")
    assert bare["jobStoreDsnSecretRef"] is None and bare["resources"] == manifests.DEFAULT_RESOURCES["transform"]
    assert bare["resources"] is not manifests.DEFAULT_RESOURCES["transform"]  # a copy, never the shared dict


def test_defaults_apply_to_a_minimal_spec() -> None:
    minimal = {"metadata": {"name": "tiny", "namespace": "ns", "uid": "u", "generation": 1},
               "spec": {"iceberg": {"namespace": "tiny"}}}
    pipeline = Pipeline.from_body(minimal)
    children = _by_kind(manifests.build_children(pipeline, manifests.BuildOptions(
        image="img:1", consumer_replicas=1, analytics_image="a:1")))
    cm = children[("ConfigMap", "tiny-config")]["data"]
    assert cm["EVENTPIPE_STREAM_NAME"] == "eventpipe-tiny"
    assert "schema.json" not in cm and "EVENTPIPE_SCHEMA_PATH" not in cm
    assert children[("Deployment", "tiny-ingest")]["spec"]["replicas"] == 2


def test_image_override() -> None:
    pipeline = Pipeline.from_body(body({"image": {"tag": "9.9.9"}}))
    assert manifests.image_of(pipeline, "ghcr.io/eventpipe/services:1.0.0") == "ghcr.io/eventpipe/services:9.9.9"
    pipeline = Pipeline.from_body(body({"image": {"repository": "registry.local/svc", "tag": "2"}}))
    assert manifests.image_of(pipeline, "ghcr.io/eventpipe/services:1.0.0") == "registry.local/svc:2"


SPEC_CHANGES = st.fixed_dictionaries({}, optional={
    "ingest": st.fixed_dictionaries({"replicas": st.integers(1, 100), "maxUnavailable": st.integers(1, 5)}),
    "consumer": st.fixed_dictionaries({"metricsPort": st.integers(1024, 65535), "batchSize": st.integers(1, 10**6),
                                       "leaseStore": st.sampled_from(["sql", "dynamodb"])}),
    "transform": st.fixed_dictionaries({"enabled": st.booleans()}),
    "networkPolicy": st.fixed_dictionaries({"enabled": st.booleans()}),
    "monitoring": st.fixed_dictionaries({"serviceMonitor": st.booleans(), "prometheusRule": st.booleans()}),
    "aws": st.fixed_dictionaries({"ingestRoleArn": st.none(), "consumerRoleArn": st.none(),
                                  "transformRoleArn": st.none(),
                                  "kinesisEndpointUrl": st.just("http://127.0.0.1:4567")}),
    "jobStore": st.just({"dsnSecretRef": None}),
    "ingest_auth_off": st.just(True),
})


@settings(max_examples=60, deadline=None)
@given(changes=SPEC_CHANGES, replicas=st.integers(1, 50), monitoring=st.booleans(),
       name=st.from_regex(r"[a-z][a-z0-9]{0,20}", fullmatch=True))
def test_builder_invariants(changes: dict, replicas: int, monitoring: bool, name: str) -> None:
    """Whatever the spec: every child is owned by the pipeline, in its namespace, named after it; no child
    carries a literal secret; the builders are deterministic; the consumer gets the replica count asked."""
    if changes.pop("ingest_auth_off", False):
        changes["ingest"] = {**changes.get("ingest", {}), "auth": None}
    pipeline = Pipeline.from_body(body(changes, name=name))
    opts = manifests.BuildOptions(image="img:1", consumer_replicas=replicas, analytics_image="a:1",
                                  monitoring_crds=monitoring)
    children = manifests.build_children(pipeline, opts)
    assert children == manifests.build_children(pipeline, opts)
    keys = [manifests.child_key(c) for c in children]
    assert len(keys) == len(set(keys))
    for child in children:
        meta = child["metadata"]
        assert meta["ownerReferences"][0]["uid"] == pipeline.uid
        assert meta["namespace"] == "shop" and meta["name"].startswith(name)
        assert meta["labels"]["eventpipe.io/pipeline"] == name
        text = json.dumps(child)
        assert "password" not in text.lower() and "secretKeyRef\": {\"value" not in text
        if child["kind"] == "Deployment":
            env = child["spec"]["template"]["spec"]["containers"][0]["env"]
            assert all("valueFrom" in e for e in env)  # settings by ConfigMap reference, secrets by Secret reference
    consumer = next(c for c in children if c["kind"] == "Deployment" and c["metadata"]["name"] == f"{name}-consumer")
    assert consumer["spec"]["replicas"] == replicas


def test_pods_environment_parses_with_the_services_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract with the services: what a pod's env resolves to (ConfigMap keys, the catalog Secret through
    envFrom's prefix, the DSN Secret) is read by eventpipe_common's PipelineSettings as intended."""
    from eventpipe_common.settings import PipelineSettings

    pipeline = Pipeline.from_body(body({"iceberg": {"catalogSecretRef": {"name": "shop-catalog"}}}))
    deployment = manifests.consumer_deployment(pipeline, OPTS)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    config = manifests.config_map(pipeline)["data"]
    secrets = {"shop-job-store": {"dsn": "postgresql+psycopg://u:pw@db/jobs"},
               "shop-catalog": {"s3.secret-access-key": "sekret"}}
    for entry in container["env"]:
        ref = entry["valueFrom"]
        if "configMapKeyRef" in ref:
            value = config[ref["configMapKeyRef"]["key"]]
        else:
            value = secrets[ref["secretKeyRef"]["name"]][ref["secretKeyRef"]["key"]]
        monkeypatch.setenv(entry["name"], value)
    for source in container["envFrom"]:
        for key, value in secrets[source["secretRef"]["name"]].items():
            monkeypatch.setenv(source["prefix"] + key, value)
    settings = PipelineSettings()
    assert settings.pipeline_name == "shop" and settings.stream_name == "eventpipe-shop"
    assert settings.namespace == "shop" and settings.aws_region == "eu-west-1"
    assert settings.catalog_properties == {"type": "glue", "warehouse": "s3://example-shop-lake/warehouse",
                                           "s3.secret-access-key": "sekret"}
    assert settings.job_store_dsn == "postgresql+psycopg://u:pw@db/jobs"
    assert str(settings.schema_path) == "/etc/eventpipe/schema/schema.json"
    assert str(settings.state_dir) == manifests.STATE_DIR
