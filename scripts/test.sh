#!/usr/bin/env bash
# scripts/test.sh - run the whole test suite, every tier (docker-marked tests
# included), with the project's venv. Extra arguments go to pytest:
#   scripts/test.sh -k secrets -x
#   scripts/test.sh tests/test_cli.py --timeout=60
# Run scripts/setup.sh (or `make setup`) first.
#
# Env:
#   STACKCTL_REQUIRE_DOCKER  exported as 1 unless already set: docker tests
#                            fail instead of skipping when Docker is missing
#   STACKCTL_TEST_TIMEOUT    per-test timeout in seconds (default 900)
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

PYTHON="$REPO_ROOT/.venv/bin/python"
if [ ! -x "$PYTHON" ]; then
    echo "test.sh: error: $PYTHON not found. Fix: run 'make setup' (scripts/setup.sh) first." >&2
    exit 1
fi

export STACKCTL_REQUIRE_DOCKER="${STACKCTL_REQUIRE_DOCKER:-1}"
export STACKCTL_REQUIRE_K8S="${STACKCTL_REQUIRE_K8S:-1}"

# Test tests/ unless the caller named paths / node ids of their own.
targets=(tests/)
for arg in "$@"; do
    case "$arg" in
        -*) ;;
        *::* | tests | tests/*) targets=() ; break ;;
        *) if [ -e "$arg" ]; then targets=(); break; fi ;;
    esac
done

# The type and lint gates come first (seconds) and fail the run, but pytest still runs so one
# command reports everything. Rules live in pyproject.toml ([tool.mypy], [tool.ruff]).
gates=0
echo "==> mypy --strict (pyproject [tool.mypy])"
"$REPO_ROOT/.venv/bin/mypy" || gates=1
echo "==> ruff check"
"$REPO_ROOT/.venv/bin/ruff" check stackctl tests bench scripts || gates=1

echo "==> pytest (STACKCTL_REQUIRE_DOCKER=$STACKCTL_REQUIRE_DOCKER STACKCTL_REQUIRE_K8S=$STACKCTL_REQUIRE_K8S)"
status=0
# --timeout comes first so a caller's own --timeout=N (later) wins.
"$PYTHON" -m pytest --timeout="${STACKCTL_TEST_TIMEOUT:-900}" "${targets[@]+"${targets[@]}"}" "$@" \
    || status=$?

if [ "$status" -eq 5 ]; then
    echo "test.sh: error: pytest collected no tests (exit 5); an empty run counts as a failure." >&2
    exit 1
fi
if [ "$gates" -ne 0 ]; then
    echo "test.sh: error: mypy or ruff reported findings (above); fix them, the gate is part of the test command." >&2
    [ "$status" -eq 0 ] && status=1
fi
exit "$status"
