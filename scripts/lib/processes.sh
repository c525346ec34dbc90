# Shared by the scripts that run the system as plain processes (demo.sh, experiment.sh):
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
