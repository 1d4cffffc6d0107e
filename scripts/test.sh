#!/usr/bin/env bash
# The whole test suite, as CI runs it: Rust tests and lints, then each image's Python tests in its own virtualenv.
# Usage: scripts/test.sh [stage ...]   (stages: static rust python-lint core fuzz jobs ingest consumer cli docs dbt gx
#                                              operator airflow e2e monitoring dashboard images cluster)
# Every server a test needs is started by the tests' fixtures on 127.0.0.1 (tests/helpers/servers.py).
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
toolchain="$(rustc --version | awk '{print $2}')"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$EVENTPIPE_CACHE/cargo-target-$toolchain}"
export PYTHONDONTWRITEBYTECODE=1

failures=()
run_stage() {
  local name="$1"; shift
  log "stage $name"
  local start=$SECONDS
  if "$@"; then
    log "stage $name passed in $((SECONDS - start))s"
  else
    log "stage $name FAILED in $((SECONDS - start))s"
    failures+=("$name")
  fi
}

# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
pytest_in() {
  local venv="$1"; shift
  "$REPO_ROOT/scripts/venv.sh" "$venv"
  "$VENVS_DIR/$venv/bin/python" -m pytest "$@"
}

# The second clippy checks the core without its default `parquet` feature, as the fuzz crate builds it (only the
# core itself is checked again: its dependencies keep their features).
stage_rust() {
  (cd rust && cargo test --workspace --quiet && cargo clippy --workspace --all-targets --quiet -- -D warnings \
    && cargo clippy -p eventpipe-core --no-default-features --all-targets --quiet -- -D warnings)
}

# mypy of a venv, its incremental cache kept outside the clone (one per venv: their dependencies differ), so a
# fresh clone re-checks only what changed (mypy compares the files' hashes when their times differ).
mypy_in() {
  local venv="$1"; shift
  "$VENVS_DIR/$venv/bin/mypy" --cache-dir "$EVENTPIPE_CACHE/mypy/$venv" "$@"
}

# mypy runs per package (-p) with the src folders on MYPYPATH: passing paths makes it see each file twice.
mypy_packages() {
  local venv="$1" path="$2"; shift 2
  local args=()
  for pkg in "$@"; do args+=(-p "$pkg"); done
  MYPYPATH="$path" mypy_in "$venv" --config-file "$REPO_ROOT/pyproject.toml" "${args[@]}"
}

stage_python_lint() {
  "$REPO_ROOT/scripts/venv.sh" services && "$REPO_ROOT/scripts/venv.sh" operator &&
  "$REPO_ROOT/scripts/venv.sh" analytics &&
  "$VENVS_DIR/services/bin/ruff" check . &&
  mypy_packages services \
    "services/common/src:services/jobs/src:services/ingest/src:services/consumer/src:services/cli/src" \
    eventpipe_common eventpipe_jobs eventpipe_ingest eventpipe_consumer eventpipe_cli &&
  mypy_packages operator "operator/src:services/common/src" eventpipe_operator &&
  mypy_packages analytics "gx/src:dbt/python:services/common/src" eventpipe_quality eventpipe_transform
}

# Every deployable file, statically (scripts/static.sh): actionlint, yamllint, tofu fmt/validate, helm lint,
# kubeconform against Kubernetes 1.34's schemas, and one checkov run over terraform/, the Dockerfiles, the
# workflows, the rendered chart and the operator's rendered children of the examples.
stage_static()    { "$REPO_ROOT/scripts/static.sh"; }
stage_core()      { pytest_in services tests/core; }
stage_fuzz()      { "$REPO_ROOT/scripts/fuzz.sh" 45; }   # bounded libFuzzer run of the core's parser (nightly)
stage_jobs()      { pytest_in services tests/jobs; }   # the job store on SQLite and a real PostgreSQL
stage_ingest()    { pytest_in services tests/ingest tests/common; }
stage_cli()       { pytest_in services tests/cli; }
# The docs' commands (README.md, the component READMEs, the stack's "Where to look") against a live local stack,
# and docs/properties.md against the tests' Property docstrings. dbt and GX run in the analytics venv; the
# monitoring README's promtool comes from Debian's prometheus package.
stage_docs()      { "$REPO_ROOT/scripts/venv.sh" analytics && "$REPO_ROOT/scripts/tools.sh" prometheus >/dev/null &&
                    pytest_in services tests/docs; }
