# shellcheck shell=bash
# scripts/services.sh, a clusterctl run beside each RabbitMQ node. Sourced by services.sh after its settings.

find_clusterctl() {
  [ -n "${CLUSTERCTL:-}" ] && return 0
  local repo candidate
  repo=$(cd "$(dirname "$0")/.." && pwd)
  CLUSTERCTL=${FOG_CLUSTERCTL:-}
  if [ -z "$CLUSTERCTL" ]; then
    for candidate in "$repo/.build/debug/clusterctl" "$repo/.build/release/clusterctl"; do
      [ -x "$candidate" ] && { CLUSTERCTL=$candidate; break; }
    done
  fi
  if [ -z "$CLUSTERCTL" ]; then
    log "building clusterctl"
    (cd "$repo" && swift build --product clusterctl >/dev/null) || die "cannot build clusterctl"
    CLUSTERCTL=$repo/.build/debug/clusterctl
  fi
  [ -x "$CLUSTERCTL" ] || die "clusterctl not found at $CLUSTERCTL"
}

start_agent() { # clusterctl run beside node $1, logging to its folder, PID recorded
  local node=$1 dir pidfile
  dir=$(node_dir "$node"); pidfile=$dir/clusterctl.pid
  pid_alive "$(pid_from "$pidfile")" && return 0
  find_clusterctl
  (
    # shellcheck source=/dev/null # written by this script, per node
    . "$dir/env.sh"
    exec "$CLUSTERCTL" run --node "$node@localhost" \
      --redis-url "redis://clusterctl:$REDIS_CLUSTERCTL_PASS@127.0.0.1:$REDIS_PORT/0"
  ) >>"$dir/clusterctl.log" 2>&1 &
  echo $! >"$pidfile"
}

stop_rabbitmq() {
  local node pids=()
  for node in "${NODES[@]}"; do # a clusterctl run beside the node (started by tests) goes first
    local agent; agent=$(pid_from "$(node_dir "$node")/clusterctl.pid")
    if pid_alive "$agent"; then kill "$agent" 2>/dev/null || true; fi
    rm -f "$(node_dir "$node")/clusterctl.pid"
  done
  for node in "${NODES[@]}"; do
    [ -f "$(node_dir "$node")/env.sh" ] || continue
    if pid_alive "$(node_pid "$node")"; then
      rmq "$node" rabbitmqctl shutdown >/dev/null 2>&1 &
      pids+=($!)
    fi
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  for node in "${NODES[@]}"; do # a node that ignored shutdown is ended by its PID
    local pid; pid=$(node_pid "$node")
    if pid_alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  local epmd; epmd=$(pid_from "$STATE/rmq/epmd.pid")
  if pid_alive "$epmd"; then kill "$epmd" 2>/dev/null || true; fi
  rm -f "$STATE/rmq/epmd.pid"
}
