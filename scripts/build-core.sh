#!/usr/bin/env bash
# Build the Rust core (rust/) into an abi3 wheel with maturin. The cargo target dir lives in the cache, keyed by
# the Rust toolchain version, so rebuilds are incremental across clones. Prints nothing on stdout.
# Usage: scripts/build-core.sh [FEATURES]   FEATURES: cargo features of rust/python, comma-separated, e.g. `testing`
# (the functions only tests and benchmarks call: scripts/venv.sh builds with it; the images' wheel has none).
# The wheel is cached by the hash of rust/ and the feature set; its path goes to .venvs/core-wheel[-FEATURES].path.
source "$(dirname "$0")/common.sh"
features="${1:-}"
ensure_uv
toolchain="$(rustc --version | awk '{print $2}')"
# A second checkout (git worktree) building at the same time may set its own CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$EVENTPIPE_CACHE/cargo-target-$toolchain}"
tools="$EVENTPIPE_CACHE/tools-venv"
if [ ! -x "$tools/bin/maturin" ]; then
  log "installing maturin into $tools"
  uv venv --quiet --python "$PYTHON_VERSION" "$tools"
  uv pip install --quiet --python "$tools/bin/python" "maturin>=1.9,<2"
fi
src_hash="$(cd "$REPO_ROOT/rust" && git ls-files -co --exclude-standard | sort | xargs sha256sum | sha256sum | cut -c1-16)"
wheels="$EVENTPIPE_CACHE/wheels/$src_hash${features:+-${features//,/-}}"
if ! ls "$wheels"/eventpipe_core-*.whl >/dev/null 2>&1; then
  log "building the Rust core wheel (maturin, release${features:+, features $features})"
  rm -rf "$wheels"
  "$tools/bin/maturin" build --quiet --release --manifest-path "$REPO_ROOT/rust/python/Cargo.toml" \
    ${features:+--features "$features"} --interpreter python3 --out "$wheels" >&2
fi
# Which wheel this checkout built, for scripts/venv.sh and scripts/images.sh (per checkout: two checkouts may build
# different wheels).
mkdir -p "$VENVS_DIR"
ls "$wheels"/eventpipe_core-*.whl | head -n 1 > "$VENVS_DIR/core-wheel${features:+-${features//,/-}}.path"
