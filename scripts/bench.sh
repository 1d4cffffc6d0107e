#!/usr/bin/env bash
# Run the benchmarks (results: docs/benchmarks.md). Usage: scripts/bench.sh [w1|w2|consumer|w3 ...]
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
"$REPO_ROOT/scripts/venv.sh" services
benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(w1 w2 consumer w3)
for b in "${benches[@]}"; do
  log "benchmark $b"
  "$VENVS_DIR/services/bin/python" -m "bench.$b"
done
