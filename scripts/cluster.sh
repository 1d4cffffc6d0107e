#!/usr/bin/env bash
# A real single-node Kubernetes cluster on a machine without Docker (what kind gives Docker users):
#   etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kubelet + kube-proxy (iptables), all
#   v$K8S_VERSION from scripts/k8s-tools.sh (cached), Debian's containerd + runc, the CNI bridge/host-local/
#   loopback/portmap plugins, and the project's images (scripts/images.sh) imported into containerd's k8s.io
#   namespace.
# Network: the script creates one bridge ($EVENTPIPE_CLUSTER_BRIDGE, $POD_CIDR); its gateway address is the node IP
# (the kubelet refuses a loopback one) and the address host services for pods bind. Pods get addresses on that
# bridge and no route anywhere else (no masquerade, IP forwarding untouched); etcd, the controller manager and the
# scheduler bind 127.0.0.1. kube-apiserver binds the bridge address: pods reach it through the `kubernetes`
# Service, which cannot point at a loopback address.
# Usage: scripts/cluster.sh up [IMAGE...]   -> start (idempotent), import images (default: services operator),
#                                              print the kubeconfig path; `source $(scripts/cluster.sh env)` sets
#                                              KUBECONFIG, PATH and EVENTPIPE_CLUSTER_HOST_IP
#        scripts/cluster.sh down            -> stop every process by PID, remove pods' state and the bridge
#        scripts/cluster.sh env             -> path of the env file (after up)
# State lives in $EVENTPIPE_CLUSTER_DIR (default .eventpipe/cluster of the checkout); logs in its logs/.
source "$(dirname "$0")/common.sh"

K8S_VERSION="${EVENTPIPE_K8S_VERSION:-1.34.4}"
BRIDGE="${EVENTPIPE_CLUSTER_BRIDGE:-epk0}"
POD_CIDR="${EVENTPIPE_CLUSTER_POD_CIDR:-10.213.7.0/24}"
SERVICE_CIDR="${EVENTPIPE_CLUSTER_SERVICE_CIDR:-10.213.8.0/24}"
NODE_NAME="eventpipe-node"
PAUSE_IMAGE="registry.k8s.io/pause:3.10"
DIR="${EVENTPIPE_CLUSTER_DIR:-$REPO_ROOT/.eventpipe/cluster}"
prefix="${POD_CIDR%/*}"; NODE_IP="${prefix%.*}.1"
svc_prefix="${SERVICE_CIDR%/*}"; API_SERVICE_IP="${svc_prefix%.*}.1"
PKI="$DIR/pki"; LOGS="$DIR/logs"; RUN="$DIR/run"
export CONTAINERS_CONF_OVERRIDE="$EVENTPIPE_CACHE/images/containers.conf"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Start a daemon in its own session, log to logs/NAME.log, remember its PID in run/NAME.pid.
start() {
  local name="$1"; shift
  setsid "$@" > "$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}
running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
wait_for() {  # wait_for WHAT SECONDS COMMAND...
  local what="$1" secs="$2"; shift 2
  for _ in $(seq "$secs"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "timed out waiting for $what (logs: $LOGS)" >&2; return 1
}

ensure_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  command -v openssl >/dev/null || missing+=(openssl)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} from Debian's packages"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq "${missing[@]}" >&2
}

