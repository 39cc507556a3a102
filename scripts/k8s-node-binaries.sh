#!/usr/bin/env bash
# Build what a real Kubernetes node needs, from the Go module proxy, into a
# per-version cache outside the repository (the sibling of scripts/k8s-binaries.sh,
# which builds the control plane):
#   containerd v2, its runc shim and ctr; runc (with seccomp); the CNI plugins
#   bridge, host-local, loopback, portmap, firewall; kubelet and kube-proxy at
#   the control plane's KUBE_VERSION; CoreDNS; and `pause`, a tiny static C
#   program (scripts/pause.c) that the rig wraps into the sandbox image.
# Release downloads are not needed; versions are in scripts/k8s-versions.env.
#
# Usage:  DIR=$(scripts/k8s-node-binaries.sh | tail -1)
#   DIR/bin/{containerd,containerd-shim-runc-v2,ctr,runc,kubelet,kube-proxy,coredns,pause}
#   DIR/cni/{bridge,host-local,loopback,portmap,firewall}
#   Step lines start with "==>" (go's own output goes to stderr); the last line
#   of stdout is DIR. When everything is already built it only checks the cache.
#   A cold build takes ~25 min on 2 cores (about 8-9 min when scripts/k8s-binaries.sh
#   has already filled the shared GOCACHE: kubelet and kube-proxy then mostly
#   link); `nice -n 19 ionice -c3` keeps the machine usable meanwhile.
#
# Needs, besides go: a C compiler with a static libc (pause; runc's cgo part),
# pkg-config and libseccomp's headers (runc's seccomp support). When any is
# missing and we are root on Debian they are installed with apt-get
# (gcc libc6-dev pkg-config libseccomp-dev); otherwise the script stops and
# names them. runc links libseccomp dynamically (libseccomp2 is part of Debian's
# base system).
#
# Environment:
#   STACKCTL_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/stackctl)
#   GO              go command (default: go on PATH, else /usr/local/go/bin/go)
#   CC              C compiler (default gcc)
#   K8S_BUILD_P     go build -p parallelism (default 2)
#
# Layout (under the cache root):
#   k8s-node/<kube>-containerd<v>-runc<v>-cni<v>-coredns<v>/bin/...  the binaries above
#   k8s-node/<...>/cni/...                    the CNI plugins (the kubelet's CNI bin dir)
#   k8s-node/<...>/.complete                  marker written last: versions, build seconds
#   go/mod, go/build                          GOMODCACHE and GOCACHE, shared with
#                                             scripts/k8s-binaries.sh (kubelet reuses
#                                             the control plane's compiled packages)
# Everything is built in a temporary sibling directory and renamed into place
# at the end, so an interrupted build never leaves a partial set behind.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=k8s-versions.env
. "$here/k8s-versions.env"
# shellcheck source-path=SCRIPTDIR source=lib/gobuild.sh
. "$here/lib/gobuild.sh"
: "${KUBE_VERSION:?KUBE_VERSION missing in k8s-versions.env}"
: "${CONTAINERD_VERSION:?CONTAINERD_VERSION missing in k8s-versions.env}"
: "${RUNC_VERSION:?RUNC_VERSION missing in k8s-versions.env}"
: "${CNI_PLUGINS_VERSION:?CNI_PLUGINS_VERSION missing in k8s-versions.env}"
: "${COREDNS_VERSION:?COREDNS_VERSION missing in k8s-versions.env}"
# Kubernetes v1.X.Y publishes its staging modules (k8s.io/api, ...) as v0.X.Y.
KUBE_STAGING_VERSION=${KUBE_STAGING_VERSION:-v0.${KUBE_VERSION#v1.}}

cache=${STACKCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stackctl}
key="${KUBE_VERSION}-containerd${CONTAINERD_VERSION}-runc${RUNC_VERSION}-cni${CNI_PLUGINS_VERSION}-coredns${COREDNS_VERSION}"
root="$cache/k8s-node"
dest="$root/$key"
bins=(containerd containerd-shim-runc-v2 ctr runc kubelet kube-proxy coredns pause)
cni=(bridge host-local loopback portmap firewall)

CONTAINERD_MOD=github.com/containerd/containerd/v2
RUNC_MOD=github.com/opencontainers/runc
CNI_MOD=github.com/containernetworking/plugins
COREDNS_MOD=github.com/coredns/coredns
CC=${CC:-gcc}

is_complete() {
    [ -f "$dest/.complete" ] || return 1
    local b
    for b in "${bins[@]}"; do [ -x "$dest/bin/$b" ] || return 1; done
    for b in "${cni[@]}"; do [ -x "$dest/cni/$b" ] || return 1; done
}

# Fast path: nothing to do.
if is_complete; then
    log "cached: $dest"
    echo "$dest"
    exit 0
fi

mkdir -p "$root"
take_lock "$root/.lock-$key" "$key"
if is_complete; then
    log "cached: $dest"
    echo "$dest"
    exit 0
fi
remove_stale "$root/.build-$key"
if [ -e "$dest" ]; then
    log "removing incomplete $dest"
    rmtree "$dest"
fi

go_env "$cache"
work=$(mktemp -d "$root/.build-$key.XXXXXX")
trap 'rmtree "$work"' EXIT
out="$work/out"
mkdir -p "$out/bin" "$out/cni"
cd "$work"   # a neutral cwd for the go commands: no project go.mod or go.work around

# ---------------------------------------------------------------- C toolchain
# Checked before any Go build, so a missing package fails in seconds, not
# after twenty minutes of compiling.
# c_missing: the Debian packages whose absence the checks below detect.
c_missing() {
    local need=()
    if ! command -v "$CC" >/dev/null 2>&1; then
        need+=(gcc libc6-dev)
    elif ! printf 'int main(void) { return 0; }\n' |
        "$CC" -static -x c -o "$work/cc-check" - >/dev/null 2>&1; then
        need+=(libc6-dev)   # the compiler runs but cannot link statically
    fi
    command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
    pkg-config --exists libseccomp 2>/dev/null || need+=(libseccomp-dev)
    rm -f "$work/cc-check"
    echo "${need[*]}"
}
missing=$(c_missing)
if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then
        log "installing Debian packages for pause and runc: $missing"
        # Non-interactive, output to stderr; waits for a concurrent apt (setup.sh) to finish.
        apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q "$@" </dev/null >&2; }
        # shellcheck disable=SC2086  # $missing is a list of package names
        if ! apt_get install -y --no-install-recommends $missing; then
            # stale package lists are the usual cause; refresh them once
            apt_get update || true
            # shellcheck disable=SC2086
            apt_get install -y --no-install-recommends $missing || die "apt-get install $missing failed"
        fi
        missing=$(c_missing)
        [ -z "$missing" ] || die "still missing after apt-get install: $missing (CC=$CC)"
    else
        die "pause and runc need a C compiler with a static libc, pkg-config and libseccomp's headers;" \
            "missing: $missing. On Debian, as root: apt-get install $missing (CC=$CC)"
    fi
fi

log "go: $("$GO" version); cc: $("$CC" --version | head -n1)"
log "versions: kubernetes $KUBE_VERSION (staging $KUBE_STAGING_VERSION), containerd $CONTAINERD_VERSION," \
    "runc $RUNC_VERSION, cni plugins $CNI_PLUGINS_VERSION, coredns $COREDNS_VERSION"
log "cache: $cache"
log "building $key: ~25 min cold on 2 cores, seconds when cached"
start=$SECONDS
timings=()
# done_step NAME T0: log and record how long a component took.
done_step() {
    local s=$((SECONDS - $2))
    log "$1: done in ${s}s"
    timings+=("$(tr 'a-z-' 'A-Z_' <<<"$1")_SECONDS=$s")
}

# ---------------------------------------------------------------- pause
# The sandbox process: static, so it runs in an image FROM scratch.
t=$SECONDS
log "pause: compiling scripts/pause.c (static; about a second)"
"$CC" -static -Os -s -Wall -Wextra -Werror -std=c99 -o "$out/bin/pause" "$here/pause.c" >&2
done_step pause "$t"

# ---------------------------------------------------------------- runc
# cgo is required: runc's nsexec is C, and seccomp support (the `seccomp` tag)
# links libseccomp through pkg-config. Its version comes from the embedded
# VERSION file; the module proxy knows no git commit, so none is stamped.
# Not the `libpathrs` tag of upstream's Makefile: that needs a Rust library; the
# pure-Go fallback is used instead.
t=$SECONDS
log "runc: building @ $RUNC_VERSION (~40 s cold on 2 cores)"
CGO_ENABLED=1 GOBIN="$out/bin" "$GO" install -p "$P" -trimpath \
    -tags "seccomp urfave_cli_no_docs" -ldflags "-s -w" \
    "$RUNC_MOD@$RUNC_VERSION" >&2
done_step runc "$t"

# ---------------------------------------------------------------- CNI plugins
# Stamped as upstream's release builds are, so `CNI bridge plugin v1.x` is right.
t=$SECONDS
log "cni: building ${cni[*]} @ $CNI_PLUGINS_VERSION (~25 s cold on 2 cores)"
cni_pkgs=(
    "$CNI_MOD/plugins/main/bridge@$CNI_PLUGINS_VERSION"
    "$CNI_MOD/plugins/ipam/host-local@$CNI_PLUGINS_VERSION"
    "$CNI_MOD/plugins/main/loopback@$CNI_PLUGINS_VERSION"
    "$CNI_MOD/plugins/meta/portmap@$CNI_PLUGINS_VERSION"
    "$CNI_MOD/plugins/meta/firewall@$CNI_PLUGINS_VERSION"
)
GOBIN="$out/cni" "$GO" install -p "$P" -trimpath \
    -ldflags "-s -w -X $CNI_MOD/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" \
    "${cni_pkgs[@]}" >&2
done_step cni "$t"

# ---------------------------------------------------------------- containerd
# The no_* tags leave out snapshotters that need C libraries or kernel features
# the node does not use (overlayfs and native remain). urfave_cli_no_docs is in
# upstream's default tags; no_grpc is what upstream builds the shim with (it
# talks ttrpc only). Version stamping as upstream's Makefile does it.
t=$SECONDS
log "containerd: building containerd, ctr, containerd-shim-runc-v2 @ $CONTAINERD_VERSION (~4-5 min cold on 2 cores)"
ctd_tags="no_btrfs no_devmapper no_zfs urfave_cli_no_docs"
ctd_ldf="-s -w -X $CONTAINERD_MOD/version.Version=$CONTAINERD_VERSION -X $CONTAINERD_MOD/version.Package=$CONTAINERD_MOD"
GOBIN="$out/bin" "$GO" install -p "$P" -trimpath -tags "$ctd_tags" -ldflags "$ctd_ldf" \
    "$CONTAINERD_MOD/cmd/containerd@$CONTAINERD_VERSION" "$CONTAINERD_MOD/cmd/ctr@$CONTAINERD_VERSION" >&2
GOBIN="$out/bin" "$GO" install -p "$P" -trimpath -tags "$ctd_tags no_grpc" -ldflags "$ctd_ldf" \
    "$CONTAINERD_MOD/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" >&2
done_step containerd "$t"

# ---------------------------------------------------------------- CoreDNS
# CoreDNS's go.mod has no replace or exclude lines, so `go install @version`
# works without a wrapper module; its plugin list (core/plugin, generated from
# plugin.cfg) is committed in the module. grpcnotrace is upstream's default
# tag. GitCommit is what `git describe` gives on the release tag.
t=$SECONDS
log "coredns: building @ $COREDNS_VERSION (~8 min cold on 2 cores)"
GOBIN="$out/bin" "$GO" install -p "$P" -trimpath -tags grpcnotrace \
    -ldflags "-s -w -X $COREDNS_MOD/coremain.GitCommit=$COREDNS_VERSION" \
    "$COREDNS_MOD@$COREDNS_VERSION" >&2
done_step coredns "$t"

# ---------------------------------------------------------------- kubelet, kube-proxy
# The same wrapper module and version stamping as the control plane's build.
t=$SECONDS
log "kube: kubelet, kube-proxy @ $KUBE_VERSION (~12 min cold on 2 cores; less when the control plane's packages are in GOCACHE)"
build_kube "$work/kube" "$out/bin" kubelet kube-proxy   # logs its own "done in"
cd "$work"
timings+=("KUBELET_KUBE_PROXY_SECONDS=$((SECONDS - t))")

# ---------------------------------------------------------------- verify
# output_of NAME EXPECTED CMD...: CMD's output; CMD must succeed and print EXPECTED somewhere.
output_of() {
    local name=$1 want=$2 got
    shift 2
    got=$("$@" 2>&1 </dev/null) || die "$name: '$*' failed: $got"
    grep -qF -- "$want" <<<"$got" || die "$name: expected '$want' in the output of '$*', got: $got"
    printf '%s\n' "$got"
}
# check NAME EXPECTED CMD...: as output_of, and log the first lines of the output.
check() {
    local got
    got=$(output_of "$@") || exit 1
    log "  $1: $(head -n4 <<<"$got" | tr -s '\n\t ' ' ')"
}
log "verifying binaries"
b="$out/bin"
check containerd "$CONTAINERD_VERSION" "$b/containerd" --version
check containerd-shim-runc-v2 "$CONTAINERD_VERSION" "$b/containerd-shim-runc-v2" -v
check ctr "$CONTAINERD_VERSION" "$b/ctr" --version
# the libseccomp line appears only when runc was built with the seccomp tag
check runc "libseccomp:" "$b/runc" --version
output_of runc "runc version ${RUNC_VERSION#v}" "$b/runc" --version >/dev/null
check kubelet "Kubernetes $KUBE_VERSION" "$b/kubelet" --version
check kube-proxy "Kubernetes $KUBE_VERSION" "$b/kube-proxy" --version
check coredns "CoreDNS-${COREDNS_VERSION#v}" "$b/coredns" -version
check pause "stackctl-pause" "$b/pause" -v
for p in "${cni[@]}"; do
    # CNI_COMMAND=VERSION (empty stdin): the CNI protocol versions as JSON; with no
    # CNI_COMMAND a plugin prints its build version ("CNI bridge plugin v1.x").
    output_of "cni/$p" '"supportedVersions"' env CNI_COMMAND=VERSION "$out/cni/$p" >/dev/null
    check "cni/$p" "$CNI_PLUGINS_VERSION" env -u CNI_COMMAND "$out/cni/$p"
done
for f in "${bins[@]}"; do [ -x "$b/$f" ] || die "$f was not built"; done

{
    echo "KUBE_VERSION=$KUBE_VERSION"
    echo "KUBE_STAGING_VERSION=$KUBE_STAGING_VERSION"
    echo "CONTAINERD_VERSION=$CONTAINERD_VERSION"
    echo "RUNC_VERSION=$RUNC_VERSION"
    echo "CNI_PLUGINS_VERSION=$CNI_PLUGINS_VERSION"
    echo "COREDNS_VERSION=$COREDNS_VERSION"
    echo "GO_VERSION=$("$GO" env GOVERSION)"
    echo "BUILT_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf '%s\n' "${timings[@]}"
    echo "BUILD_SECONDS=$((SECONDS - start))"
} >"$out/.complete"
mv -T "$out" "$dest"
log "built $key in $((SECONDS - start))s"
echo "$dest"
