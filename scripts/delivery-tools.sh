#!/usr/bin/env bash
# Build the tools that consume stackctl's delivery outputs (issue 17: GitOps, Helm, sealed secrets)
# from the Go module proxy into per-version cache dirs outside the repository, and fetch the CRDs
# those outputs are validated against. tests/delivery/ calls this (its conftest); scripts/setup.sh
# --with-k8s calls it so `make test` finds everything warm. Nothing of these tools is committed here.
#
# Usage:  scripts/delivery-tools.sh [TOOL...]     TOOL: kustomize age sops crds helm kubeseal
#   No TOOL: all of them, in that order. Step lines start with "==>"; the last lines are NAME=PATH,
#   one per binary (age gives age= and age-keygen=) and crds=DIR (the CRD files, flat).
#   Cache: $cache/delivery/<tool>/<version>/bin/<binary> and .../crds/<set>/*.yaml, each with a
#   .complete marker (BUILD_SECONDS=...). A per-version lock makes a concurrent caller wait for the
#   build and then reuse it. Builds are niced. A warm cache returns at once. Cold, measured on 2 busy
#   cores with the Go build cache the Kubernetes builds share already warm: kustomize 12 s, age 5 s,
#   sops ~8 min, crds seconds (downloads), helm ~23 min, kubeseal ~6 min.
#
# Environment: STACKCTL_CACHE (cache root), GO (go command), K8S_BUILD_P (go build -p, default 2);
#              the versions of scripts/delivery-versions.env may be overridden one by one.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/gobuild.sh
. "$here/lib/gobuild.sh"
# Overrides from the environment win over the file.
saved=$(declare -px 2>/dev/null | grep -E ' (KUSTOMIZE|AGE|SOPS|HELM|SEALED_SECRETS|EXTERNAL_SECRETS|ARGOCD|FLUX)_[A-Z_]*=' || true)
# shellcheck source-path=SCRIPTDIR source=delivery-versions.env
. "$here/delivery-versions.env"
eval "$saved"

ALL=(kustomize age sops crds helm kubeseal)
cache=${STACKCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stackctl}
root="$cache/delivery"
CRDS_SET="eso-${EXTERNAL_SECRETS_VERSION}_ss-${SEALED_SECRETS_VERSION}_argocd-${ARGOCD_VERSION}"
CRDS_SET+="_kc-${FLUX_KUSTOMIZE_CONTROLLER_VERSION}_sc-${FLUX_SOURCE_CONTROLLER_VERSION}"

version_of() {
    case "$1" in
        kustomize) echo "$KUSTOMIZE_VERSION" ;;
        age) echo "$AGE_VERSION" ;;
        sops) echo "$SOPS_VERSION" ;;
        crds) echo "$CRDS_SET" ;;
        helm) echo "$HELM_VERSION" ;;
        kubeseal) echo "$SEALED_SECRETS_VERSION" ;;
        *) die "unknown tool '$1' (one of: ${ALL[*]})" ;;
    esac
}
# What a tool's cache dir must hold to count as complete.
binaries_of() {
    case "$1" in
        age) echo "age age-keygen" ;;
        crds) echo "" ;;
        *) echo "$1" ;;
    esac
}
CRD_FILES=(
    external-secrets.io_externalsecrets.yaml external-secrets.io_secretstores.yaml
    external-secrets.io_clustersecretstores.yaml sealedsecret-crd.yaml application-crd.yaml
    kustomize.toolkit.fluxcd.io_kustomizations.yaml source.toolkit.fluxcd.io_gitrepositories.yaml
)

complete() { # TOOL DEST
    local b f
    [ -f "$2/.complete" ] || return 1
    for b in $(binaries_of "$1"); do [ -x "$2/bin/$b" ] || return 1; done
    if [ "$1" = crds ]; then
        for f in "${CRD_FILES[@]}"; do [ -s "$2/$f" ] || return 1; done
    fi
}

# go_install OUTBIN LDFLAGS PKG@VERSION...: `go install` of a module's commands at a release (the
# module's go.sum pins every dependency; its version lands in the binary's build info), niced.
go_install() {
    local bin=$1 ldf=$2
    shift 2
    (cd "$work" && GOBIN="$bin" nice -n 10 "$GO" install -p "$P" -trimpath -ldflags "-s -w $ldf" "$@") >&2
}

# module_dir MODULE@VERSION: the module's source in the module cache (downloaded, never built).
module_dir() {
    local json dir
    json=$(cd "$work" && "$GO" mod download -json "$1" 2>&1) || true
    dir=$(json_field Dir <<<"$json")
    if [ -z "$dir" ] || [ ! -d "$dir" ]; then
        die "go mod download $1 failed: $(json_field Error <<<"$json" | sed 's/\\u003e/>/g; s/\\u003c/</g')"
    fi
    echo "$dir"
}

