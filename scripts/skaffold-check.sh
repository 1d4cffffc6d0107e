#!/usr/bin/env bash
# Check skaffold.yaml against skaffold's own JSON schema for its apiVersion, taken from skaffold's Go module
# (github.com/GoogleContainerTools/skaffold/v2, cached by the Go module cache), plus the files it names exist.
# (skaffold itself is not built here: its module is large and this machine has no Docker for its local builder.)
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
SKAFFOLD_VERSION="${EVENTPIPE_SKAFFOLD_VERSION:-2.16.1}"
api="$(sed -n 's/^apiVersion: skaffold\/\(.*\)$/\1/p' skaffold.yaml)"
dir="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json \
  "github.com/GoogleContainerTools/skaffold/v2@v$SKAFFOLD_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
schema="$dir/docs-v2/content/en/schemas/$api.json"
[ -f "$schema" ] || { echo "no schema for skaffold/$api in skaffold v$SKAFFOLD_VERSION" >&2; exit 1; }
tools="$EVENTPIPE_CACHE/schema-tools"
if [ ! -x "$tools/bin/python" ]; then
  ensure_uv
  uv venv --quiet --python "$PYTHON_VERSION" "$tools"
  uv pip install --quiet --python "$tools/bin/python" "jsonschema>=4.20" pyyaml
fi
"$tools/bin/python" - "$schema" skaffold.yaml <<'PY'
import json, sys
from pathlib import Path
import jsonschema, yaml
schema = json.loads(Path(sys.argv[1]).read_text())
docs = list(yaml.safe_load_all(Path(sys.argv[2]).read_text()))
for doc in docs:
    jsonschema.validate(doc, schema)
    for art in doc["build"]["artifacts"]:
        assert Path(art["context"], art["docker"]["dockerfile"]).is_file(), art
    for prof in doc.get("profiles", []):
        for art in prof.get("build", {}).get("artifacts", []):
            assert Path(art["custom"]["buildCommand"]).is_file(), art
    for rel in doc["deploy"]["helm"]["releases"]:
        assert Path(rel["chartPath"], "Chart.yaml").is_file(), rel
    for path in doc.get("manifests", {}).get("rawYaml", []):
        assert Path(path).is_file(), path
print(f"skaffold.yaml: valid {doc['apiVersion']} ({len(docs)} document(s))")
PY
