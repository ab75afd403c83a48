#!/usr/bin/env bash
# Build the dev-cluster binaries (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kubelet, kube-proxy, etcd, kwok, helm; the node's containerd, runc, CNI plugins
# and CoreDNS; Prometheus for the chart's stand-in image) from Go modules with the installed
# Go, pinned by textops/devcluster/versions.env, into a versioned cache outside the repository:
#   ${TEXTOPS_CACHE:-$HOME/.cache/textops}/tools-v1/<tool>-<version>/
# A tool whose folder has a .complete stamp is not rebuilt, so a warm run is a no-op.
# Prints one line per tool: "<tool> <version> <folder>".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../textops/devcluster/versions.env
source "$here/../textops/devcluster/versions.env"

cache_root="${TEXTOPS_CACHE:-${HOME:-/root}/.cache/textops}/tools-v1"
mkdir -p "$cache_root"
export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=mod" CGO_ENABLED=0
ldflags_base="-s -w"

log() { printf '[build-k8s-tools] %s\n' "$*" >&2; }

# Serialise concurrent runs (e.g. two `make test` at once) on one lock per cache.
exec 9>"$cache_root/.lock"
flock 9

# done_dir DIR -> true when DIR holds a finished build
is_done() { [[ -f "$1/.complete" ]]; }

# finish TMPDIR DEST: atomically publish a finished build
finish() {
  touch "$1/.complete"
  rm -rf "$2"
  mv "$1" "$2"
}

# new_module DIR NAME: an empty wrapper module (outside the repo, under the cache)
new_module() {
  rm -rf "$1"
  mkdir -p "$1"
  printf 'module %s\n\ngo 1.26.0\n' "$2" >"$1/go.mod"
}

build_kubernetes() {
  local dest="$cache_root/kubernetes-$KUBERNETES_VERSION"
  # a cache from before the node binaries were added lacks kubelet: rebuild it
  is_done "$dest" && [[ -x "$dest/kubelet" ]] && return 0
  local t0=$SECONDS
  log "building kubernetes $KUBERNETES_VERSION (apiserver, controller-manager, scheduler, kubectl, kubelet, kube-proxy)"
  local mod="$cache_root/.work/kubernetes-$KUBERNETES_VERSION"
  new_module "$mod" textops.local/k8stools
  # k8s.io/kubernetes replaces its staging modules with ./staging paths, which do not
  # apply to a dependency: map each one to its published v0.X.Y instead.
  local staging
  staging=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' \
    | xargs sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p')
  [[ -n "$staging" ]] || { log "could not read the staging list"; exit 1; }
  {
    printf '\nreplace (\n'
    for m in $staging; do printf '\t%s => %s %s\n' "$m" "$m" "$K8S_STAGING_VERSION"; done
    printf ')\n'
  } >>"$mod/go.mod"
  local pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
  (cd "$mod" && go get "${pkgs[@]/%/@$KUBERNETES_VERSION}")
  local v="${KUBERNETES_VERSION#v}" major minor
  major="${v%%.*}"; minor="${v#*.}"; minor="${minor%%.*}"
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ld="$ldflags_base"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date -X $p.gitCommit=release-$KUBERNETES_VERSION"
  done
  local out="$dest.tmp"
  rm -rf "$out"; mkdir -p "$out"
  # One `go build` for all six so the shared packages compile once.
  (cd "$mod" && go build -trimpath -ldflags="$ld" -o "$out/" "${pkgs[@]}")
  finish "$out" "$dest"
  log "kubernetes built in $((SECONDS - t0))s"
}

