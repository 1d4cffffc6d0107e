#!/usr/bin/env bash
# Shared helpers for the build and test scripts: where caches live and how to get uv.
# Slow builds (Rust targets, Go binaries, npm tools, wheels) are cached outside the clone, keyed by version,
# so a fresh clone on the same machine reuses them and a fresh machine builds them once.
set -euo pipefail

# Physical path (cd -P): run from a folder whose scripts/ is a symlink to this one (tests/docs runs the READMEs'
# commands so), the virtualenvs are still built here, with this checkout's paths in them.
REPO_ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EVENTPIPE_CACHE="${EVENTPIPE_CACHE:-$HOME/.cache/eventpipe}"
VENVS_DIR="$REPO_ROOT/.venvs"
PYTHON_VERSION="${EVENTPIPE_PYTHON:-3.11}"
export REPO_ROOT EVENTPIPE_CACHE VENVS_DIR
export UV_LINK_MODE=copy
mkdir -p "$EVENTPIPE_CACHE"

log() { printf '\033[1;34m[eventpipe]\033[0m %s\n' "$*" >&2; }

ensure_uv() {
  if ! command -v uv >/dev/null 2>&1; then
    log "installing uv from PyPI"
    python3 -m pip install --quiet --user uv
    export PATH="$HOME/.local/bin:$PATH"
  fi
}