stage_consumer()  { pytest_in services tests/consumer; }
stage_dbt()       { "$REPO_ROOT/scripts/venv.sh" fakesnow && pytest_in analytics tests/dbt; }
# Great Expectations quality gates (one pytest process: GX imports slowly), then mypy on the package.
stage_gx()        { pytest_in analytics tests/gx && mypy_in analytics -p eventpipe_quality; }
# Airflow 3 DAG factory (its own venv: Airflow wants SQLAlchemy 2.1, GX 2.0): DagBag from files and from operator
# ConfigMaps on a real kube-apiserver, KPO pod specs, properties, and dag.test() running dbt and GX for real from
# the analytics venv. One pytest process (Airflow imports slowly); then lint and types of the package.
stage_airflow()   { "$REPO_ROOT/scripts/venv.sh" analytics && "$REPO_ROOT/scripts/venv.sh" operator &&
                    "$REPO_ROOT/scripts/k8s-tools.sh" >/dev/null && pytest_in airflow tests/airflow &&
                    "$VENVS_DIR/airflow/bin/ruff" check dags tests/airflow tests/cluster/airflow &&
                    mypy_packages airflow "dags/python/src:services/common/src" eventpipe_dags; }
# The whole local stack as subprocesses; dbt and GX run in the analytics venv, so build it first.
stage_e2e()       { "$REPO_ROOT/scripts/venv.sh" analytics && pytest_in services tests/e2e; }
# The operator against a real etcd + kube-apiserver (binaries built once by k8s-tools.sh, cached by version),
# then lint and types of its package. The services venv runs the maintenance CronJob's command on a real table.
stage_operator()  { "$REPO_ROOT/scripts/k8s-tools.sh" >/dev/null && "$REPO_ROOT/scripts/venv.sh" services &&
                    pytest_in operator tests/operator &&
                    "$VENVS_DIR/operator/bin/ruff" check operator tests/operator && mypy_in operator operator/src; }

# Alert rules (promtool check + unit tests), the chart's PrometheusRule and dashboard ConfigMaps (helm template),
# the Grafana dashboards' JSON. Prometheus from Debian's packages, helm from k8s-tools.sh (cached by version).
stage_monitoring() {
  "$REPO_ROOT/scripts/tools.sh" prometheus >/dev/null && "$REPO_ROOT/scripts/k8s-tools.sh" >/dev/null &&
    pytest_in dashboard tests/monitoring
}
# The Streamlit dashboard: Properties 32-35, AppTest (jobs by state from a real Prometheus scraping the consumer's
# gauge; EventPipelines' status from a real kube-apiserver + etcd, binaries from k8s-tools.sh, cached by version),
# then one local stack (`eventpipe up` with Prometheus) that the Grafana panels' PromQL and a real Chromium
# (selenium) run against; then types of the package and pages.
stage_dashboard() {
  "$REPO_ROOT/scripts/tools.sh" prometheus >/dev/null && "$REPO_ROOT/scripts/tools.sh" chromium >/dev/null &&
    "$REPO_ROOT/scripts/k8s-tools.sh" >/dev/null &&
    "$REPO_ROOT/scripts/venv.sh" services && "$REPO_ROOT/scripts/venv.sh" analytics &&
    pytest_in dashboard tests/dashboard &&
    MYPYPATH=dashboard/src mypy_in dashboard --config-file "$REPO_ROOT/pyproject.toml" \
      -p eventpipe_dashboard &&
    MYPYPATH=dashboard/src mypy_in dashboard --config-file "$REPO_ROOT/pyproject.toml" \
      dashboard/app.py dashboard/views
}

# The container images (envs/*.Dockerfile): hadolint, then each built with podman (cached by the hash of its inputs
# under ~/.cache/eventpipe/images) and smoke-tested as it runs (non-root, read-only root, no network).
stage_images()    { "$REPO_ROOT/scripts/images.sh" lint && "$REPO_ROOT/scripts/skaffold-check.sh" &&
                    "$REPO_ROOT/scripts/images.sh" smoke services operator analytics dashboard airflow; }
# A real node (scripts/cluster.sh: kubelet + containerd + kube-proxy beside the control plane) running the chart
# and a pipeline as pods, then (tests/cluster/airflow, the airflow venv) one DAG run whose dbt and GX tasks are
# KubernetesPodOperator pods of the analytics image; the cluster goes down (every process by PID, the bridge
# removed) whatever the result.
stage_cluster()   {
  local rc=0
  "$REPO_ROOT/scripts/venv.sh" services && "$REPO_ROOT/scripts/venv.sh" analytics &&
    "$REPO_ROOT/scripts/venv.sh" airflow &&
    "$REPO_ROOT/scripts/cluster.sh" up services operator analytics >/dev/null || rc=1
  if [ $rc = 0 ]; then
    pytest_in services tests/cluster --ignore=tests/cluster/airflow || rc=1
    pytest_in airflow tests/cluster/airflow || rc=1
  fi
  "$REPO_ROOT/scripts/cluster.sh" down || rc=1
  return $rc
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(static rust python-lint core fuzz jobs ingest consumer cli docs dbt gx operator airflow e2e monitoring dashboard images cluster)
for stage in "${stages[@]}"; do
  run_stage "$stage" "stage_${stage//-/_}"
done

if [ ${#failures[@]} -gt 0 ]; then
  log "failed stages: ${failures[*]}"
  exit 1
fi
log "all stages passed: ${stages[*]}"
