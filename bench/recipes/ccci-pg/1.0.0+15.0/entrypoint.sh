#!/bin/sh
# First boot: initdb, then a schema loaded with SEED_ROWS rows (~1 kB each), then INIT_SECONDS of
# further initialisation (a stand-in for an app like keycloak that seeds itself for a minute).
# Later boots: migrate to this version, then serve. postgres runs as PID 1 (setpriv execs).
set -eu
DATA=/var/lib/postgresql/data
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p /run/postgresql && chown postgres:postgres /run/postgresql
chown postgres:postgres "$DATA" && chmod 700 "$DATA"
# Initialisation and migrations use a private socket: the health check (on /run/postgresql)
# must not pass before they are done.
PRIVATE=/tmp/ccci-init
mkdir -p "$PRIVATE" && chown postgres:postgres "$PRIVATE"
local_start() { as_pg pg_ctl -D "$DATA" -o "-c listen_addresses= -c unix_socket_directories=$PRIVATE -c max_wal_size=64MB" -w start >/dev/null; }
local_stop() { as_pg pg_ctl -D "$DATA" -m fast -w stop >/dev/null; }
sql() { as_pg psql -q -v ON_ERROR_STOP=1 -h "$PRIVATE" -U postgres -c "$1"; }
if [ ! -s "$DATA/PG_VERSION" ]; then
  as_pg initdb -D "$DATA" --auth=trust -E UTF8 --no-instructions >/dev/null
  local_start
  sql "create table schema_version(version text not null)"
  sql "insert into schema_version values ('1.0')"
  sql "create table items(id bigserial primary key, payload text not null)"
  sql "insert into items(payload) select repeat(md5(i::text), 30) from generate_series(1, ${SEED_ROWS}) i"
  sql "checkpoint"
  sleep "${INIT_SECONDS}"
  local_stop
fi
# 1.0 is the first schema: nothing to migrate.
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$DATA" -c listen_addresses=
