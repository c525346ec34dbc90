#!/bin/sh
# PostgreSQL in the Swarm stack, for both the official image (its own entrypoint does the
# work) and the project's offline Debian base (initdb here, as the official one would).
set -eu
if command -v docker-entrypoint.sh >/dev/null 2>&1; then
  exec docker-entrypoint.sh postgres
fi
bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
: "${PGDATA:?}" "${POSTGRES_USER:?}" "${POSTGRES_DB:?}" "${POSTGRES_PASSWORD_FILE:?}"
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$(dirname "$PGDATA")" /run/postgresql
chmod 700 "$PGDATA"
run() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  install -o postgres -m 400 "$POSTGRES_PASSWORD_FILE" /tmp/pwfile
  run "$bin/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile --auth-host=scram-sha-256 --auth-local=trust >/dev/null
  rm -f /tmp/pwfile
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  run "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  run "$bin/psql" -q -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\"" 2>/dev/null || true
  run "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$PGDATA" -c listen_addresses='*'
