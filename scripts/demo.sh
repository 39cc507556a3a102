#!/usr/bin/env bash
# scripts/demo.sh - the whole workflow on the bundled example (examples/shop), as a user runs it:
# secrets generated into the encrypted store, .env rendered and checked, the stack brought up
# health-gated and exercised over HTTP, a secret rotated (only its users restart), then the
# production profile promoted to a Kubernetes cluster and answering there. Run by `make demo`
# after scripts/setup.sh.
#
#   scripts/demo.sh                       # cluster: a local one with a REAL node (containerd +
#                                         # kubelet), built once from the Go module proxy (~25 min
#                                         # the first time on 2 cores, cached after that)
#   scripts/demo.sh --context CTX --registry HOST/PATH
#                                         # cluster: your kubeconfig's context CTX, images pushed
#                                         # to HOST/PATH (a registry that cluster can pull from);
#                                         # promoted as profiles/demo.yaml, a copy of production
#                                         # with your context (production only promotes to its own)
#   scripts/demo.sh --no-cluster          # the local half only
#
# The local stack and the cluster stay up afterwards so you can look at them; stop them with
#   .venv/bin/stackctl down            (add --volumes to drop the data too)
#   scripts/k8s-cluster.sh stop        (the local real-node cluster)
# DEMO_DOWN=1 tears the local stack down at the end instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CONTEXT="" REGISTRY="" CLUSTER=1
while [ $# -gt 0 ]; do
    case "$1" in
        --context) CONTEXT=${2:?--context needs a name}; shift ;;
        --registry) REGISTRY=${2:?--registry needs HOST/PATH}; shift ;;
        --no-cluster) CLUSTER=0 ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "demo.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -n "$CONTEXT" ] && [ -z "$REGISTRY" ]; then
    echo "demo.sh: error: --context needs --registry HOST/PATH too: the cluster must pull the images the demo builds" >&2
    exit 2
fi

S=.venv/bin/stackctl
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
# Show a build script's progress on stderr and hand on its last line (the directory it built).
shown_last_line() { local line last=""; while IFS= read -r line; do printf '    %s\n' "$line" >&2; last=$line; done; printf '%s\n' "$last"; }

say "secrets: generate what .env.example asks for (encrypted in .stackctl/secrets/local.json)"
$S secrets generate -p local
$S secrets list -p local

say "env: render .env for Compose (mode 0600) and check it against the template"
$S env render -p local
$S env check -p local

say "stackctl doctor: engine, Compose v2, profile, Compose project, .gitignore"
$S doctor -p local --offline

say "the resolved stack"
$S config -p local

say "up: build the images and start the stack, each service the moment its dependencies are ready"
$S up -p local --build

say "status"
$S status -p local

port=$(sed -n 's/^API_PORT=//p' .env | tr -d "'\"" | tail -n1)
port=${port:-8000}
say "exercise the api on http://localhost:$port"
curl -fsS "http://localhost:$port/ready"; echo
curl -fsS -X POST -H 'Content-Type: application/json' -d '{"name": "demo item", "price_cents": 1250}' "http://localhost:$port/items"; echo
curl -fsS "http://localhost:$port/items"; echo
curl -fsS -X POST -H 'Content-Type: application/json' -d '{"sub": "demo"}' "http://localhost:$port/auth/token"; echo

say "rotate JWT_SECRET: a new value (the old one kept in the history); up recreates only its users"
$S secrets rotate JWT_SECRET -p local
$S secrets history JWT_SECRET -p local
$S env render -p local
$S up -p local

if [ "${DEMO_DOWN:-0}" = 1 ]; then
    say "down"
    $S down -p local --volumes
else
    say "the local stack is running; stop it with: .venv/bin/stackctl down (add --volumes to drop its data)"
fi

[ "$CLUSTER" = 1 ] || exit 0

KUBECTL=kubectl
if [ -z "$CONTEXT" ]; then
    say "a local Kubernetes cluster with a real node (containerd, runc, kubelet, kube-proxy, CoreDNS)"
    echo "    The Kubernetes and node binaries build from the Go module proxy the first time: about"
    echo "    25 min on 2 cores (control plane ~13, then the node ~9). Cached in ~/.cache/stackctl afterwards (seconds)."
    KBIN=$(bash scripts/k8s-binaries.sh | shown_last_line)
    bash scripts/k8s-node-binaries.sh | shown_last_line >/dev/null
    KUBECTL="$KBIN/kubectl"
    if bash scripts/k8s-cluster.sh status --real-node >/dev/null 2>&1; then
        echo "    reusing the running local cluster (scripts/k8s-cluster.sh stop ends it)"
        eval "$(bash scripts/k8s-cluster.sh status --real-node | grep '^export KUBECONFIG=')"
    else
        eval "$(bash scripts/k8s-cluster.sh start --real-node)"
    fi
    [ -n "${KUBECONFIG:-}" ] || { echo "demo.sh: error: the local cluster did not start" >&2; exit 1; }
    PROFILE=production
    PROMOTE_ARGS=(--yes)
    CTX=production
else
    say "your cluster: context $CONTEXT, images to $REGISTRY (profile profiles/demo.yaml)"
    sed -e "s|^\(  context:\).*|\1 $CONTEXT|" -e "s|^\(  registry:\).*|\1 $REGISTRY|" \
        -e "s|^\(  protected:\).*|\1 false|" profiles/production.yaml >profiles/demo.yaml
    PROFILE=demo
    PROMOTE_ARGS=(--yes)
    CTX=$CONTEXT
fi
NS=$(sed -n 's/^  namespace: *//p' "profiles/$PROFILE.yaml" | head -n1)

say "secrets for $PROFILE (its own store: production values never equal local ones)"
$S secrets generate -p "$PROFILE"
$S secrets list -p "$PROFILE"

say "promote $PROFILE: build and push the images, apply in waves (db and cache, the migration, the api), wait on real probes"
$S promote "$PROFILE" "${PROMOTE_ARGS[@]}"
$S history "$PROFILE"

say "the api answers through its Service (kubectl port-forward svc/api)"
port=18000
"$KUBECTL" --context "$CTX" -n "$NS" port-forward svc/api "$port:8000" >/tmp/stackctl-demo-port-forward.log 2>&1 &
pf=$!
trap 'kill $pf 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$port/ready"; echo
curl -fsS "http://127.0.0.1:$port/"; echo
kill $pf 2>/dev/null || true

say "promote again: nothing changed, nothing written"
$S promote "$PROFILE" "${PROMOTE_ARGS[@]}"

if [ -z "$CONTEXT" ]; then
    say "the cluster is running (KUBECONFIG=$KUBECONFIG); stop it with: scripts/k8s-cluster.sh stop"
fi
