# shellcheck shell=bash
# scripts/services.sh, PostgreSQL with its role and database. Sourced by services.sh after its settings.

# From /: the caller's folder may be one the postgres user cannot enter (a clone under /tmp),
# and psql says so on every call.
pg() { (cd / && runuser -u postgres -- "$@"); }

start_postgres() {
  local dir=$STATE/pg
  install -d -o postgres -g postgres -m 755 "$dir" "$dir/run"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    install -d -o postgres -g postgres -m 700 "$dir/data"
    (umask 077; printf '%s\n' "$PG_SUPER_PASS" >"$dir/pwfile"); chown postgres "$dir/pwfile"
    pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
      --pwfile="$dir/pwfile" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || die "initdb failed (see $dir/initdb.log)"
    rm -f "$dir/pwfile"
  fi
  if ! pid_alive "$(pid_from "$dir/data/postmaster.pid")"; then
    local durability=""
    # Tests skip fsync (an OS crash is not what they test) but keep synchronous commits: a
    # killed postmaster must not lose a commit it acknowledged, as the failover tests check.
    [ "$PROFILE" = test ] && durability="-c fsync=off"
    pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $dir/run $durability" start >/dev/null \
      || die "PostgreSQL did not start (see $dir/postgres.log)"
  fi
  if [ ! -f "$dir/role" ]; then
    pg psql -h "$dir/run" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q \
      -v pass="$PG_FOG_PASS" >/dev/null <<'EOF'
CREATE ROLE fog LOGIN PASSWORD :'pass';
CREATE DATABASE fog OWNER fog;
EOF
    touch "$dir/role"
  fi
}

stop_postgres() {
  local dir=$STATE/pg
  pid_alive "$(pid_from "$dir/data/postmaster.pid")" || return 0
  pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || {
    local pid; pid=$(pid_from "$dir/data/postmaster.pid")
    pid_alive "$pid" && kill -9 "$pid" 2>/dev/null || true
  }
}
