"""The EventPipeline spec as typed objects, with the same defaults as the CRD's OpenAPI schema.

The API server applies the CRD defaults before the operator sees an object; repeating them here lets the pure
builders (and their unit tests) work on any dict, defaulted or not. Field names are the CRD's camelCase; the
`schema` section is kept verbatim because it is the Rust core's source format (snake_case keys).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "eventpipe.io"
VERSION = "v1alpha1"
PLURAL = "eventpipelines"
KIND = "EventPipeline"
API_VERSION = f"{GROUP}/{VERSION}"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class SecretKeyRef(_Model):
    name: str
    key: str


class Resources(_Model):
    requests: dict[str, str | int] = Field(default_factory=dict)
    limits: dict[str, str | int] = Field(default_factory=dict)


class ImageSpec(_Model):
    repository: str | None = None
    tag: str | None = None
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"


class SecretRef(_Model):
    name: str


class AwsSpec(_Model):
    region: str = "us-east-1"
    kinesis_endpoint_url: str | None = None
    ingest_role_arn: str | None = None
    consumer_role_arn: str | None = None
    transform_role_arn: str | None = None
    # A Secret whose keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...) become the pods' environment: for clusters
    # without IRSA (kind, a local node); EKS uses the role ARNs instead.
    credentials_secret_ref: SecretRef | None = None


class PodSpec(_Model):
    """Per-component pod customisation, added to what the operator sets (its labels win)."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    priority_class_name: str | None = None
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    affinity: dict[str, Any] | None = None
    topology_spread_constraints: list[dict[str, Any]] = Field(default_factory=list)


class StreamSpec(_Model):
    name: str | None = None
    shards: int = Field(default=1, ge=1, le=500)
    create: bool = False
    retention_hours: int = Field(default=24, ge=24, le=8760)


class IngestAuth(_Model):
    secret_name: str
    key: str = "api-keys"


class IngestSpec(_Model):
    replicas: int = Field(default=2, ge=1)
    max_unavailable: int = Field(default=1, ge=1)
    metrics_port: int = 9104
    auth: IngestAuth | None = None
    resources: Resources | None = None
    pod: PodSpec = Field(default_factory=PodSpec)


class ConsumerSpec(_Model):
    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(default=4, ge=1)
    batch_size: int = Field(default=50_000, ge=1)
    commit_interval_seconds: float = Field(default=5.0, gt=0)
    target_lag_seconds: int = Field(default=60, ge=1)
    scale_down_stabilization_seconds: int = Field(default=300, ge=0)
    metrics_port: int = 9102
    lease_store: Literal["sql", "dynamodb"] = "sql"
    resources: Resources | None = None
    pod: PodSpec = Field(default_factory=PodSpec)


class JobStoreSpec(_Model):
    dsn_secret_ref: SecretKeyRef | None = None


class CatalogSecretRef(_Model):
    name: str


class IcebergSpec(_Model):
    catalog_name: str = "eventpipe"
    catalog_properties: dict[str, str] = Field(default_factory=dict)
    catalog_secret_ref: CatalogSecretRef | None = None
    namespace: str
    create_tables: bool = False
    partitioning: Literal["day", "hour"] = "day"


class DbtSpec(_Model):
    # Not a Literal: the CRD's enum refuses unknown targets, and the operator reports one it still sees (checks).
    target: str = "duckdb"
    select: list[str] = Field(default_factory=lambda: ["+fact_events"])


class GxSpec(_Model):
    suites: list[str] = Field(default_factory=lambda: ["staging", "marts"])


class AlertSpec(_Model):
    type: Literal["log", "slack", "webhook", "email"]
    severity: Literal["critical", "warning"] = "critical"
    to: str | None = None
    url_secret_ref: SecretKeyRef | None = None


class TransformSpec(_Model):
    enabled: bool = True
    trigger: Literal["on-snapshot", "schedule"] = "on-snapshot"
    schedule: str | None = None
    dbt: DbtSpec = Field(default_factory=DbtSpec)
    gx: GxSpec = Field(default_factory=GxSpec)
    alerts: list[AlertSpec] = Field(default_factory=list)
    resources: Resources | None = None


class MonitoringSpec(_Model):
    service_monitor: bool = True
    pod_monitor: bool = False
    prometheus_rule: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    scrape_interval: str = "30s"
    scrape_timeout: str = "10s"
    lag_alert_seconds: int = 300


class DevSpec(_Model):
    storage_size: str = "1Gi"
    storage_class_name: str | None = None


class MaintenanceSpec(_Model):
    enabled: bool = True
    schedule: str = "23 3 * * *"
    snapshot_retention_seconds: int = Field(default=7 * 24 * 3600, ge=3600)
    orphan_grace_seconds: int = Field(default=3 * 24 * 3600, ge=3600)
    quiet_seconds: int = Field(default=3600, ge=60)


class NetworkPolicySpec(_Model):
    enabled: bool = True


class PipelineSpec(_Model):
    mode: Literal["shared", "dev"] = "shared"
    dev: DevSpec = Field(default_factory=DevSpec)
    deletion_policy: Literal["Retain", "Delete"] = "Retain"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    image: ImageSpec = Field(default_factory=ImageSpec)
    aws: AwsSpec = Field(default_factory=AwsSpec)
    stream: StreamSpec = Field(default_factory=StreamSpec)
    # The Rust core's schema source, verbatim (snake_case keys); None means the envelope contract.
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    ingest: IngestSpec = Field(default_factory=IngestSpec)
    consumer: ConsumerSpec = Field(default_factory=ConsumerSpec)
    job_store: JobStoreSpec = Field(default_factory=JobStoreSpec)
    iceberg: IcebergSpec
    transform: TransformSpec = Field(default_factory=TransformSpec)
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    network_policy: NetworkPolicySpec = Field(default_factory=NetworkPolicySpec)
    maintenance: MaintenanceSpec = Field(default_factory=MaintenanceSpec)


class Pipeline(BaseModel):
    """One EventPipeline object: identity (for names and owner references) plus its parsed spec."""

    model_config = ConfigDict(frozen=True)

    name: str
    namespace: str
    uid: str
    generation: int
    spec: PipelineSpec

    @classmethod
    def from_body(cls, body: dict[str, Any] | Any) -> Pipeline:
        """Parse a whole object (as kopf or the API returns it)."""
        meta = body["metadata"]
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            generation=int(meta.get("generation") or 1),
            spec=PipelineSpec.model_validate(dict(body["spec"])),
        )

    @property
    def stream_name(self) -> str:
        return self.spec.stream.name or f"eventpipe-{self.name}"

    def owner_reference(self) -> dict[str, Any]:
        """The owner reference every child carries (garbage collection deletes children with the pipeline)."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
