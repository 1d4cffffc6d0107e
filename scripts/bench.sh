#!/usr/bin/env bash
# Run the benchmarks (results: docs/benchmarks.md). Usage: scripts/bench.sh [w1|w2|consumer|consumer_state|w3 ...]
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(w1 w2 consumer consumer_state w3)
for b in "${benches[@]}"; do
  log "benchmark $b"
  venv=services
  [ "$b" = w1 ] && venv=bench   # W1's peers (polars, msgspec, simdjson) live in envs/bench.txt
  "$REPO_ROOT/scripts/venv.sh" "$venv"
  if [ "$b" = w1 ]; then
    ensure_uv
    # Every peer at its newest release (envs/bench.txt names them without upper pins); the table names the versions.
    uv pip install --quiet --upgrade --python "$VENVS_DIR/bench/bin/python" -r "$REPO_ROOT/envs/bench.txt"
  fi
  "$VENVS_DIR/$venv/bin/python" -m "bench.$b"
done
# The pictures in docs/benchmarks.md, from the results just recorded (bench/charts.py; matplotlib is in envs/bench.txt).
"$REPO_ROOT/scripts/venv.sh" bench
"$VENVS_DIR/bench/bin/python" -m bench.charts
