#!/usr/bin/env bash
# Build the Argo Rollouts controller and take its CustomResourceDefinitions from the same module
# source, into a per-version cache outside the repository. The Kubernetes tier runs them on its
# control plane to prove `canary.controller: argo-rollouts` end to end (tests/k8s/test_argo_rollouts.py).
# Everything comes from the Go module proxy; nothing of Argo's is committed here.
#
# Usage:  DIR=$(scripts/argo-rollouts.sh | tail -1)
#   DIR/bin/rollouts-controller, DIR/crds/*.yaml. Step lines start with "==>".
#   A cold build takes about 2-3 min on 2 cores; a warm cache returns at once.
#
# Environment: STACKCTL_CACHE (cache root), GO (go command), K8S_BUILD_P (go build -p).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=k8s-versions.env
. "$here/k8s-versions.env"
: "${ARGO_ROLLOUTS_VERSION:?ARGO_ROLLOUTS_VERSION missing in k8s-versions.env}"

cache=${STACKCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stackctl}
dest="$cache/argo-rollouts/$ARGO_ROLLOUTS_VERSION"
log() { printf '==> %s\n' "$*"; }
die() { printf '==> ERROR: %s\n' "$*" >&2; exit 1; }

complete() { [ -f "$dest/.complete" ] && [ -x "$dest/bin/rollouts-controller" ] && [ -f "$dest/crds/rollout-crd.yaml" ]; }
if complete; then
    log "cached: $dest"
    echo "$dest"
    exit 0
fi

mkdir -p "$cache/argo-rollouts" "$cache/go/mod" "$cache/go/build"
exec 9>"$cache/argo-rollouts/.lock-$ARGO_ROLLOUTS_VERSION"
if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
    log "another build of Argo Rollouts $ARGO_ROLLOUTS_VERSION is running; waiting for it"
    flock 9
fi
if complete; then
    log "cached: $dest"
    echo "$dest"
    exit 0
fi

GO=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}
[ -x "$GO" ] || command -v "$GO" >/dev/null 2>&1 || die "go not found (set GO=/path/to/go)"
export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0
export GOFLAGS="-buildvcs=false"
unset GOBIN GOOS GOARCH

rmtree() { [ -e "$1" ] || return 0; chmod -R u+w "$1" 2>/dev/null || true; rm -rf "$1"; }
work=$(mktemp -d "$cache/argo-rollouts/.build-$ARGO_ROLLOUTS_VERSION.XXXXXX")
trap 'rmtree "$work"' EXIT
t=$SECONDS
log "argo-rollouts: fetching github.com/argoproj/argo-rollouts@$ARGO_ROLLOUTS_VERSION"
src=$(cd "$work" && "$GO" mod download -json "github.com/argoproj/argo-rollouts@$ARGO_ROLLOUTS_VERSION" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)
[ -d "$src" ] || die "module source of argo-rollouts@$ARGO_ROLLOUTS_VERSION not found"
# The module's go.mod pins its Kubernetes dependencies with replace lines, so build inside a
# writable copy of the module (go install pkg@version refuses modules with replace lines).
cp -r "$src" "$work/src"
chmod -R u+w "$work/src"
mkdir -p "$work/out/bin" "$work/out/crds"
log "argo-rollouts: building rollouts-controller"
(cd "$work/src" && "$GO" build -p "${K8S_BUILD_P:-2}" -trimpath -ldflags "-s -w" \
    -o "$work/out/bin/rollouts-controller" ./cmd/rollouts-controller) >&2
cp "$work/src/manifests/crds/"*-crd.yaml "$work/out/crds/"
"$work/out/bin/rollouts-controller" --version >/dev/null 2>&1 || die "rollouts-controller does not run"
echo "BUILD_SECONDS=$((SECONDS - t))" >"$work/out/.complete"
rmtree "$dest"
mv "$work/out" "$dest"
log "argo-rollouts: done in $((SECONDS - t))s"
echo "$dest"
