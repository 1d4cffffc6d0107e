#!/usr/bin/env bash
# Install the non-Python tools the tests and the local stack need, cached outside the clone.
#   scripts/tools.sh node       kinesalite (npm) -> prints its bin dir
#   scripts/tools.sh postgres   Debian's PostgreSQL server (apt) when missing
#   scripts/tools.sh prometheus Debian's Prometheus server and promtool (apt) when missing -> prints its bin dir
#   scripts/tools.sh chromium   Debian's Chromium and ChromeDriver (apt) when missing, for the browser tests
source "$(dirname "$0")/common.sh"

KINESALITE_VERSION=3.3.3

# Other agents and CI steps may hold dpkg's lock: wait for it instead of failing. No recommends: a Prometheus
# without its node exporter and a Chromium without its fonts bundle are enough here. Debian starts no daemon
# in a container without systemd; the stack and the tests start their own on 127.0.0.1.
apt_install() {
  apt-get -o DPkg::Lock::Timeout=900 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "$@" >&2
}

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
  prometheus)
    if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
      log "installing Prometheus from Debian's packages"
      apt_install prometheus
    fi
    dirname "$(command -v promtool)"
    ;;
  chromium)
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
      log "installing Chromium and ChromeDriver from Debian's packages"
      apt_install chromium chromium-driver
    fi
    echo /usr/bin
    ;;
  *)
    echo "usage: scripts/tools.sh node|postgres|prometheus|chromium" >&2; exit 2 ;;
esac
