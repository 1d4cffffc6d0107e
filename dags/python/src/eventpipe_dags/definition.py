"""The operator's DAG definition (`dag.json`, kind PipelineDag), parsed and checked before a DAG is built.

The keys are the operator's (operator/README.md, "The Airflow DAG definition"). `pods` is optional (the operator
writes it; a hand-written definition may leave it out): the task pods' image, service account, resources and Secret
names when the definition names them; otherwise the factory's settings decide.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class DefinitionError(ValueError):
    """A dag.json that cannot become a DAG; says which source and which field."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class SecretKeyRef(_Model):
    name: str
    key: str


class Catalog(_Model):
    name: str = "eventpipe"
    namespace: str


class Tables(_Model):
    raw_events: str
    rejected: str


class Dbt(_Model):
    target: str = "duckdb"
    select: list[str] = Field(default_factory=list)


GX_SUITES = ("staging", "marts")


class Gx(_Model):
    suites: list[str] = Field(default_factory=lambda: list(GX_SUITES))

    @field_validator("suites")
    @classmethod
    def _known_suites(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in GX_SUITES]
        if unknown:
            raise ValueError(f"unknown GX suites {unknown}; eventpipe_quality has {list(GX_SUITES)}")
        order = {name: i for i, name in enumerate(GX_SUITES)}
        return sorted(dict.fromkeys(value), key=order.__getitem__)  # staging before marts, once each


class Alert(_Model):
    type: Literal["log", "slack", "webhook", "email"]
    severity: Literal["critical", "warning"] = "critical"
    to: str | None = None
    url_secret_ref: SecretKeyRef | None = None


class Resources(_Model):
    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class Pods(_Model):
    image: str | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    service_account: str | None = None
    resources: Resources | None = None
    catalog_secret_ref: str | None = None
    job_store_dsn_secret_ref: SecretKeyRef | None = None
    aws_credentials_secret_ref: str | None = None


class PipelineDag(_Model):
    api_version: str = "eventpipe.io/v1alpha1"
    kind: Literal["PipelineDag"] = "PipelineDag"
    pipeline: str
    k8s_namespace: str = Field(alias="k8sNamespace")
    enabled: bool = True
    trigger: Literal["on-snapshot", "schedule"] = "on-snapshot"
    schedule: str | None = None
    settings_config_map: str
    catalog: Catalog
    tables: Tables
    dbt: Dbt = Field(default_factory=Dbt)
    gx: Gx = Field(default_factory=Gx)
    alerts: list[Alert] = Field(default_factory=list)
    pods: Pods = Field(default_factory=Pods)

    @field_validator("pipeline", "k8s_namespace", "settings_config_map")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not DNS_LABEL.match(value) or len(value) > 63:
            raise ValueError(f"{value!r} is not a Kubernetes name (lowercase letters, digits, '-')")
        return value

    @property
    def dag_id(self) -> str:
        return f"eventpipe_{self.pipeline.replace('-', '_')}"

    @property
    def cron(self) -> str | None:
        """The schedule when the pipeline asks for one; None means 'on each new snapshot'."""
        if self.trigger != "schedule":
            return None
        if not self.schedule:
            raise ValueError("trigger is 'schedule' but no schedule is given")
        return self.schedule


def parse_definition(text: str, source: str) -> PipelineDag:
    """One dag.json document; `source` (a file or ConfigMap) is named in the error."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(f"{source}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise DefinitionError(f"{source}: expected a JSON object")
    try:
        definition = PipelineDag.model_validate(data)
        definition.cron  # noqa: B018 (checks a schedule trigger has its schedule)
    except (ValidationError, ValueError) as exc:
        raise DefinitionError(f"{source}: {exc}") from exc
    return definition
