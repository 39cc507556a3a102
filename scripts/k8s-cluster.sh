#!/usr/bin/env bash
# scripts/k8s-cluster.sh - a local Kubernetes cluster for trying stackctl promote by hand: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, and either KWOK (3 simulated nodes: pods
# never run, they are only declared Running/Ready) or ONE REAL NODE (--real-node: containerd + runc,
# kubelet, kube-proxy, CoreDNS, a default StorageClass whose claims bind to host directories, and a
# loopback registry on 127.0.0.1:5000 that the node pulls from). Binaries come from
# scripts/k8s-binaries.sh and scripts/k8s-node-binaries.sh (built first when missing: a long while).
#
#   eval "$(scripts/k8s-cluster.sh start --real-node)"
#   stackctl promote production --yes          # profiles/production.yaml pushes to 127.0.0.1:5000
#   scripts/k8s-cluster.sh status
#   scripts/k8s-cluster.sh stop                # everything: processes, containers, mounts, chains
#
# The kubeconfig has three contexts on the same cluster: stackctl-test (current), production and
# staging. A KWOK cluster lives in ${XDG_RUNTIME_DIR:-/tmp}/stackctl-k8s (--dir DIR), on 127.0.0.1.
# The real node (root only; one per machine) keeps its state in /var/tmp/stackctl-realnode; it binds
# to its pod bridge (10.244.0.1) and loopback only, and no packet from a pod leaves the machine
# (tests/k8s/realnode.py). A start after a crash cleans up what the crashed run left first.
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
