#!/usr/bin/env bash
# Build the Kubernetes control-plane binaries that stackctl's test suite runs
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, kwokctl)
# and the matching kubectl (for the promote benchmark) from the Go module
# proxy, into a per-version cache outside the repository.
# Release downloads are not needed: everything comes from Go modules.
#
# Usage:  BIN=$(scripts/k8s-binaries.sh | tail -1)
#   Step lines start with "==>"; the last line of stdout is the bin dir.
#   When everything is already built it only checks the cache and returns.
#   A cold build takes a long while (tens of minutes on 2 cores); running it
#   as `nice -n 19 ionice -c3 scripts/k8s-binaries.sh` keeps the machine usable.
#
# Environment:
#   STACKCTL_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/stackctl)
#   GO              go command (default: go on PATH, else /usr/local/go/bin/go)
#   K8S_BUILD_P     go build -p parallelism (default 2)
#
# Layout (under the cache root):
#   k8s/<kube>-etcd<etcd>-kwok<kwok>/bin/{etcd,kube-apiserver,...,kwok,kwokctl,kubectl}
#   k8s/<kube>-etcd<etcd>-kwok<kwok>/stages/   KWOK stage configs (kustomize/stage)
#   k8s/<kube>-etcd<etcd>-kwok<kwok>/.complete marker written last
#   go/mod, go/build                           GOMODCACHE and GOCACHE, shared (also
#                                              by k8s-node-binaries.sh, argo-rollouts.sh)
# Everything is built in a temporary sibling directory and renamed into place
# at the end, so an interrupted build never leaves a partial set behind. A set
# built before kubectl was part of it gets kubectl added (built alone, renamed
# into bin/); the rest of the set is kept.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=k8s-versions.env
. "$here/k8s-versions.env"
# log, die, rmtree, take_lock, remove_stale, go_env, json_field, build_kube
# (shared with scripts/k8s-node-binaries.sh)
# shellcheck source-path=SCRIPTDIR source=lib/gobuild.sh
. "$here/lib/gobuild.sh"
: "${KUBE_VERSION:?KUBE_VERSION missing in k8s-versions.env}"
: "${ETCD_VERSION:?ETCD_VERSION missing in k8s-versions.env}"
: "${KWOK_VERSION:?KWOK_VERSION missing in k8s-versions.env}"
# Kubernetes v1.X.Y publishes its staging modules (k8s.io/api, ...) as v0.X.Y.
KUBE_STAGING_VERSION=${KUBE_STAGING_VERSION:-v0.${KUBE_VERSION#v1.}}

cache=${STACKCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stackctl}
key="${KUBE_VERSION}-etcd${ETCD_VERSION}-kwok${KWOK_VERSION}"
dest="$cache/k8s/$key"
core=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok kwokctl)
bins=("${core[@]}" kubectl)

is_complete() {
    [ -f "$dest/.complete" ] || return 1
    local b
    for b in "${bins[@]}"; do [ -x "$dest/bin/$b" ] || return 1; done
}
# A complete set from before kubectl was added to it.
has_core() {
    [ -f "$dest/.complete" ] || return 1
    local b
    for b in "${core[@]}"; do [ -x "$dest/bin/$b" ] || return 1; done
}

# Fast path: nothing to do.
if is_complete; then
    log "cached: $dest"
    echo "$dest/bin"
    exit 0
fi

mkdir -p "$cache/k8s"
# One builder per version set at a time; others wait and then reuse its result.
take_lock "$cache/k8s/.lock-$key" "$key"
if is_complete; then
    log "cached: $dest"
    echo "$dest/bin"
    exit 0
fi

# GO, P; GOMODCACHE/GOCACHE under $cache/go; GOTOOLCHAIN=local, CGO_ENABLED=0, ...
go_env "$cache"

log "go: $("$GO" version)"
log "versions: kubernetes $KUBE_VERSION (staging $KUBE_STAGING_VERSION), etcd $ETCD_VERSION, kwok $KWOK_VERSION"
log "cache: $cache"

remove_stale "$cache/k8s/.build-$key"

# version_of BIN: the first lines of its version output (kubectl has no --version).
version_of() {
    case "${1##*/}" in
        kubectl) "$1" version --client 2>&1 ;;
        *) "$1" --version 2>&1 ;;
    esac
}

