"""JSON schemas in kubeconform's layout (<kind>-<group>-<version>.json, standalone, strict) for the kinds found in
the given manifests: built-in kinds from the Kubernetes OpenAPI (v2) document of the version the project targets
(api/openapi-spec/swagger.json of the k8s.io/kubernetes Go module, the one scripts/k8s-tools.sh builds from),
custom kinds from CRD files (openAPIV3Schema). What openapi2jsonschema does, for the kinds needed only.

Usage: python scripts/k8s_schemas.py SWAGGER_JSON OUT_DIR --crds CRD.yaml... --manifests FILE.yaml...
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import yaml

INT_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
QUANTITY = {"oneOf": [{"type": "string"}, {"type": "number"}]}
SPECIAL = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": INT_OR_STRING,
    "io.k8s.apimachinery.pkg.api.resource.Quantity": QUANTITY,
}


def file_name(api_version: str, kind: str) -> str:
    """kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}: kind, the group's first label, the version."""
    group, _, version = api_version.rpartition("/")
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{kind.lower()}{suffix.lower()}.json"


def strict(node: Any) -> Any:
    """Objects with declared properties refuse others (kubeconform -strict); int-or-string becomes a oneOf."""
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string"):
        return {**INT_OR_STRING, **({"description": node["description"]} if "description" in node else {})}
    out = {k: strict(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out and not node.get(
            "x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if "$ref" in node else set()
        for value in node.values():
            found |= refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(refs(n) for n in node)) if node else set()
    return set()


def builtin_schema(definitions: dict[str, Any], name: str) -> dict[str, Any]:
    """The definition `name` with the definitions it reaches (transitively) under "definitions"."""
    needed, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in needed or current in SPECIAL:
            continue
        needed.add(current)
        todo.extend(refs(definitions[current]))
    defs = {n: strict(copy.deepcopy(definitions[n])) for n in needed}
    defs.update({n: s for n, s in SPECIAL.items() if any(n in refs(d) for d in defs.values())})
    root = defs.pop(name)
    return {"$schema": "http://json-schema.org/draft-07/schema#", **root, "definitions": defs}


def gvk_index(definitions: dict[str, Any]) -> dict[tuple[str, str], str]:
    index = {}
    for name, schema in definitions.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            index[(api, gvk["kind"])] = name
    return index


def crd_schemas(paths: list[Path]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for path in paths:
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                props = schema.setdefault("properties", {})
                props.setdefault("apiVersion", {"type": "string"})
                props.setdefault("kind", {"type": "string"})
                props["metadata"] = {"type": "object"}
                out[(f"{group}/{version['name']}", kind)] = {"$schema": "http://json-schema.org/draft-07/schema#",
                                                            **schema}
    return out


def kinds_in(paths: list[Path]) -> set[tuple[str, str]]:
    found = set()
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc:
                found.add((doc["apiVersion"], doc["kind"]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("swagger", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--crds", type=Path, nargs="*", default=[])
    parser.add_argument("--manifests", type=Path, nargs="+", required=True)
    args = parser.parse_args()
    definitions = json.loads(args.swagger.read_text())["definitions"]
    index, custom = gvk_index(definitions), crd_schemas(args.crds)
    args.out.mkdir(parents=True, exist_ok=True)
    for api_version, kind in sorted(kinds_in(args.manifests)):
        target = args.out / file_name(api_version, kind)
        if (api_version, kind) in custom:
            schema = custom[(api_version, kind)]
        elif (api_version, kind) in index:
            schema = builtin_schema(definitions, index[(api_version, kind)])
        else:
            continue  # kubeconform reports it (no -ignore-missing-schemas): a kind nobody can validate fails
        target.write_text(json.dumps(schema))
        print(f"{api_version} {kind} -> {target.name}")


if __name__ == "__main__":
    main()
