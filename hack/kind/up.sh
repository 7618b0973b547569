#!/usr/bin/env bash
# Create a kind cluster, build and load the project's images, install the chart.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: hack/kind/up.sh [--gpu] [--no-images] [--no-chart] [-h|--help]

Creates a kind cluster (hack/kind/cpu.yaml, or hack/kind/gpu.yaml with --gpu),
builds every image that has images/<name>/Dockerfile as
kserve-stack/<name>:dev, loads them into the cluster, and installs the chart
charts/kserve-stack (when present) with those images.

Options:
  --gpu        GPU cluster: needs an NVIDIA host with the NVIDIA Container
               Toolkit; installs the NVIDIA device plugin
  --no-images  do not build or load images
  --no-chart   do not install the chart
  -h, --help   show this help

Environment:
  KIND          kind binary (default: kind on PATH)
  KIND_IMAGE    node image (default: kind's own default)
  HELM          helm binary (default: helm on PATH)
  CHART_ARGS    extra helm arguments for the chart (default: --set
                global.image.tag=dev --set global.image.pullPolicy=Never)
  DEVICE_PLUGIN_MANIFEST  URL or file of the NVIDIA device plugin DaemonSet
                (default: NVIDIA/k8s-device-plugin v0.17.1 static manifest)
USAGE
}

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
gpu=0 images=1 chart=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --gpu) gpu=1 ;;
    --no-images) images=0 ;;
    --no-chart) chart=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "up.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "[kind] $*" >&2; }
KIND="${KIND:-kind}"
config="$repo/hack/kind/cpu.yaml"; name=kserve-stack
if (( gpu )); then config="$repo/hack/kind/gpu.yaml"; name=kserve-stack-gpu; fi

command -v docker >/dev/null || { log "docker is not installed: kind needs a Docker engine. Use 'make cluster' (local control plane) instead."; exit 1; }
docker info >/dev/null 2>&1 || { log "no Docker engine answers ('docker info' fails): kind cannot run here. Use 'make cluster' (local control plane) instead."; exit 1; }
command -v "$KIND" >/dev/null || { log "kind is not installed (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"; exit 1; }
command -v kubectl >/dev/null || { log "kubectl is not installed"; exit 1; }
if (( gpu )) && ! docker info --format '{{json .Runtimes}}' | grep -q nvidia; then
  log "--gpu: Docker has no 'nvidia' runtime: install and configure the NVIDIA Container Toolkit first"; exit 1
fi

if "$KIND" get clusters 2>/dev/null | grep -qx "$name"; then
  log "kind cluster '$name' exists: reusing it"
else
  log "creating kind cluster '$name' from $config"
  "$KIND" create cluster --config "$config" ${KIND_IMAGE:+--image "$KIND_IMAGE"} --wait 120s
fi
kubectl config use-context "kind-$name" >/dev/null

if (( gpu )); then
  manifest="${DEVICE_PLUGIN_MANIFEST:-https://raw.githubusercontent.com/NVIDIA/k8s-device-plugin/v0.17.1/deployments/static/nvidia-device-plugin.yml}"
  log "installing the NVIDIA device plugin from $manifest"
  kubectl apply -f "$manifest"
  kubectl -n kube-system rollout status daemonset/nvidia-device-plugin-daemonset --timeout=180s
fi

crds="${KSS_CRDS_DIR:-$repo/../shared/crds}"
if [[ -d "$crds" ]]; then
  log "installing dependency CRDs from $crds"
  for d in gateway-api gateway-api-inference-extension lws keda envoy-gateway envoy-ai-gateway prometheus-operator gpu-operator llm-d-router; do
    [[ -d "$crds/$d" ]] && kubectl apply --server-side --force-conflicts -f "$crds/$d" >/dev/null
  done
fi

built=()
if (( images )); then
  shopt -s nullglob
  for df in "$repo"/images/*/Dockerfile; do
    img="kserve-stack/$(basename "$(dirname "$df")"):dev"
    log "building $img"
    docker build -t "$img" -f "$df" "$repo"
    "$KIND" load docker-image "$img" --name "$name"
    built+=("$img")
  done
  (( ${#built[@]} )) || log "no images/<name>/Dockerfile yet: nothing to build"
fi

if (( chart )); then
  if [[ -f "$repo/charts/kserve-stack/Chart.yaml" ]]; then
    helm="${HELM:-helm}"
    log "installing charts/kserve-stack (images tagged :dev)"
    # shellcheck disable=SC2086  # CHART_ARGS is a list of helm arguments
    "$helm" upgrade --install kserve-stack "$repo/charts/kserve-stack" \
      --namespace kserve-stack-system --create-namespace --wait --timeout 5m \
      ${CHART_ARGS:---set global.image.tag=dev --set global.image.pullPolicy=Never}
  else
    log "charts/kserve-stack does not exist yet: chart not installed"
  fi
fi
log "ready: kubectl --context kind-$name get nodes"
