#!/bin/sh
# Entrypoint of the shop example's PostgreSQL image.
#
# First start (empty volume): initdb, network access with SCRAM passwords.
# Every start: make sure the app role exists with the password from
# POSTGRES_PASSWORD (so a rotated secret takes effect) and that POSTGRES_DB
# exists, using a temporary server reachable only on a private socket (the
# healthcheck cannot see it). Then exec postgres as PID 1: it gets the stop
# signal directly and shuts down cleanly.
set -eu

if [ "${1:-}" != "postgres" ]; then
    exec "$@"
fi

PGDATA="${PGDATA:-/var/lib/postgresql/data/pgdata}"
POSTGRES_USER="${POSTGRES_USER:-shop}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
export PGDATA POSTGRES_USER POSTGRES_DB

if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "db: POSTGRES_PASSWORD is not set (compose sets it from DB_PASSWORD)" >&2
    exit 1
fi
if [ "$POSTGRES_USER" = "postgres" ]; then
    echo "db: POSTGRES_USER must not be the superuser 'postgres'" >&2
    exit 1
fi

# Started as root (for example on a volume owned by root): fix ownership of
# the data directory, then run this script again as postgres.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

mkdir -p "$PGDATA"
chmod 0700 "$PGDATA" 2>/dev/null || true

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "db: initialising a new cluster in $PGDATA"
    initdb --pgdata="$PGDATA" --username=postgres --encoding=UTF8 \
        --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    # The superuser only over the local socket (peer); everyone else, locally
    # or over the network, with a SCRAM password. (pg_isready probes as the
    # app user and closes at the password prompt, which the server does not log.)
    cat >"$PGDATA/pg_hba.conf" <<'HBA'
# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             postgres                                peer
local   all             all                                     scram-sha-256
host    all             all             0.0.0.0/0               scram-sha-256
host    all             all             ::/0                    scram-sha-256
HBA
    cat >>"$PGDATA/postgresql.conf" <<'CONF'

# stackctl example
listen_addresses = '*'
password_encryption = 'scram-sha-256'
log_timezone = 'UTC'
timezone = 'UTC'
CONF
fi

socket_dir="$(mktemp -d)"
trap 'rm -rf "$socket_dir"' EXIT
pg_ctl --pgdata="$PGDATA" --wait --timeout=60 --silent \
    -o "-c listen_addresses='' -c unix_socket_directories='$socket_dir'" start
psql --host="$socket_dir" --username=postgres --dbname=postgres \
    --no-psqlrc --quiet --set=ON_ERROR_STOP=1 <<'SQL'
\getenv app_user POSTGRES_USER
\getenv app_password POSTGRES_PASSWORD
\getenv app_db POSTGRES_DB
SELECT format('CREATE ROLE %I LOGIN', :'app_user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
ALTER ROLE :"app_user" WITH LOGIN PASSWORD :'app_password';
SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') \gexec
SQL
pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
rm -rf "$socket_dir"
trap - EXIT

echo "db: ready to start PostgreSQL (role $POSTGRES_USER, database $POSTGRES_DB)"
exec "$@"
