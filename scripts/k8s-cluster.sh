#!/usr/bin/env bash
# scripts/k8s-cluster.sh - a local Kubernetes control plane for trying stackctl
# promote by hand: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and KWOK (3 simulated nodes, a default StorageClass whose
# claims bind), all on 127.0.0.1, from the binaries scripts/k8s-binaries.sh
# builds (it builds them first when they are missing: a long while).
#
#   scripts/k8s-cluster.sh start     # prints `export KUBECONFIG=...`
#   eval "$(scripts/k8s-cluster.sh start)"
#   stackctl promote production --context production --yes
#   scripts/k8s-cluster.sh status
#   scripts/k8s-cluster.sh stop
#
# The kubeconfig has three contexts on the same cluster: stackctl-test
# (current), production and staging. State and logs live in
# ${XDG_RUNTIME_DIR:-/tmp}/stackctl-k8s (override with --dir DIR).
# Pods never run: KWOK only simulates them (Running/Ready, Jobs complete).
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON="$REPO_ROOT/.venv/bin/python"
[ -x "$PYTHON" ] || { echo "k8s-cluster.sh: error: $PYTHON not found; run 'make setup' first" >&2; exit 1; }
case "${1:-}" in
    start | stop | status) ;;
    -h | --help | "") sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "k8s-cluster.sh: error: unknown action '$1' (start, stop, status)" >&2; exit 2 ;;
esac
exec "$PYTHON" "$REPO_ROOT/tests/k8s/rig.py" "$@"
