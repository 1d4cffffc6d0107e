"""The operator's Kubernetes I/O: server-side apply of children, pruning, and the few reads it needs.

Paths are built from a static table of the kinds the operator manages (no discovery round trips), and every
write is a server-side apply under one field manager with force, so the operator owns exactly the fields it
sets and re-applying the same manifests is a no-op.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from .manifests import MANAGED_BY, PIPELINE_LABEL

# kind -> (apiVersion, plural); every kind the operator creates, in prune order.
KINDS: dict[str, tuple[str, str]] = {
    "PrometheusRule": ("monitoring.coreos.com/v1", "prometheusrules"),
    "ServiceMonitor": ("monitoring.coreos.com/v1", "servicemonitors"),
    "PodMonitor": ("monitoring.coreos.com/v1", "podmonitors"),
    "CronJob": ("batch/v1", "cronjobs"),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies"),
    "PodDisruptionBudget": ("policy/v1", "poddisruptionbudgets"),
    "Deployment": ("apps/v1", "deployments"),
    "Service": ("v1", "services"),
    "ServiceAccount": ("v1", "serviceaccounts"),
    "ConfigMap": ("v1", "configmaps"),
    "PersistentVolumeClaim": ("v1", "persistentvolumeclaims"),
}


class NotOwnedError(Exception):
    """An object of the child's name exists and this pipeline does not own it: it is left alone."""


MONITORING_GROUP_VERSION = "monitoring.coreos.com/v1"


def load_api_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG) like kubectl."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        # Read KUBECONFIG now: the client library only reads it once, when it is imported.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    return client.ApiClient()


def _base(api_version: str) -> str:
    return f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"


def object_path(api_version: str, plural: str, namespace: str, name: str | None = None) -> str:
    path = f"{_base(api_version)}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


class Kube:
    """Thin, synchronous access to the API server for the handlers (kopf runs sync handlers in threads)."""

    def __init__(self, api: client.ApiClient, field_manager: str) -> None:
        self.api = api
        self.field_manager = field_manager

    def request(self, method: str, path: str, *, body: Any = None, query: list[tuple[str, Any]] | None = None,
                content_type: str | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        return self.api.call_api(
            path, method, query_params=query or [], header_params=headers, body=body,
            response_types_map={200: "object", 201: "object", 202: "object"},
            auth_settings=["BearerToken"], _return_http_data_only=True,
        )

    def get(self, path: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.request("GET", path)
            return result
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply under the operator's field manager; force takes fields over from other managers,
        but only on an object this pipeline owns: an existing object of the same name without the pipeline's
        owner reference (someone else's) raises NotOwnedError and is not changed."""
        kind = obj["kind"]
        api_version, plural = KINDS[kind]
        path = object_path(api_version, plural, obj["metadata"]["namespace"], obj["metadata"]["name"])
        owner_uids = {o["uid"] for o in obj["metadata"].get("ownerReferences") or []}
        existing = self.get(path)
        if existing is not None and owner_uids:
            theirs = {o.get("uid") for o in existing["metadata"].get("ownerReferences") or []}
            if not owner_uids & theirs:
                raise NotOwnedError(f"{kind}/{obj['metadata']['name']}")
        result: dict[str, Any] = self.request(
            "PATCH", path, body=obj, content_type="application/apply-patch+yaml",
            query=[("fieldManager", self.field_manager), ("force", "true")])
        return result

    def delete(self, api_version: str, plural: str, namespace: str, name: str) -> bool:
        try:
            self.request("DELETE", object_path(api_version, plural, namespace, name),
                         body={"propagationPolicy": "Background"})
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def has_monitoring_crds(self) -> bool:
        """True when the Prometheus Operator's ServiceMonitor and PrometheusRule kinds are served."""
        found = self.get(f"/apis/{MONITORING_GROUP_VERSION}")
        if found is None:
            return False
        names = {r.get("name") for r in found.get("resources", [])}
        return {"servicemonitors", "podmonitors", "prometheusrules"} <= names

    def list_owned(self, namespace: str, pipeline: str, kinds: Iterable[str]) -> list[dict[str, Any]]:
        """Objects of these kinds the operator made for this pipeline (by label)."""
        selector = f"{PIPELINE_LABEL}={pipeline},app.kubernetes.io/managed-by={MANAGED_BY}"
        found: list[dict[str, Any]] = []
        for kind in kinds:
            api_version, plural = KINDS[kind]
            listing = self.request("GET", object_path(api_version, plural, namespace),
                                   query=[("labelSelector", selector)])
            for item in listing.get("items", []):
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                found.append(item)
        return found

    def prune(self, namespace: str, pipeline: str, owner_uid: str, keep: set[tuple[str, str, str]],
              monitoring: bool) -> list[str]:
        """Delete this pipeline's children that the current spec no longer asks for; returns what went."""
        kinds = [k for k in KINDS if monitoring or KINDS[k][0] != MONITORING_GROUP_VERSION]
        removed = []
        for obj in self.list_owned(namespace, pipeline, kinds):
            owners = obj["metadata"].get("ownerReferences") or []
            if not any(o.get("uid") == owner_uid for o in owners):
                continue
            key = (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
            if key in keep:
                continue
            api_version, plural = KINDS[obj["kind"]]
            if self.delete(api_version, plural, namespace, obj["metadata"]["name"]):
                removed.append(f"{obj['kind']}/{obj['metadata']['name']}")
        return removed

    def deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(object_path("apps/v1", "deployments", namespace, name))

    def pod_ips(self, namespace: str, match_labels: dict[str, str]) -> list[str]:
        """IPs of the running pods matching the labels (the consumers whose metrics give the lag)."""
        selector = ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))
        listing = self.request("GET", object_path("v1", "pods", namespace), query=[("labelSelector", selector)])
        ips = []
        for pod in listing.get("items", []):
            status = pod.get("status") or {}
            if status.get("phase") == "Running" and status.get("podIP"):
                ips.append(status["podIP"])
        return ips

    def pod_names(self, namespace: str, match_labels: dict[str, str]) -> list[str]:
        """Names of the pods matching the labels that still exist (any phase but Succeeded/Failed)."""
        selector = ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))
        listing = self.request("GET", object_path("v1", "pods", namespace), query=[("labelSelector", selector)])
        return [p["metadata"]["name"] for p in listing.get("items", [])
                if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret's keys and decoded values (only for catalog credentials the operator itself needs)."""
        secret = self.get(object_path("v1", "secrets", namespace, name))
        if secret is None:
            raise LookupError(f"Secret {namespace}/{name} not found")
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