pki() {
  [ -f "$PKI/admin.crt" ] && return 0
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj /CN=eventpipe-ca 2>/dev/null
    sign() {  # sign NAME SUBJECT EXTENSIONS
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      echo "$3" > "$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 30 \
        -extfile "$1.ext" 2>/dev/null
    }
    sign apiserver /CN=kube-apiserver "subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:$API_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    sign admin "/O=system:masters/CN=eventpipe-admin" "extendedKeyUsage=clientAuth"
    sign kubelet "/CN=$NODE_NAME" "subjectAltName=IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE_NAME"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

kubeconfig() {
  cat > "$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: eventpipe
clusters: [{name: eventpipe, cluster: {server: "https://$NODE_IP:$API_PORT", certificate-authority: $PKI/ca.crt}}]
users: [{name: admin, user: {client-certificate: $PKI/admin.crt, client-key: $PKI/admin.key}}]
contexts: [{name: eventpipe, context: {cluster: eventpipe, user: admin, namespace: default}}]
EOF
}

bridge_up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr show dev "$BRIDGE" | grep -q "inet $NODE_IP/" || ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Pod to pod traffic on the bridge goes through iptables, so kube-proxy's Service rules apply to it.
  modprobe br_netfilter 2>/dev/null || true
  [ ! -w /proc/sys/net/bridge/bridge-nf-call-iptables ] || echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables
  # Whatever the host's forwarding setting is, nothing from or to the pod network is forwarded off the bridge.
  iptables -C FORWARD -s "$POD_CIDR" ! -d "$POD_CIDR" -j DROP 2>/dev/null ||
    iptables -I FORWARD 1 -s "$POD_CIDR" ! -d "$POD_CIDR" -j DROP
  iptables -C FORWARD -d "$POD_CIDR" ! -s "$POD_CIDR" -j DROP 2>/dev/null ||
    iptables -I FORWARD 1 -d "$POD_CIDR" ! -s "$POD_CIDR" -j DROP
}

cni_config() {
  mkdir -p "$DIR/cni"
  # No isGateway: the script gives the bridge its address and the plugin leaves the host's forwarding alone.
  cat > "$DIR/cni/10-eventpipe.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "eventpipe", "plugins": [
 {"type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "ipMasq": false, "hairpinMode": true,
  "ipam": {"type": "host-local", "dataDir": "$DIR/cni-ipam",
           "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
           "routes": [{"dst": "0.0.0.0/0", "gw": "$NODE_IP"}]}},
 {"type": "portmap", "capabilities": {"portMappings": true}},
 {"type": "loopback"}]}
EOF
}

containerd_up() {
  running containerd && return 0
  mkdir -p "$DIR/containerd"
  cat > "$DIR/containerd/config.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
[grpc]
  address = "$DIR/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This VM refuses a negative oom_score_adj (the CRI gives every sandbox -998): runc would fail to start it.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni"
EOF
  start containerd containerd --config "$DIR/containerd/config.toml"
  wait_for containerd 30 ctr_ version
}
ctr_() { ctr --address "$DIR/containerd/containerd.sock" "$@"; }

# The sandbox ("pause") image: busybox's static sleep, built locally (no registry here), imported under the name
# containerd's sandbox_image gives.
pause_image() {
  ctr_ -n k8s.io images check "name==$PAUSE_IMAGE" 2>/dev/null | grep -q "$PAUSE_IMAGE" && return 0
  local archive="$EVENTPIPE_CACHE/images/pause-3.10.tar"
  mkdir -p "$EVENTPIPE_CACHE/images"
  if [ ! -f "$archive" ]; then
    command -v busybox >/dev/null || apt-get -o DPkg::Lock::Timeout=900 install -y -qq busybox-static >&2
    local ctx; ctx="$(mktemp -d)"
    mkdir -p "$ctx/bin"; cp "$(command -v busybox)" "$ctx/bin/busybox"; ln -s busybox "$ctx/bin/sleep"
    printf 'FROM scratch\nCOPY bin /bin\nENTRYPOINT ["/bin/sleep", "2147483647"]\n' > "$ctx/Containerfile"
    podman --runtime runc build --quiet -t "$PAUSE_IMAGE" "$ctx" >/dev/null
    podman save -q --format docker-archive -o "$archive" "$PAUSE_IMAGE"
    rm -rf "$ctx"
  fi
  ctr_ -n k8s.io images import "$archive" >/dev/null
}

