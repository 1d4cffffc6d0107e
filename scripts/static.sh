#!/usr/bin/env bash
# Static checks of every deployable file (the `static` stage of scripts/test.sh):
#   actionlint   .github/workflows/
#   yamllint     the repository's YAML (.yamllint.yaml)
#   tofu         fmt -check of terraform/; validate of each module where the providers can be had (see below)
#   helm lint    the chart, strict, with default and with every optional part on
#   kubeconform  the rendered chart, the operator's rendered children of examples/*.yaml and the examples
#                themselves, strict, against Kubernetes $K8S_VERSION's OpenAPI (the k8s.io/kubernetes Go module)
#                and the CRDs (ours; the Prometheus Operator's from its Go module)
#   checkov      once over all of it: terraform/, envs/*.Dockerfile, .github/workflows/, the rendered manifests
#                (.checkov.yaml: the checks skipped everywhere, each with its reason; other skips are inline)
# Tools come from scripts/static-tools.sh and scripts/k8s-tools.sh (helm), cached by version.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
K8S_VERSION="${EVENTPIPE_K8S_VERSION:-1.34.4}"
PROM_OPERATOR_VERSION="${EVENTPIPE_PROM_OPERATOR_VERSION:-0.85.0}"   # CRDs of ServiceMonitor, PodMonitor, PrometheusRule
command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"

{ read -r py_bin; read -r go_bin; } < <("$REPO_ROOT/scripts/static-tools.sh")
k8s_bin="$("$REPO_ROOT/scripts/k8s-tools.sh" --helm)"
"$REPO_ROOT/scripts/venv.sh" operator
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
step() { local name="$1"; shift; log "static: $name"; "$@" || { log "static: $name FAILED"; failed+=("$name"); }; }

