#!/usr/bin/env bash
# Install the non-Python tools the tests and the local stack need, cached outside the clone.
#   scripts/tools.sh node       kinesalite (npm) -> prints its bin dir
#   scripts/tools.sh postgres   Debian's PostgreSQL server (apt) when missing
source "$(dirname "$0")/common.sh"

KINESALITE_VERSION=3.3.3

case "${1:-}" in
  node)
    dir="$EVENTPIPE_CACHE/node-kinesalite-$KINESALITE_VERSION"
    if [ ! -x "$dir/node_modules/.bin/kinesalite" ]; then
      log "installing kinesalite $KINESALITE_VERSION from npm into $dir"
      mkdir -p "$dir"
      (cd "$dir" && npm install --silent --no-audit --no-fund "kinesalite@$KINESALITE_VERSION" >&2)
    fi
    echo "$dir/node_modules/.bin"
    ;;
  postgres)
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
      log "installing PostgreSQL from Debian's packages"
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    fi
    dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)"
    ;;
  *)
    echo "usage: scripts/tools.sh node|postgres" >&2; exit 2 ;;
esac
