"""EventPipeline status from the Kubernetes API, for the Pipeline page when the dashboard runs in a cluster."""

from __future__ import annotations

from typing import Any

import pandas as pd

GROUP, VERSION, PLURAL = "eventpipe.io", "v1alpha1", "eventpipelines"


class KubernetesUnavailableError(RuntimeError):
    """No cluster configuration, or the API server refused."""


def pipeline_rows(items: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per EventPipeline: what `kubectl get eventpipelines` shows, plus the Ready condition's message."""
    rows = []
    for item in items:
        status = item.get("status") or {}
        ready: dict[str, Any] = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), {})
        rows.append({
            "namespace": item["metadata"].get("namespace"), "name": item["metadata"]["name"],
            "phase": status.get("phase", "Pending"), "ready": ready.get("status", "Unknown"),
            "message": ready.get("message", ""),
            "open shards": (status.get("stream") or {}).get("openShards"),
            "consumers": (status.get("consumers") or {}).get("replicas"),
            "lag (s)": (status.get("consumers") or {}).get("lagSeconds"),
        })
    return pd.DataFrame(rows, columns=["namespace", "name", "phase", "ready", "message", "open shards",
                                       "consumers", "lag (s)"])


def list_pipelines() -> pd.DataFrame:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        config.load_incluster_config()
    except ConfigException:
        try:
            config.load_kube_config()
        except (ConfigException, OSError) as exc:
            raise KubernetesUnavailableError(f"no Kubernetes configuration: {exc}") from exc
    try:
        answer = client.CustomObjectsApi().list_cluster_custom_object(GROUP, VERSION, PLURAL)
    except client.ApiException as exc:
        raise KubernetesUnavailableError(f"the API server refused to list EventPipelines: {exc.reason}") from exc
    return pipeline_rows(answer.get("items", []))
