"""Render the operator's children of each example EventPipeline with its pure builders (no API server), for the
static checks (scripts/static.sh): what checkov and kubeconform read is exactly what the operator would apply.

Usage: .venvs/operator/bin/python scripts/render_pipelines.py OUT_DIR examples/*.yaml
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import yaml
from eventpipe_operator import manifests
from eventpipe_operator.spec import Pipeline

# The chart's defaults (values.yaml: servicesImage, analyticsImage); the operator passes them the same way.
OPTS = manifests.BuildOptions(image="ghcr.io/eventpipe/services:0.1.0", consumer_replicas=1,
                              analytics_image="ghcr.io/eventpipe/analytics:0.1.0", monitoring_crds=True)


def pipelines(path: Path) -> list[dict[str, Any]]:
    """The EventPipeline documents of one file, with the uid the API server would give them."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "EventPipeline"]
    for doc in docs:
        doc["metadata"].setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, f"{path}/{doc['metadata']['name']}")))
    return docs


def render(body: dict[str, Any]) -> str:
    children = manifests.build_children(Pipeline.from_body(body), OPTS)
    text: str = yaml.safe_dump_all(children, sort_keys=False)
    return text


def main(out: Path, files: list[Path]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for path in files:
        for body in pipelines(path):
            target = out / f"operator-{body['metadata']['namespace']}-{body['metadata']['name']}.yaml"
            target.write_text(render(body))
            print(f"rendered {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