build_etcd() {
  local dest="$cache_root/etcd-$ETCD_VERSION"
  is_done "$dest" && return 0
  local t0=$SECONDS
  log "building etcd $ETCD_VERSION"
  # go.etcd.io/etcd/server/v3 has local replaces too (../api, ...): wrap it the same way.
  local mod="$cache_root/.work/etcd-$ETCD_VERSION"
  new_module "$mod" textops.local/etcdtools
  {
    printf '\nreplace (\n'
    for m in api/v3 client/pkg/v3 client/v3 pkg/v3; do
      printf '\tgo.etcd.io/etcd/%s => go.etcd.io/etcd/%s %s\n' "$m" "$m" "$ETCD_VERSION"
    done
    printf ')\n'
  } >>"$mod/go.mod"
  (cd "$mod" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  local out="$dest.tmp"
  rm -rf "$out"; mkdir -p "$out"
  (cd "$mod" && go build -trimpath \
    -ldflags="$ldflags_base" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  finish "$out" "$dest"
  log "etcd built in $((SECONDS - t0))s"
}

# install_tool FOLDER WHAT GO-INSTALL-ARGS...: `go install` into the cache folder FOLDER,
# skipped when that folder is finished; WHAT names the build in the log.
install_tool() {
  local dest="$cache_root/$1" what=$2
  shift 2
  is_done "$dest" && return 0
  local t0=$SECONDS out="$dest.tmp"
  log "building $what"
  rm -rf "$out"; mkdir -p "$out"
  GOBIN="$out" go install -trimpath "$@"
  finish "$out" "$dest"
  log "$what built in $((SECONDS - t0))s"
}

build_kwok() {
  GOFLAGS=-buildvcs=false install_tool "kwok-$KWOK_VERSION" "kwok $KWOK_VERSION" \
    -ldflags="$ldflags_base -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

build_helm() {
  local major="${HELM_VERSION%%.*}"
  GOFLAGS=-buildvcs=false install_tool "helm-$HELM_VERSION" "helm $HELM_VERSION" \
    -ldflags="$ldflags_base -X helm.sh/helm/$major/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/$major/cmd/helm@$HELM_VERSION"
}

build_containerd() {
  local m="github.com/containerd/containerd/v2"
  install_tool "containerd-$CONTAINERD_VERSION" \
    "containerd $CONTAINERD_VERSION (containerd, containerd-shim-runc-v2, ctr)" \
    -tags "no_btrfs no_devmapper no_zfs" \
    -ldflags="$ldflags_base -X $m/version.Version=$CONTAINERD_VERSION" \
    "$m/cmd/containerd@$CONTAINERD_VERSION" "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
    "$m/cmd/ctr@$CONTAINERD_VERSION"
}

build_runc() {
  CGO_ENABLED=1 install_tool "runc-$RUNC_VERSION" \
    "runc $RUNC_VERSION (cgo, seccomp: needs Debian's libseccomp-dev)" -tags seccomp \
    -ldflags="$ldflags_base -X main.version=${RUNC_VERSION#v}" \
    "github.com/opencontainers/runc@$RUNC_VERSION"
}

build_cni() {
  local folder="cni-plugins-$CNI_PLUGINS_VERSION" p="github.com/containernetworking/plugins/plugins"
  # a cache from before the firewall plugin was added lacks it: rebuild
  [[ -x "$cache_root/$folder/firewall" ]] || rm -f "$cache_root/$folder/.complete"
  install_tool "$folder" \
    "CNI plugins $CNI_PLUGINS_VERSION (bridge, host-local, loopback, portmap, firewall)" \
    -ldflags="$ldflags_base" \
    "$p/main/bridge@$CNI_PLUGINS_VERSION" "$p/ipam/host-local@$CNI_PLUGINS_VERSION" \
    "$p/main/loopback@$CNI_PLUGINS_VERSION" "$p/meta/portmap@$CNI_PLUGINS_VERSION" \
    "$p/meta/firewall@$CNI_PLUGINS_VERSION"
}

build_coredns() {
  install_tool "coredns-$COREDNS_VERSION" "coredns $COREDNS_VERSION" \
    -ldflags="$ldflags_base" "github.com/coredns/coredns@$COREDNS_VERSION"
}

build_prometheus() {
  local dest="$cache_root/prometheus-$PROMETHEUS_VERSION"
  is_done "$dest" && return 0
  local t0=$SECONDS
  # Prometheus 3.X.Y is published as Go module v0.3XX.Y (v3.5.0 -> v0.305.0).
  local v="${PROMETHEUS_VERSION#v}" major minor patch
  major="${v%%.*}"; minor="${v#*.}"; minor="${minor%%.*}"; patch="${v##*.}"
  local modver="v0.$((major * 100 + minor)).$patch"
  log "building prometheus $PROMETHEUS_VERSION (module $modver; no web UI assets)"
  # Its go.mod has replace/exclude directives, which `go install pkg@version` refuses: build
  # in the downloaded module itself, so exactly its go.mod and go.sum apply.
  local src
  src=$(go mod download -json "github.com/prometheus/prometheus@$modver" \
    | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -d "$src" ]] || { log "could not download github.com/prometheus/prometheus@$modver"; exit 1; }
  local p=github.com/prometheus/common/version
  local ld="$ldflags_base -X $p.Version=$v -X $p.Revision=$modver -X $p.Branch=release-$major.$minor"
  ld+=" -X $p.BuildUser=textops -X $p.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
  local out="$dest.tmp"
  rm -rf "$out"; mkdir -p "$out"
  # netgo as upstream's release builds (.promu.yml); -mod=readonly: the module cache is
  # read-only and its go.sum is complete.
  GOFLAGS="-buildvcs=false -mod=readonly" go build -C "$src" -trimpath -tags netgo \
    -ldflags="$ld" -o "$out/prometheus" ./cmd/prometheus
  finish "$out" "$dest"
  log "prometheus built in $((SECONDS - t0))s"
}

start=$SECONDS
only="${*:-kubernetes etcd kwok helm containerd runc cni coredns prometheus}"
for tool in $only; do "build_$tool"; done
[[ $((SECONDS - start)) -gt 1 ]] && log "done in $((SECONDS - start))s"
printf 'kubernetes %s %s\n' "$KUBERNETES_VERSION" "$cache_root/kubernetes-$KUBERNETES_VERSION"
printf 'etcd %s %s\n' "$ETCD_VERSION" "$cache_root/etcd-$ETCD_VERSION"
printf 'kwok %s %s\n' "$KWOK_VERSION" "$cache_root/kwok-$KWOK_VERSION"
printf 'helm %s %s\n' "$HELM_VERSION" "$cache_root/helm-$HELM_VERSION"
printf 'containerd %s %s\n' "$CONTAINERD_VERSION" "$cache_root/containerd-$CONTAINERD_VERSION"
printf 'runc %s %s\n' "$RUNC_VERSION" "$cache_root/runc-$RUNC_VERSION"
printf 'cni %s %s\n' "$CNI_PLUGINS_VERSION" "$cache_root/cni-plugins-$CNI_PLUGINS_VERSION"
printf 'coredns %s %s\n' "$COREDNS_VERSION" "$cache_root/coredns-$COREDNS_VERSION"
printf 'prometheus %s %s\n' "$PROMETHEUS_VERSION" "$cache_root/prometheus-$PROMETHEUS_VERSION"