step actionlint "$go_bin/actionlint" -no-color -shellcheck shellcheck -pyflakes "" .github/workflows/*.yml
step yamllint "$py_bin/yamllint" --strict -c .yamllint.yaml -f parsable .

# OpenTofu: fmt works offline. validate needs each module's providers: `tofu init -backend=false` fetches them from
# the provider registry, which this machine may not reach; then validation is reported as not run, with the reason.
tofu_validate() {
  local dir rc=0 out
  export TF_PLUGIN_CACHE_DIR="$EVENTPIPE_CACHE/tofu-plugins" TF_IN_AUTOMATION=1
  mkdir -p "$TF_PLUGIN_CACHE_DIR"
  cp -r terraform "$work/terraform"   # init writes .terraform/ and a lock file: not into the clone
  for dir in "$work"/terraform/modules/* "$work"/terraform/examples/*; do
    # Offline: the configuration parses and every module it calls resolves.
    (cd "$dir" && "$go_bin/tofu" get -no-color >/dev/null) || { rc=1; continue; }
    if ! out="$(cd "$dir" && "$go_bin/tofu" init -backend=false -input=false -no-color 2>&1)"; then
      if grep -qiE "could not connect|dial tcp|no such host|i/o timeout|connection refused" <<<"$out"; then
        # Every module needs the same provider: one unreachable registry says it for all of them.
        log "tofu validate NOT RUN (terraform/modules/*, terraform/examples/*): the provider hashicorp/aws cannot be downloaded here:"
        grep -iE "could not connect|dial tcp|no such host|timeout|refused" <<<"$out" | head -n 3 >&2
        for dir in "$work"/terraform/modules/* "$work"/terraform/examples/*; do
          (cd "$dir" && "$go_bin/tofu" get -no-color >/dev/null) || rc=1
        done
        return $rc
      fi
      echo "$out" >&2; rc=1; continue
    fi
    (cd "$dir" && "$go_bin/tofu" validate -no-color) || rc=1
  done
  return $rc
}
# The environment may name a CLI configuration that does not exist (tofu then warns on every command).
if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -f "$TF_CLI_CONFIG_FILE" ]; then
  : > "$work/tofurc" && export TF_CLI_CONFIG_FILE="$work/tofurc"
fi
step "tofu fmt" "$go_bin/tofu" fmt -check -recursive -diff terraform
step "tofu validate" tofu_validate

# Render what gets deployed: the chart (defaults; every optional part on) and the operator's children of the examples.
mkdir -p "$work/render"
render_chart() {
  "$k8s_bin/helm" template eventpipe helm/eventpipe-operator -n eventpipe-system > "$work/render/chart-default.yaml" &&
  "$k8s_bin/helm" template eventpipe helm/eventpipe-operator -n eventpipe-system --set dashboard.enabled=true \
    --set metrics.serviceMonitor.enabled=true --set monitoring.prometheusRule.enabled=true \
    --set 'watchNamespaces={shop,analytics}' \
    --set serviceAccount.roleArn=arn:aws:iam::123456789012:role/eventpipe-operator > "$work/render/chart-full.yaml" &&
  "$k8s_bin/helm" template eventpipe helm/eventpipe-operator -n eventpipe-system --set rbac.clusterWide=true \
    --set replicaCount=1 > "$work/render/chart-cluster-wide.yaml"
}
step "helm lint" "$k8s_bin/helm" lint --strict helm/eventpipe-operator --set dashboard.enabled=true \
  --set metrics.serviceMonitor.enabled=true --set monitoring.prometheusRule.enabled=true
step "helm template" render_chart
step "types of the render scripts" env MYPYPATH=operator/src:services/common/src \
  "$VENVS_DIR/operator/bin/mypy" --cache-dir "$EVENTPIPE_CACHE/mypy/operator-strict" --strict scripts/k8s_schemas.py scripts/render_pipelines.py
step "render operator children" "$VENVS_DIR/operator/bin/python" scripts/render_pipelines.py "$work/render" examples/*.yaml

# Schemas for the kinds present, in kubeconform's layout, cached by Kubernetes version.
kubeconform_check() {
  local swagger prom schemas="$EVENTPIPE_CACHE/k8s-schemas-$K8S_VERSION"
  swagger="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/api/openapi-spec/swagger.json"
  prom="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@v$PROM_OPERATOR_VERSION" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/example/prometheus-operator-crd"
  [ -f "$swagger" ] && [ -d "$prom" ] || { echo "no OpenAPI document or CRDs: $swagger $prom" >&2; return 1; }
  # Schemas are rewritten every run (a changed CRD must not validate against its old schema); they are small.
  rm -rf "$schemas" && mkdir -p "$schemas"
  "$py_bin/python" scripts/k8s_schemas.py "$swagger" "$schemas" --crds crds/*.yaml \
    "$prom"/monitoring.coreos.com_{servicemonitors,podmonitors,prometheusrules}.yaml \
    --manifests "$work"/render/*.yaml examples/*.yaml >/dev/null || return 1
  local loc="$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json"
  # The schemas must be able to refuse: a Deployment with a misspelt field has to fail.
  printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 1\n' > "$work/bad.yaml"
  if "$go_bin/kubeconform" -strict -schema-location "$loc" "$work/bad.yaml" >/dev/null 2>&1; then
    echo "kubeconform accepted a Deployment with spec.replica: the schemas check nothing" >&2; return 1
  fi
  "$go_bin/kubeconform" -strict -summary -schema-location "$loc" "$work"/render/*.yaml examples/*.yaml &&
  # The schema generator's own tests (real kubeconform must pass valid objects and refuse invalid ones), and the
  # ServiceAccount names Terraform's roles trust against the chart's and the operator's.
  EVENTPIPE_KUBECONFORM="$go_bin/kubeconform" EVENTPIPE_K8S_SWAGGER="$swagger" EVENTPIPE_HELM="$k8s_bin/helm" \
    "$VENVS_DIR/operator/bin/python" -m pytest -q -p no:cacheprovider tests/static
}
step kubeconform kubeconform_check

# checkov once over everything, from one folder (with several -d it prints each report once per folder): its
# start-up (imports) is most of its time.
checkov_all() {
  mkdir -p "$work/scan" && cp -r terraform envs .github "$work/scan/" && cp -r "$work/render" "$work/scan/rendered"
  "$py_bin/checkov" --config-file .checkov.yaml --framework terraform kubernetes dockerfile github_actions \
    -d "$work/scan"
}
step checkov checkov_all

if [ ${#failed[@]} -gt 0 ]; then
  log "static checks failed: ${failed[*]}"
  exit 1
fi
log "static checks passed"
