#!/bin/sh
# First start (empty /var/lib/mysql): create the system tables, the database and its user with
# MARIADB_PASSWORD. Later starts ignore the variables, as the official image does.
set -eu
if [ "${1:-}" = mariadbd ] && [ ! -d /var/lib/mysql/mysql ]; then
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db --auth-root-authentication-method=socket \
    >/dev/null
  mariadbd --user=mysql --skip-networking --socket=/run/mysqld/init.sock &
  pid=$!
  i=0
  until mariadb-admin --socket=/run/mysqld/init.sock ping >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -lt 120 ] || { echo "mariadbd did not start" >&2; exit 1; }; sleep 0.5
  done
  mariadb --socket=/run/mysqld/init.sock <<SQL
CREATE DATABASE \`${MARIADB_DATABASE}\`;
CREATE USER '${MARIADB_USER}'@'%' IDENTIFIED BY '${MARIADB_PASSWORD}';
GRANT ALL ON \`${MARIADB_DATABASE}\`.* TO '${MARIADB_USER}'@'%';
SQL
  kill "$pid"
  wait "$pid" || true
fi
if [ "${1:-}" = mariadbd ]; then
  exec mariadbd --user=mysql --bind-address=0.0.0.0
fi
exec "$@"
