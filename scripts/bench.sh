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
  "$VENVS_DIR/$venv/bin/python" -m "bench.$b"
done
