#!/bin/sh
# Entrypoint of the shop example's Redis image: append-only persistence in
# /data, reachable on the container network. With REDIS_PASSWORD set, clients
# must AUTH; the password goes into a private config file, not the command
# line. Extra arguments are passed on to redis-server.
set -eu

conf="$(mktemp)"
chmod 0600 "$conf"
cat >"$conf" <<CONF
bind 0.0.0.0
port 6379
dir /data
appendonly yes
appendfsync everysec
save ""
CONF
if [ -n "${REDIS_PASSWORD:-}" ]; then
    # Quote for redis.conf: backslash and double quote are escaped.
    escaped="$(printf '%s' "$REDIS_PASSWORD" | sed 's/[\\"]/\\&/g')"
    printf 'requirepass "%s"\n' "$escaped" >>"$conf"
else
    # Only reachable on the internal network; no password configured.
    printf 'protected-mode no\n' >>"$conf"
fi

exec redis-server "$conf" "$@"
