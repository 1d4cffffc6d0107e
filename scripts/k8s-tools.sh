#!/usr/bin/env bash
# Build the Kubernetes binaries the operator's tests and chart checks run (no Docker, no kind: like envtest, a
# real kube-apiserver + etcd with no kubelet), from the Go module proxy, cached outside the clone and keyed by
# version:  ~/.cache/eventpipe/k8s-<K8S_VERSION>/bin/{kube-apiserver,kubectl,etcd,helm}
# A fresh clone on the same machine reuses them; a fresh machine builds them once (several minutes of CPU).
# Usage: scripts/k8s-tools.sh            -> builds what is missing, prints the bin dir on stdout
#        scripts/k8s-tools.sh --check    -> prints the bin dir if every binary is there, else exits 1
#        scripts/k8s-tools.sh --node     -> also the node's binaries (scripts/cluster.sh): kubelet,
#                                           kube-controller-manager, kube-scheduler, kube-proxy, same version
#        scripts/k8s-tools.sh --node-only -> only those
#        scripts/k8s-tools.sh --helm     -> only helm (the static checks need nothing else)
source "$(dirname "$0")/common.sh"

K8S_VERSION="${EVENTPIPE_K8S_VERSION:-1.34.4}"      # k8s.io/kubernetes v1.Y.Z; staging modules are v0.Y.Z
ETCD_VERSION="${EVENTPIPE_ETCD_VERSION:-3.6.16}"    # go.etcd.io/etcd/server/v3
HELM_VERSION="${EVENTPIPE_HELM_VERSION:-3.21.4}"    # helm.sh/helm/v3

root="$EVENTPIPE_CACHE/k8s-$K8S_VERSION"
bin="$root/bin"
build="$root/build"
mkdir -p "$bin" "$build"

# Each binary is keyed by its own version through a stamp file beside it, so bumping one rebuilds only that one.
have() { [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" > "$bin/.$1.version"; }

node=""
[ "${1:-}" = "--node" ] && node=1
if [ "${1:-}" = "--check" ]; then
  have kube-apiserver "$K8S_VERSION" && have kubectl "$K8S_VERSION" && have etcd "$ETCD_VERSION" &&
    have helm "$HELM_VERSION" && { echo "$bin"; exit 0; }
  exit 1
fi

command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null 2>&1 || {
  log "no Go toolchain: installing Debian's golang-go"
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >&2
}
# Static binaries. GOTOOLCHAIN stays "auto": an installed Go older than the modules need (e.g. Debian's) fetches
# the required toolchain from the Go module proxy; a new enough one is used as it is.
export GOFLAGS="-mod=mod" CGO_ENABLED=0

# A throwaway module in $1 that requires $2@$3; extra replace lines come on stdin; then `go mod tidy`.
prepare_module() {
  local dir="$1" mod="$2" ver="$3" imports="$4"
  mkdir -p "$dir"
  {
    echo "module eventpipe.local/buildtools"
    echo
    echo "go 1.24.0"
    echo
    echo "require $mod $ver"
    echo
    cat
  } > "$dir/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "// Package tools pins the commands this module builds."
    echo "package tools"
    echo
    echo "import ("
    for imp in $imports; do echo "	_ \"$imp\""; done
    echo ")"
  } > "$dir/tools.go"
  (cd "$dir" && go mod tidy >&2)
}

NODE_CMDS="kubelet kube-controller-manager kube-scheduler kube-proxy"

# $1: module folder; $2...: the k8s.io/kubernetes/cmd/<name> commands to build into $bin.
build_kubernetes_cmds() {
  local dir="$1" minor; shift
  minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  local imports="" c
  for c in "$@"; do imports="$imports k8s.io/kubernetes/cmd/$c"; done
  log "building $* v$K8S_VERSION from the Go module proxy (takes minutes)"
  # k8s.io/kubernetes points its staging modules at ./staging/src/...; pin each to the published v0.Y.Z instead.
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [ -f "$gomod" ] || { echo "could not download k8s.io/kubernetes@v$K8S_VERSION" >&2; exit 1; }
  grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" | awk '{print $1}' | sort -u |
    while read -r m; do echo "replace $m => $m v0.${K8S_VERSION#*.}"; done |
    prepare_module "$dir" k8s.io/kubernetes "v$K8S_VERSION" "$imports"
  local v="k8s.io/component-base/version" c="k8s.io/client-go/pkg/version"
  local ld="-s -w -X $v.gitVersion=v$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  ld="$ld -X $c.gitVersion=v$K8S_VERSION -X $c.gitMajor=1 -X $c.gitMinor=$minor -X $c.gitTreeState=clean"
  (cd "$dir" && go build -trimpath -ldflags="$ld" -o "$bin/" $imports >&2)
  for c in "$@"; do stamp "$c" "$K8S_VERSION"; done
}

build_kubernetes() { build_kubernetes_cmds "$build/kubernetes-$K8S_VERSION" kube-apiserver kubectl; }

# The node's commands in a module folder of their own (same version, same pins): a cache that already holds
# kube-apiserver gains them without touching its module; Go's build cache shares the packages they have in common.
build_node() {
  local missing=() c
  for c in $NODE_CMDS; do have "$c" "$K8S_VERSION" || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] || build_kubernetes_cmds "$build/kubernetes-node-$K8S_VERSION" "${missing[@]}"
}

build_etcd() {
  local dir="$build/etcd-$ETCD_VERSION"
  log "building etcd v$ETCD_VERSION from the Go module proxy"
  # etcd's server module replaces its sibling modules with ../ paths; pin them to the same release.
  printf 'replace %s => %s v%s\n' \
    go.etcd.io/etcd/api/v3 go.etcd.io/etcd/api/v3 "$ETCD_VERSION" \
    go.etcd.io/etcd/client/pkg/v3 go.etcd.io/etcd/client/pkg/v3 "$ETCD_VERSION" \
    go.etcd.io/etcd/client/v3 go.etcd.io/etcd/client/v3 "$ETCD_VERSION" \
    go.etcd.io/etcd/pkg/v3 go.etcd.io/etcd/pkg/v3 "$ETCD_VERSION" |
    prepare_module "$dir" go.etcd.io/etcd/server/v3 "v$ETCD_VERSION" "go.etcd.io/etcd/server/v3"
  (cd "$dir" && go build -trimpath -ldflags="-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3 >&2)
  stamp etcd "$ETCD_VERSION"
}

build_helm() {
  local dir="$build/helm-$HELM_VERSION" minor
  minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  log "building helm v$HELM_VERSION from the Go module proxy"
  prepare_module "$dir" helm.sh/helm/v3 "v$HELM_VERSION" "helm.sh/helm/v3/cmd/helm" < /dev/null
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
  ld="$ld -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  (cd "$dir" && go build -trimpath -ldflags="$ld" -o "$bin/helm" helm.sh/helm/v3/cmd/helm >&2)
  stamp helm "$HELM_VERSION"
}

if [ "${1:-}" = "--helm" ]; then have helm "$HELM_VERSION" || build_helm; echo "$bin"; exit 0; fi
# Only the node's binaries (another build of the control plane's may be under way in the same cache).
if [ "${1:-}" = "--node-only" ]; then build_node; echo "$bin"; exit 0; fi
have kube-apiserver "$K8S_VERSION" && have kubectl "$K8S_VERSION" || build_kubernetes
have etcd "$ETCD_VERSION" || build_etcd
have helm "$HELM_VERSION" || build_helm
[ -z "$node" ] || build_node
echo "$bin"
