"""Where DAG definitions come from: the operator's ConfigMaps (label eventpipe.io/dag=true) or a folder.

Read at every parse of the DAG file, so a pipeline added or removed shows up (or goes away) at the DAG
processor's next parse: no DAG file to write, no restart. A broken definition is logged and skipped; the other
pipelines' DAGs still load.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from eventpipe_dags.definition import DefinitionError, PipelineDag, parse_definition

DAG_LABEL = "eventpipe.io/dag=true"
DAG_KEY = "dag.json"

log = logging.getLogger(__name__)


def from_texts(items: Iterable[tuple[str, str]]) -> list[PipelineDag]:
    """(source, text) pairs -> definitions; invalid or disabled ones are left out, one DAG id per pipeline."""
    found: dict[str, PipelineDag] = {}
    for source, text in items:
        try:
            definition = parse_definition(text, source)
        except DefinitionError as exc:
            log.error("skipping an invalid DAG definition: %s", exc)
            continue
        if not definition.enabled:
            continue
        if definition.dag_id in found:
            log.error("skipping %s: DAG %s is already defined by another source", source, definition.dag_id)
            continue
        found[definition.dag_id] = definition
    return list(found.values())


def from_folder(folder: Path) -> list[PipelineDag]:
    """`<folder>/*.json` and `<folder>/*/dag.json` (the operator's layout `<name>-dag/dag.json`)."""
    if not folder.is_dir():
        return []
    paths = sorted({*folder.glob("*.json"), *folder.glob(f"*/{DAG_KEY}")})
    return from_texts((str(path), path.read_text()) for path in paths)


def config_map_texts(config_maps: Iterable[Any]) -> list[tuple[str, str]]:
    """The dag.json of each ConfigMap (kubernetes client V1ConfigMap objects)."""
    texts = []
    for cm in config_maps:
        data = cm.data or {}
        if DAG_KEY in data:
            texts.append((f"configmap {cm.metadata.namespace}/{cm.metadata.name}", str(data[DAG_KEY])))
    return texts


def from_kubernetes(namespace: str | None = None, kubeconfig: str | None = None) -> list[PipelineDag]:
    """List the labelled ConfigMaps through the API (in-cluster service account, or a kubeconfig)."""
    from kubernetes import client, config

    if kubeconfig:
        api = config.new_client_from_config(config_file=kubeconfig)
    else:
        config.load_incluster_config()
        api = client.ApiClient()
    core = client.CoreV1Api(api)
    try:
        if namespace:
            items = core.list_namespaced_config_map(namespace, label_selector=DAG_LABEL, timeout_seconds=10).items
        else:
            items = core.list_config_map_for_all_namespaces(label_selector=DAG_LABEL, timeout_seconds=10).items
    finally:
        api.close()
    return from_texts(config_map_texts(items))
