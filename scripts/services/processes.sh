# shellcheck shell=bash
# scripts/services.sh, the processes and their PIDs. Sourced by services.sh after its settings.

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_from() { [ -f "$1" ] && head -n1 "$1" | tr -dc '0-9' || true; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not come up within ${seconds}s"
    sleep 0.3
  done
}
