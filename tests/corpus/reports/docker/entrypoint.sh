#!/bin/sh
# Prepare the writable scratch space (the root filesystem is read-only), then run the command.
set -eu
mkdir -p "${REPORTS_DIR:-/tmp/reports}"
echo "reports: starting $*" >&2
exec "$@"
