# shellcheck shell=bash
# Shared pieces of the scripts that build Kubernetes binaries from the Go
# module proxy (scripts/k8s-binaries.sh: control plane; scripts/k8s-node-binaries.sh:
# a real node). Sourced, never run; it defines functions and runs nothing.
#
#   log MSG...            "==> MSG" step line on stdout
#   die MSG...            "==> ERROR: MSG" on stderr, exit 1
#   rmtree DIR            rm -rf that also removes read-only module-cache copies
#   take_lock FILE WHAT   flock FILE on fd 9; waits (saying so) while another builder holds it
#   remove_stale PREFIX   removes PREFIX.* (temp dirs of interrupted builds; call under the lock)
#   go_env CACHE          finds $GO, sets $P, exports the shared Go build environment
#   json_field FIELD      first "FIELD": "value" of go's -json output on stdin
#   build_kube DIR BINDIR CMD...  builds k8s.io/kubernetes/cmd/CMD... at $KUBE_VERSION
#
# The callers use `set -euo pipefail`; these functions assume it.

log() { printf '==> %s\n' "$*"; }
die() { printf '==> ERROR: %s\n' "$*" >&2; exit 1; }

# Module cache files are read-only, so make trees writable before removing.
rmtree() { [ -e "$1" ] || return 0; chmod -R u+w "$1" 2>/dev/null || true; rm -rf "$1"; }

# One builder per version set at a time; the others wait and then reuse its
# result (each caller re-checks its cache after this returns). The lock lives
# on fd 9 for the rest of the calling script. Without flock(1) there is no lock.
take_lock() {
    exec 9>"$1"
    command -v flock >/dev/null 2>&1 || return 0
    if ! flock -n 9; then
        log "another build of $2 is running; waiting for it"
        flock 9
    fi
}

# Leftovers of interrupted builds (the caller holds the lock, so none is in progress).
remove_stale() {
    local stale
    for stale in "$1".*; do
        if [ -e "$stale" ]; then
            log "removing stale $stale"
            rmtree "$stale"
        fi
    done
}

# go_env CACHE: GOMODCACHE and GOCACHE under CACHE/go, shared by every build
# script, so modules are downloaded and packages compiled once per machine.
go_env() {
    GO=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}
    [ -x "$GO" ] || command -v "$GO" >/dev/null 2>&1 || die "go not found (set GO=/path/to/go)"
    P=${K8S_BUILD_P:-2}
    mkdir -p "$1/go/mod" "$1/go/build"
    export GOMODCACHE="$1/go/mod"
    export GOCACHE="$1/go/build"
    export GOTOOLCHAIN=local   # no toolchain downloads: a module needing a newer Go fails loudly
    export GOWORK=off
    export CGO_ENABLED=0       # static binaries, as the upstream release builds are
    export GOFLAGS="-buildvcs=false"
    unset GOBIN GOOS GOARCH
}

json_field() { sed -n "s/^[[:space:]]*\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" | head -n1; }

# k8s.io/kubernetes replaces every staging module with ./staging/..., so
# `go install k8s.io/kubernetes/cmd/X@v` refuses it; a wrapper module pins each
# staging module to the published v0.X.Y instead (a missing one fails with
# "unknown revision v0.0.0"), and copies upstream's godebug settings, which a
# dependency's go.mod does not pass on.
# build_kube WORKDIR BINDIR CMD...: build k8s.io/kubernetes/cmd/CMD into BINDIR,
# version-stamped as the release builds are. Needs $GO, $P, $KUBE_VERSION and
# $KUBE_STAGING_VERSION; leaves the shell in WORKDIR (a new directory).
build_kube() {
    local dir=$1 bindir=$2
    shift 2
    local t=$SECONDS kube_json kube_gomod kube_info kube_time godebug m c p v major minor ldf
    local staging=() edits=() pkgs=()
    log "kube: resolving k8s.io/kubernetes@$KUBE_VERSION"
    mkdir "$dir"
    cd "$dir" || die "cannot enter $dir"
    kube_json=$("$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION")
    kube_gomod=$(json_field GoMod <<<"$kube_json")
    kube_info=$(json_field Info <<<"$kube_json")
    # The release time, from the proxy's .info ({"Version":...,"Time":...}).
    kube_time=$(sed -n 's/.*"Time": *"\([^"]*\)".*/\1/p' "$kube_info" 2>/dev/null || true)
    [ -f "$kube_gomod" ] || die "go.mod of k8s.io/kubernetes@$KUBE_VERSION not found"
    mapfile -t staging < <(awk '{ for (i = 2; i < NF; i++) if ($i == "=>" && $(i+1) ~ /^\.\/staging\//) print $(i-1) }' "$kube_gomod")
    [ "${#staging[@]}" -gt 0 ] || die "no ./staging replace lines in $kube_gomod"
    log "kube: ${#staging[@]} staging modules -> $KUBE_STAGING_VERSION"
    godebug=$(awk '/^godebug[[:space:]]*\(/ { blk = 1 } blk { print; if ($0 ~ /^\)/) blk = 0; next } /^godebug[[:space:]]/ { print }' "$kube_gomod")

    "$GO" mod init local/k8sbin >&2
    for m in "${staging[@]}"; do edits+=("-replace=$m=$m@$KUBE_STAGING_VERSION"); done
    "$GO" mod edit "${edits[@]}"
    if [ -n "$godebug" ]; then
        log "kube: godebug from upstream go.mod: $(tr '\n' ' ' <<<"$godebug")"
        printf '\n%s\n' "$godebug" >>go.mod
    fi
    for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c@$KUBE_VERSION"); done
    "$GO" get -tool "${pkgs[@]}" >&2

    v=${KUBE_VERSION#v}
    major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
    ldf="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldf+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
        ldf+=" -X $p.gitTreeState=archive"
        # no git commit is known for a module download; clear the $Format placeholder
        ldf+=" -X $p.gitCommit="
        if [ -n "$kube_time" ]; then ldf+=" -X $p.buildDate=$kube_time"; fi
    done
    log "kube: building $* (the long part)"
    GOBIN="$bindir" "$GO" install -mod=mod -p "$P" -trimpath -ldflags "$ldf" tool >&2
    log "kube: done in $((SECONDS - t))s"
}
