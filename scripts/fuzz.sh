#!/usr/bin/env bash
# A bounded libFuzzer run of the core's parser target (rust/fuzz, cargo-fuzz, nightly Rust for the sanitizer
# flags). cargo-fuzz is installed from crates.io into the cache once. The target builds the core without its
# `parquet` feature (rust/fuzz/Cargo.toml): with it, parquet under the sanitizer was two thirds of a cold build.
# Usage: scripts/fuzz.sh [SECONDS] (default 45)
source "$(dirname "$0")/common.sh"
seconds="${1:-45}"
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "scripts/fuzz.sh: needs the nightly Rust toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
fuzz_version="0.13.2"
root="$EVENTPIPE_CACHE/cargo-fuzz-$fuzz_version"
if [ ! -x "$root/bin/cargo-fuzz" ]; then
  log "installing cargo-fuzz $fuzz_version into $root"
  # --debug: cargo-fuzz only drives cargo; unoptimised, it compiles in about two thirds of the time.
  cargo install --quiet --locked --debug --root "$root" cargo-fuzz --version "$fuzz_version"
fi
export PATH="$root/bin:$PATH"
export CARGO_TARGET_DIR="$EVENTPIPE_CACHE/cargo-target-fuzz-$(rustc +nightly --version | awk '{print $2"-"$4}' | tr -d ')')"
corpus="$EVENTPIPE_CACHE/fuzz-corpus/parse"
mkdir -p "$corpus"
cd "$REPO_ROOT/rust"
log "fuzzing the parser for ${seconds}s"
cargo +nightly fuzz run --fuzz-dir fuzz parse "$corpus" fuzz/seeds -- \
  -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
