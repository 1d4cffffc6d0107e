#!/usr/bin/env bash
# skaffold's custom builder (skaffold.yaml, profile podman): build $IMAGE's envs/<name>.Dockerfile with
# scripts/images.sh (podman, cached by input hash), tag it as skaffold asks, then push it ($PUSH_IMAGE=true) or,
# when scripts/cluster.sh's node is up, import it into its containerd (k8s.io namespace).
source "$(dirname "$0")/common.sh"
: "${IMAGE:?skaffold sets IMAGE (repository:tag)}"
repo="${IMAGE%:*}"; name="${repo##*/}"
read -r _ archive < <("$REPO_ROOT/scripts/images.sh" build "$name")
podman tag "ghcr.io/eventpipe/$name:${EVENTPIPE_IMAGE_TAG:-0.1.0}" "$IMAGE"
if [ "${PUSH_IMAGE:-false}" = true ]; then
  podman push "$IMAGE"
elif env_file="$("$REPO_ROOT/scripts/cluster.sh" env 2>/dev/null)"; then
  sock="$(dirname "$env_file")/containerd/containerd.sock"
  podman save -q --format docker-archive "$IMAGE" | ctr --address "$sock" -n k8s.io images import - >/dev/null
  log "imported $IMAGE into the node of scripts/cluster.sh ($archive)"
fi
