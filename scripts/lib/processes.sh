# shellcheck shell=bash
# Shared by the scripts that run the system as plain processes (demo.sh, experiment.sh, bench.sh):
# starting and stopping them by recorded PID, never by name. Source it; set SCRIPT_NAME first.

say() { printf '\033[1m%s\033[0m\n' "$*" >&2; }
die() { echo "${SCRIPT_NAME:-fogscheduler}: $*" >&2; exit 1; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Stops the process whose PID is in $1 (TERM, then KILL after $2 seconds, default 10) and
# removes the file.
stop_pidfile() {
  local file=$1 patience=${2:-10} pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if pid_alive "$pid"; then
    kill -TERM "$pid"
    for _ in $(seq 1 $((patience * 10))); do pid_alive "$pid" || break; sleep 0.1; done
    pid_alive "$pid" && kill -KILL "$pid"
  fi
  rm -f "$file"
}

# For the scripts that run against the bench profile (bench.sh, experiment.sh): STATE (their
# folder), ROOT and PORT (their scheduler's) set first. Starts the bench services unless they
# run (STARTED_SERVICES=1 then, for the caller's cleanup to stop them).
start_bench_services() {
  mkdir -p "$STATE" && chmod 700 "$STATE"
  if ! "$ROOT/scripts/services.sh" status --profile bench >/dev/null 2>&1; then
    # shellcheck disable=SC2034 # read by the caller's cleanup
    STARTED_SERVICES=1
    "$ROOT/scripts/services.sh" up --profile bench >&2
  fi
}

# The scheduler's FOG_* variables for the bench services, and an API token of the caller's own.
use_bench_services() {
  eval "$("$ROOT/scripts/services.sh" env --profile bench)"
  export FOG_BROKER_URL=$FOG_BENCH_BROKER_URL FOG_REDIS_URL=$FOG_BENCH_REDIS_URL FOG_DATABASE_URL=$FOG_BENCH_DATABASE_URL
  [ -s "$STATE/token" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$STATE/token"
  export FOG_API_TOKENS FOG_API_URL="http://127.0.0.1:$PORT" FOG_API_TOKEN
  FOG_API_TOKENS=$(cat "$STATE/token")
  FOG_API_TOKEN=$FOG_API_TOKENS
}