# A set built before kubectl was part of it: add kubectl, keep the rest.
if has_core; then
    work=$(mktemp -d "$cache/k8s/.build-$key.XXXXXX")
    trap 'rmtree "$work"' EXIT
    mkdir -p "$work/out/bin"
    start=$SECONDS
    log "kubectl: adding it to $dest"
    build_kube "$work/kube" "$work/out/bin" kubectl
    ver=$(version_of "$work/out/bin/kubectl") || die "kubectl: version check failed: $ver"
    log "  kubectl: $(head -n1 <<<"$ver")"
    mv -f "$work/out/bin/kubectl" "$dest/bin/kubectl"
    echo "KUBECTL_ADDED_SECONDS=$((SECONDS - start))" >>"$dest/.complete"
    log "added kubectl in $((SECONDS - start))s"
    echo "$dest/bin"
    exit 0
fi
if [ -e "$dest" ]; then
    log "removing incomplete $dest"
    rmtree "$dest"
fi

work=$(mktemp -d "$cache/k8s/.build-$key.XXXXXX")
trap 'rmtree "$work"' EXIT
out="$work/out"
mkdir -p "$out/bin" "$out/stages"
start=$SECONDS

# ---------------------------------------------------------------- kwok
t=$SECONDS
log "kwok: building kwok, kwokctl @ $KWOK_VERSION"
cd "$work"
kwok_dir=$("$GO" mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | json_field Dir)
[ -d "$kwok_dir" ] || die "kwok module source not found"
# consts.Version is already right in the source; KubeVersion is the default
# Kubernetes version kwokctl assumes, so point it at the one built here.
GOBIN="$out/bin" "$GO" install -p "$P" -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION" >&2
log "kwok: done in $((SECONDS - t))s"

# Stage configs (what the simulated nodes and pods do), kept at their upstream
# relative paths: node/fast/node-initialize.yaml, pod/fast/pod-ready.yaml, ...
# Only the kind: Stage documents are taken (no testdata, kustomizations, RBAC).
# stages/fast.yaml joins node/fast + node/heartbeat-with-lease + pod/fast, the
# set upstream's kustomize/stage/fast composes, for a single `kwok --config`.
stage_src="$kwok_dir/kustomize/stage"
log "kwok: copying stage configs from $stage_src"
[ -d "$stage_src" ] || die "no kustomize/stage in the kwok module"
(
    cd "$stage_src"
    find . -type f -name '*.yaml' ! -path '*/testdata/*' ! -name kustomization.yaml | sort |
        while read -r f; do
            grep -q '^kind: Stage$' "$f" || continue
            mkdir -p "$out/stages/$(dirname "$f")"
            cp "$f" "$out/stages/$f"
        done
)
for d in node/fast node/heartbeat-with-lease pod/fast; do
    [ -d "$out/stages/$d" ] || die "kwok stage set $d not found in $stage_src"
    for f in "$out/stages/$d"/*.yaml; do
        printf -- '---\n# from %s\n' "$d/${f##*/}"
        cat "$f"
    done
done >"$out/stages/fast.yaml"
chmod -R u+w,a+r "$out/stages"
(cd "$out/stages" && find . -type f -name '*.yaml' | sort | sed 's|^\./|    stages/|')

# ---------------------------------------------------------------- etcd
# etcd's server/go.mod replaces its sibling modules with ../ paths, so
# `go install ...@version` refuses it; a wrapper module that requires it works.
t=$SECONDS
log "etcd: building etcd @ $ETCD_VERSION"
mkdir "$work/etcd" && cd "$work/etcd"
"$GO" mod init local/etcdbin >&2
"$GO" get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
# The module proxy does not record the git commit, so etcd's GitSHA stays unset.
"$GO" build -mod=mod -p "$P" -trimpath -ldflags "-s -w" \
    -o "$out/bin/etcd" go.etcd.io/etcd/server/v3 >&2
log "etcd: done in $((SECONDS - t))s"

# ---------------------------------------------------------------- kubernetes
build_kube "$work/kube" "$out/bin" kube-apiserver kube-controller-manager kube-scheduler kubectl

# ---------------------------------------------------------------- verify
log "verifying binaries"
for b in "${bins[@]}"; do
    [ -x "$out/bin/$b" ] || die "$b was not built"
    ver=$(version_of "$out/bin/$b") || die "$b: version check failed: $ver"
    ver=$(head -n3 <<<"$ver" | tr '\n' ' ')
    log "  $b: $ver"
done

{
    echo "KUBE_VERSION=$KUBE_VERSION"
    echo "KUBE_STAGING_VERSION=$KUBE_STAGING_VERSION"
    echo "ETCD_VERSION=$ETCD_VERSION"
    echo "KWOK_VERSION=$KWOK_VERSION"
    echo "GO_VERSION=$("$GO" env GOVERSION)"
    echo "BUILT_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "BUILD_SECONDS=$((SECONDS - start))"
} >"$out/.complete"
mv -T "$out" "$dest"
log "built $key in $((SECONDS - start))s"
echo "$dest/bin"