import_images() {
  local name archive
  "$REPO_ROOT/scripts/images.sh" build "$@" | while read -r name archive; do
    # The archive holds ghcr.io/eventpipe/<name>:<input hash> beside the version tag: imported once per hash.
    local hash; hash="$(basename "$archive" .tar)"; hash="${hash#"$name"-}"
    ctr_ -n k8s.io images ls -q | grep -qx "ghcr.io/eventpipe/$name:$hash" && continue
    log "importing $name into containerd (k8s.io)"
    ctr_ -n k8s.io images import "$archive" >/dev/null
  done
}

control_plane_up() {
  running etcd || {
    local ep; ep="$(free_port)"
    start etcd "$BIN/etcd" --data-dir "$DIR/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$ep" \
      --initial-advertise-peer-urls "http://127.0.0.1:$ep" --initial-cluster "default=http://127.0.0.1:$ep" \
      --unsafe-no-fsync --log-level warn
  }
  running apiserver || start apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$API_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt" \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC --allow-privileged=true --kubelet-preferred-address-types=InternalIP \
    --kubelet-client-certificate="$PKI/admin.crt" --kubelet-client-key="$PKI/admin.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" --cert-dir="$DIR/apiserver-certs"
  wait_for kube-apiserver 120 "$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" get --raw /readyz
  running controller-manager || start controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$DIR/kubeconfig" --bind-address=127.0.0.1 --secure-port="$(free_port)" \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --use-service-account-credentials=false --cluster-signing-cert-file="$PKI/ca.crt" \
    --cluster-signing-key-file="$PKI/ca.key" \
    --controllers='*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle,-route'
  running scheduler || start scheduler "$BIN/kube-scheduler" --kubeconfig="$DIR/kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$(free_port)"
}

node_up() {
  running kubelet || {
    mkdir -p "$DIR/kubelet"
    cat > "$DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$DIR/containerd/containerd.sock
failSwapOn: false
failCgroupV1: false
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
clusterDNS: []
enforceNodeAllocatable: []
cgroupsPerQOS: true
localStorageCapacityIsolation: false
evictionHard: {}
podCIDR: $POD_CIDR
maxPods: 60
serializeImagePulls: false
EOF
    start kubelet "$BIN/kubelet" --config="$DIR/kubelet/config.yaml" --kubeconfig="$DIR/kubeconfig" \
      --root-dir="$DIR/kubelet/root" --cert-dir="$DIR/kubelet/pki" --hostname-override="$NODE_NAME" \
      --node-ip="$NODE_IP"
  }
  running kube-proxy || {
    cat > "$DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $DIR/kubeconfig}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$(free_port)
metricsBindAddress: 127.0.0.1:$(free_port)
nodePortAddresses: ["$POD_CIDR"]
conntrack: {maxPerCore: 0}
EOF
    start kube-proxy "$BIN/kube-proxy" --config="$DIR/kube-proxy.yaml"
  }
  wait_for "node $NODE_NAME Ready" 180 "$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" wait \
    --for=condition=Ready "node/$NODE_NAME" --timeout=1s
}

write_env() {
  cat > "$DIR/env" <<EOF
export KUBECONFIG=$DIR/kubeconfig
export PATH=$BIN:\$PATH
export EVENTPIPE_CLUSTER_HOST_IP=$NODE_IP
export EVENTPIPE_CLUSTER_POD_CIDR=$POD_CIDR
export EVENTPIPE_CLUSTER_LOGS=$LOGS
EOF
}

