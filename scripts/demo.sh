#!/usr/bin/env bash
# scripts/demo.sh - the main job on the bundled example (examples/shop), as a user runs it:
# secrets generated into the encrypted store, .env rendered and checked, the stack brought up
# health-gated, then exercised over HTTP. Run by `make demo` after scripts/setup.sh.
#
# The stack stays up afterwards so you can look at it; stop it with
#   .venv/bin/stackctl down            (add --volumes to drop the data too)
# DEMO_DOWN=1 tears it down at the end instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

S=.venv/bin/stackctl
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

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

if [ "${DEMO_DOWN:-0}" = 1 ]; then
    say "down"
    $S down -p local --volumes
else
    say "the stack is running; stop it with: .venv/bin/stackctl down (add --volumes to drop its data)"
fi