build_kustomize() {
    go_install "$1/bin" "-X sigs.k8s.io/kustomize/api/provenance.version=kustomize/$KUSTOMIZE_VERSION" \
        "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
}
build_age() {
    go_install "$1/bin" "" "filippo.io/age/cmd/age@$AGE_VERSION" "filippo.io/age/cmd/age-keygen@$AGE_VERSION"
}
build_sops() {
    go_install "$1/bin" "" "github.com/getsops/sops/v3/cmd/sops@$SOPS_VERSION"
}
build_helm() {
    go_install "$1/bin" "-X $HELM_MODULE/internal/version.version=$HELM_VERSION -X $HELM_MODULE/internal/version.gitTreeState=clean" \
        "$HELM_MODULE/cmd/helm@$HELM_VERSION"
}
build_kubeseal() {
    # From v0.40 the module calls itself github.com/bitnami/sealed-secrets, a path the proxy does not serve,
    # so `go install ...@version` refuses it: build in a writable copy of the module (its go.sum pins all).
    local src
    src=$(module_dir "github.com/bitnami-labs/sealed-secrets@$SEALED_SECRETS_VERSION")
    cp -r "$src" "$work/src"
    chmod -R u+w "$work/src"
    (cd "$work/src" && nice -n 10 "$GO" build -p "$P" -trimpath -ldflags "-s -w -X main.VERSION=$SEALED_SECRETS_VERSION" \
        -o "$1/bin/kubeseal" ./cmd/kubeseal) >&2
}
build_crds() {
    local out=$1 d
    log "crds: github.com/external-secrets/external-secrets@$EXTERNAL_SECRETS_VERSION"
    d=$(module_dir "github.com/external-secrets/external-secrets@$EXTERNAL_SECRETS_VERSION")
    cp "$d"/config/crds/bases/external-secrets.io_{externalsecrets,secretstores,clustersecretstores}.yaml "$out/"
    log "crds: github.com/bitnami-labs/sealed-secrets@$SEALED_SECRETS_VERSION"
    d=$(module_dir "github.com/bitnami-labs/sealed-secrets@$SEALED_SECRETS_VERSION")
    cp "$d/helm/sealed-secrets/crds/bitnami.com_sealedsecrets.yaml" "$out/sealedsecret-crd.yaml"
    log "crds: github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION"
    d=$(module_dir "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION")
    cp "$d/manifests/crds/application-crd.yaml" "$out/"
    log "crds: github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_CONTROLLER_VERSION"
    d=$(module_dir "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_CONTROLLER_VERSION")
    cp "$d/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml" "$out/"
    log "crds: github.com/fluxcd/source-controller@$FLUX_SOURCE_CONTROLLER_VERSION"
    d=$(module_dir "github.com/fluxcd/source-controller@$FLUX_SOURCE_CONTROLLER_VERSION")
    cp "$d/config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml" "$out/"
    chmod 0644 "$out"/*.yaml
}

# The built binary runs and names its version (a binary that does not is no test tool).
check_tool() { # TOOL DIR
    local b=$2/bin
    case "$1" in
        kustomize) "$b/kustomize" version ;;
        age) "$b/age" --version && "$b/age-keygen" --version ;;
        sops) "$b/sops" --disable-version-check --version ;;
        helm) "$b/helm" version --short ;;
        kubeseal) "$b/kubeseal" --version ;;
        crds) ls "$2" ;;
    esac >/dev/null 2>&1 || die "the built $1 does not run ($2)"
}

# ensure TOOL: the tool's cache dir, built when missing. Sets $dest.
ensure() {
    local tool=$1 version t
    version=$(version_of "$tool")
    dest="$root/$tool/$version"
    if complete "$tool" "$dest"; then
        log "$tool $version: cached ($dest)"
        return 0
    fi
    mkdir -p "$root/$tool"
    take_lock "$root/$tool/.lock-$version" "$tool $version"
    if complete "$tool" "$dest"; then
        log "$tool $version: cached ($dest)"
        exec 9>&-
        return 0
    fi
    remove_stale "$root/$tool/.build-$version"
    [ "${go_ready:-0}" = 1 ] || { go_env "$cache"; go_ready=1; }   # only a build needs Go
    work=$(mktemp -d "$root/$tool/.build-$version.XXXXXX")
    trap 'rmtree "$work"' EXIT
    mkdir -p "$work/out/bin"
    t=$SECONDS
    if [ "$tool" = crds ]; then log "crds $version: fetching (go mod download)"; else log "$tool $version: building (go -p $P, niced)"; fi
    case "$tool" in
        kustomize) build_kustomize "$work/out" ;;
        age) build_age "$work/out" ;;
        sops) build_sops "$work/out" ;;
        crds) build_crds "$work/out" ;;
        helm) build_helm "$work/out" ;;
        kubeseal) build_kubeseal "$work/out" ;;
    esac
    [ "$tool" = crds ] && rmdir "$work/out/bin"
    check_tool "$tool" "$work/out"
    echo "BUILD_SECONDS=$((SECONDS - t))" >"$work/out/.complete"
    rmtree "$dest"
    mv "$work/out" "$dest"
    rmtree "$work"
    trap - EXIT
    exec 9>&-   # release the lock
    log "$tool $version: done in $((SECONDS - t))s ($dest)"
}

# One function, called on the last line: bash has read the whole script before it runs any of it, so
# editing the file while a build runs cannot change what the running copy does next.
main() {
    local tools=("$@") tool b results=()
    [ "${#tools[@]}" -gt 0 ] || tools=("${ALL[@]}")
    for tool in "${tools[@]}"; do version_of "$tool" >/dev/null; done
    for tool in "${tools[@]}"; do
        ensure "$tool"
        if [ "$tool" = crds ]; then
            results+=("crds=$dest")
        else
            for b in $(binaries_of "$tool"); do results+=("$b=$dest/bin/$b"); done
        fi
    done
    printf '%s\n' "${results[@]}"
}

main "$@"; exit