up() {
  ensure_packages
  BIN="$("$REPO_ROOT/scripts/k8s-tools.sh" --node)"
  mkdir -p "$DIR" "$LOGS" "$RUN"
  if [ -f "$RUN/ports" ]; then
    read -r ETCD_PORT API_PORT KUBELET_PORT KUBELET_HEALTHZ_PORT < "$RUN/ports"
  else
    ETCD_PORT="$(free_port)"; API_PORT="$(free_port)"; KUBELET_PORT="$(free_port)"; KUBELET_HEALTHZ_PORT="$(free_port)"
    echo "$ETCD_PORT $API_PORT $KUBELET_PORT $KUBELET_HEALTHZ_PORT" > "$RUN/ports"
  fi
  pki; kubeconfig; bridge_up; cni_config
  containerd_up
  pause_image
  local images=("$@")
  [ ${#images[@]} -gt 0 ] || images=(services operator)
  import_images "${images[@]}"
  control_plane_up
  node_up
  write_env
  log "cluster up: node $NODE_NAME Ready at $NODE_IP; source $DIR/env"
  echo "$DIR/kubeconfig"
}

down() {
  local name pid bin
  bin="$("$REPO_ROOT/scripts/k8s-tools.sh" --check 2>/dev/null || true)"
  # The pods first, through the kubelet, so that CNI removes their veths and network namespaces (which live
  # outside this folder): controllers deleted, pods force-deleted, then wait for containerd to hold none.
  if [ -n "$bin" ] && running apiserver && running kubelet; then
    local k=("$bin/kubectl" --kubeconfig "$DIR/kubeconfig" --request-timeout=20s)
    "${k[@]}" delete deployments,replicasets,statefulsets,daemonsets,jobs --all -A --wait=false >/dev/null 2>&1 || true
    "${k[@]}" delete pods --all -A --force --grace-period=0 >/dev/null 2>&1 || true
    for _ in $(seq 60); do
      [ -z "$(ctr_ -n k8s.io containers ls -q 2>/dev/null)" ] && break
      sleep 1
    done
  fi
  # Then the node (whatever is left of its pods killed through containerd) and the control plane.
  if running containerd && [ -S "$DIR/containerd/containerd.sock" ]; then
    for id in $(ctr_ -n k8s.io tasks ls -q 2>/dev/null); do ctr_ -n k8s.io tasks kill -s SIGKILL "$id" 2>/dev/null || true; done
  fi
  for name in kube-proxy kubelet scheduler controller-manager apiserver etcd containerd; do
    [ -f "$RUN/$name.pid" ] || continue
    pid="$(cat "$RUN/$name.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$RUN/$name.pid"
  done
  # containerd-shim processes outlive containerd: each one is the parent of one pod's processes, in run/shims.
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $DIR/containerd/containerd.sock" || true); do
    kill "$pid" 2>/dev/null || true
  done
  # Pods' network namespaces and the kubelet's mounts live under the cluster dir.
  { grep " $DIR/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  iptables -D FORWARD -s "$POD_CIDR" ! -d "$POD_CIDR" -j DROP 2>/dev/null || true
  iptables -D FORWARD -d "$POD_CIDR" ! -s "$POD_CIDR" -j DROP 2>/dev/null || true
  # kube-proxy's Service rules: its own cleanup mode removes them.
  [ -z "$bin" ] || [ ! -x "$bin/kube-proxy" ] || [ ! -f "$DIR/kube-proxy.yaml" ] ||
    "$bin/kube-proxy" --config="$DIR/kube-proxy.yaml" --cleanup > "$LOGS/kube-proxy-cleanup.log" 2>&1 || true
  # The kubelet's own chains (KUBE-FIREWALL and its canaries), which it leaves behind.
  iptables -D INPUT -j KUBE-FIREWALL 2>/dev/null || true
  iptables -D OUTPUT -j KUBE-FIREWALL 2>/dev/null || true
  iptables -F KUBE-FIREWALL 2>/dev/null && iptables -X KUBE-FIREWALL 2>/dev/null || true
  for table in mangle nat filter; do
    iptables -t "$table" -X KUBE-KUBELET-CANARY 2>/dev/null || true
  done
  iptables -t mangle -X KUBE-IPTABLES-HINT 2>/dev/null || true
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
  rm -rf "$DIR/etcd" "$DIR/kubelet" "$DIR/cni-ipam" "$DIR/containerd/state" "$RUN/ports" "$DIR/env"
  log "cluster down"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  env) [ -f "$DIR/env" ] && echo "$DIR/env" || { echo "cluster not up" >&2; exit 1; } ;;
  *) echo "usage: scripts/cluster.sh up [IMAGE...]|down|env" >&2; exit 2 ;;
esac
