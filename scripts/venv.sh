#!/usr/bin/env bash
# Create or update the virtualenv .venvs/NAME from envs/NAME.txt (one environment per container image).
# A line "# needs: eventpipe_core" in the file installs the Rust core wheel built by scripts/build-core.sh, with the
# `testing` feature (these venvs run the tests and benchmarks; the images install the wheel without it).
# Usage: scripts/venv.sh NAME
source "$(dirname "$0")/common.sh"
name="${1:?usage: scripts/venv.sh NAME}"
req="$REPO_ROOT/envs/$name.txt"
[ -f "$req" ] || { echo "no such environment: envs/$name.txt" >&2; exit 2; }
venv="$VENVS_DIR/$name"
ensure_uv

core_wheel=""
if grep -q '^# needs: eventpipe_core' "$req"; then
  "$REPO_ROOT/scripts/build-core.sh" testing >&2
  core_wheel="$(cat "$VENVS_DIR/core-wheel-testing.path")"
fi

stamp="$(cat "$req" | sha256sum | cut -c1-16)-${core_wheel:-none}"
if [ -f "$venv/.stamp" ] && [ "$(cat "$venv/.stamp")" = "$stamp" ]; then
  exit 0
fi
log "preparing virtualenv .venvs/$name"
[ -x "$venv/bin/python" ] || uv venv --quiet --python "$PYTHON_VERSION" "$venv"
cd "$REPO_ROOT"
# The core wheel joins the same resolution: packages of the repo (ingest, consumer) depend on eventpipe-core.
uv pip install --quiet --compile-bytecode --python "$venv/bin/python" -r "$req" ${core_wheel:+"$core_wheel"}
if [ -n "$core_wheel" ]; then
  uv pip install --quiet --reinstall-package eventpipe-core --python "$venv/bin/python" "$core_wheel"
fi
echo "$stamp" > "$venv/.stamp"
