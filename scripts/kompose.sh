#!/usr/bin/env bash
# Build kompose (the Compose -> Kubernetes converter stackctl's render is benchmarked against,
# bench/kompose.py) from the Go module proxy into a per-version cache outside the repository.
# Nothing of kompose's is committed here; bench/ calls this script when the binary is missing.
#
# Usage:  BIN=$(scripts/kompose.sh | tail -1)
#   BIN is the kompose binary. Step lines start with "==>".
#   A cold build takes several minutes on 2 cores (niced); a warm cache returns at once.
#
# Environment: STACKCTL_CACHE (cache root), GO (go command), K8S_BUILD_P (go build -p, default 2),
#              KOMPOSE_VERSION (default below; a new version selects a new cache dir).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/gobuild.sh
. "$here/lib/gobuild.sh"

KOMPOSE_VERSION=${KOMPOSE_VERSION:-v1.37.0}
cache=${STACKCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stackctl}
dest="$cache/kompose/$KOMPOSE_VERSION"

complete() { [ -f "$dest/.complete" ] && [ -x "$dest/bin/kompose" ]; }
if complete; then
    log "cached: $dest"
    echo "$dest/bin/kompose"
    exit 0
fi

mkdir -p "$cache/kompose"
take_lock "$cache/kompose/.lock-$KOMPOSE_VERSION" "kompose $KOMPOSE_VERSION"
if complete; then
    log "cached: $dest"
    echo "$dest/bin/kompose"
    exit 0
fi
remove_stale "$cache/kompose/.build-$KOMPOSE_VERSION"
go_env "$cache"

work=$(mktemp -d "$cache/kompose/.build-$KOMPOSE_VERSION.XXXXXX")
trap 'rmtree "$work"' EXIT
t=$SECONDS
log "kompose: fetching github.com/kubernetes/kompose@$KOMPOSE_VERSION"
src=$(cd "$work" && "$GO" mod download -json "github.com/kubernetes/kompose@$KOMPOSE_VERSION" | json_field Dir)
[ -d "$src" ] || die "module source of kompose@$KOMPOSE_VERSION not found"
# kompose's go.mod has replace lines (go install pkg@version refuses those), so build inside a
# writable copy of the module, where they apply. Niced: it shares the machine with the tests.
cp -r "$src" "$work/src"
chmod -R u+w "$work/src"
mkdir -p "$work/out/bin"
log "kompose: building (go build -p $P)"
(cd "$work/src" && nice -n 10 "$GO" build -p "$P" -trimpath -ldflags "-s -w" \
    -o "$work/out/bin/kompose" .) >&2
"$work/out/bin/kompose" version >/dev/null 2>&1 || die "the built kompose does not run"
echo "BUILD_SECONDS=$((SECONDS - t))" >"$work/out/.complete"
rmtree "$dest"
mv "$work/out" "$dest"
log "kompose: done in $((SECONDS - t))s"
echo "$dest/bin/kompose"
