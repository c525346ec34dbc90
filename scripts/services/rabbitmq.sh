# shellcheck shell=bash
# scripts/services.sh, RabbitMQ: three nodes, vhost fog, the users. Sourced by services.sh after its settings.

node_index() { echo $(( ${1#rmq} - 1 )); }
node_dir() { echo "$STATE/rmq/$1"; }

write_node_env() {
  local node=$1 i dir
  i=$(node_index "$node"); dir=$(node_dir "$node")
  mkdir -p "$dir/mnesia" "$dir/log"
  cat >"$dir/env.sh" <<EOF
export HOME=$STATE/rmq/home
export ERL_EPMD_PORT=$EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_CONF_ENV_FILE=/dev/null
export RABBITMQ_NODENAME=$node@localhost
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$((AMQP_PORT + i))
export RABBITMQ_DIST_PORT=$((DIST_PORT + i))
export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
export RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log RABBITMQ_PID_FILE=$dir/rabbit.pid
export ERL_CRASH_DUMP=$dir/log/erl_crash.dump
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} -kernel net_ticktime 10"
export RABBITMQ_CTL_DIST_PORT_MIN=$CTL_PORT RABBITMQ_CTL_DIST_PORT_MAX=$((CTL_PORT + 9))
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export PATH=$RMQ_BIN:\$PATH
EOF
  cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$((AMQP_PORT + i))
cluster_partition_handling = $PARTITIONS
log.console = false
log.file.level = info
listeners.ssl.default = 127.0.0.1:$((AMQP_PORT + 100 + i))
ssl_options.cacertfile = $STATE/tls/ca.pem
ssl_options.certfile = $STATE/tls/server.pem
ssl_options.keyfile = $STATE/tls/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
EOF
  # management.* keys fail config validation unless the plugin is enabled.
  if [[ $PLUGINS == *rabbitmq_management* ]]; then
    printf 'management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = %s\n' "$((MGMT_PORT + i))" >>"$dir/rabbitmq.conf"
  fi
  echo "$PLUGINS" >"$dir/enabled_plugins"
}

rmq() { # rmq NODE COMMAND ARGS...: run a RabbitMQ CLI tool with the node's environment
  local node=$1; shift
  # shellcheck source=/dev/null # written by this script, per node
  ( . "$(node_dir "$node")/env.sh"; "$@" )
}

node_pid() { pid_from "$(node_dir "$1")/rabbit.pid"; }

start_epmd() {
  local pidfile=$STATE/rmq/epmd.pid
  pid_alive "$(pid_from "$pidfile")" && return 0
  epmd -port "$EPMD_PORT" -address 127.0.0.1 >/dev/null 2>&1 &
  echo $! >"$pidfile"
}

start_node() {
  local node=$1
  if pid_alive "$(node_pid "$node")"; then return 0; fi
  write_node_env "$node"
  launch_node "$node"
}

launch_node() { # the server script in the background, its own session, its output kept
  local dir; dir=$(node_dir "$1")
  rm -f "$dir/rabbit.pid"
  # Not -detached: that closes the output, so a node that dies while booting (say, a port in
  # use) would say nothing, and `wait` would sit out its whole timeout for a PID file.
  # shellcheck source=/dev/null # written by this script, per node
  ( . "$dir/env.sh"; cd "$dir" || exit; exec setsid --wait rabbitmq-server >"$dir/log/server.out" 2>&1 </dev/null ) &
  echo $! >"$dir/server.pid"
}

await_node() { # await_node NODE: the node's PID file, then rabbitmqctl wait; output in log/wait.out
  local dir deadline
  dir=$(node_dir "$1"); deadline=$((SECONDS + 180))
  until [ -s "$dir/rabbit.pid" ]; do
    pid_alive "$(pid_from "$dir/server.pid")" || { echo "the server exited while booting" >"$dir/log/wait.out"; return 1; }
    [ $SECONDS -lt $deadline ] || { echo "no PID file within 180s" >"$dir/log/wait.out"; return 1; }
    sleep 0.3
  done
  rmq "$1" rabbitmqctl wait --timeout 180 "$dir/rabbit.pid" >"$dir/log/wait.out" 2>&1
}

why_node_failed() { # what a node that did not start left behind, on stderr (CI shows only this)
  local node=$1 dir
  dir=$(node_dir "$node")
  log "$node: $(tail -n 3 "$dir/log/wait.out" 2>/dev/null | tr '\n' ' ')"
  # A VM that stops while booting ends its output with the reason; a running one logs errors.
  { grep -v -e '^[[:space:]]*$' -e '^Crash dump' "$dir/log/server.out" | tail -n 1
    grep -F '[error]' "$dir/log/$node@localhost.log" | tail -n 5; } >&2 2>/dev/null || true
}

wait_node() {
  local node=$1
  await_node "$node" && return 0
  # A first boot on a busy machine can fail where a second one does not (in CI one node of
  # three once did, after the whole test run); say why, end it, and start it once more.
  why_node_failed "$node"
  log "$node did not start on the first try; starting it again"
  end_launch "$node"
  sleep 5 # time for whatever held a port or the CPU to let go
  launch_node "$node"
  await_node "$node" && return 0
  why_node_failed "$node"
  end_launch "$node" # a VM hung in its boot has no PID file, so `down` could not find it
  die "RabbitMQ node $node did not start (see $(node_dir "$node")/log)"
}

end_launch() { # ends a launch_node's server script and the VM it started: they share a process group
  local pid; pid=$(pid_from "$(node_dir "$1")/server.pid")
  [ -n "$pid" ] && kill -9 -- "-$pid" 2>/dev/null || true
}

prepare_rabbitmq_home() {
  mkdir -p "$STATE/rmq/home"
  local cookie=$STATE/rmq/home/.erlang.cookie
  if [ ! -f "$cookie" ]; then
    printf '%s' "$RABBITMQ_COOKIE" >"$cookie"; chmod 400 "$cookie"
  fi
  start_epmd
}

start_rabbitmq() {
  prepare_rabbitmq_home
  # Start all nodes at once: a restarted cluster member waits for its peers to boot.
  local node
  for node in "${NODES[@]}"; do start_node "$node"; done
  for node in "${NODES[@]}"; do wait_node "$node"; done
  [ "$PROFILE" = lab ] && return 0   # the lab's tests run clusterctl themselves
  # clusterctl beside each node forms the cluster (and keeps it whole) through Redis.
  for node in "${NODES[@]}"; do start_agent "$node"; done
  local deadline=$((SECONDS + 240))
  until [ "$(rmq rmq1 rabbitmqctl -q eval 'length(rabbit_nodes:all_running()).' 2>/dev/null)" = 3 ]; do
    [ $SECONDS -lt $deadline ] || die "the cluster did not form within 240s (see $STATE/rmq/rmq*/clusterctl.log)"
    sleep 1
  done
  if [ ! -f "$STATE/rmq/users" ]; then
    log "creating vhost fog and users fog, admin"
    rmq rmq1 rabbitmqctl add_vhost fog >/dev/null
    rmq rmq1 rabbitmqctl add_user fog "$RABBITMQ_FOG_PASS" >/dev/null
    rmq rmq1 rabbitmqctl set_permissions -p fog fog '.*' '.*' '.*' >/dev/null
    rmq rmq1 rabbitmqctl add_user admin "$RABBITMQ_ADMIN_PASS" >/dev/null
    rmq rmq1 rabbitmqctl set_user_tags admin administrator >/dev/null
    rmq rmq1 rabbitmqctl set_permissions -p fog admin '.*' '.*' '.*' >/dev/null
    rmq rmq1 rabbitmqctl delete_user guest >/dev/null 2>&1 || true
    touch "$STATE/rmq/users"
  fi
  if [ ! -f "$STATE/rmq/node-user" ]; then
    log "creating the fog nodes' shared user fog-node"
    rmq rmq1 rabbitmqctl add_user fog-node "$RABBITMQ_NODE_PASS" >/dev/null 2>&1 \
      || rmq rmq1 rabbitmqctl change_password fog-node "$RABBITMQ_NODE_PASS" >/dev/null
    set_node_permissions fog-node '[A-Za-z0-9_-]+'
    touch "$STATE/rmq/node-user"
  fi
}

# Gives broker user $1 a fog node's rights for the node ids that $2 matches (lib/roles.sh).
set_node_permissions() {
  local rights
  mapfile -t rights < <(node_broker_rights "$2")
  rmq rmq1 rabbitmqctl set_permissions -p fog "$1" "${rights[0]}" "${rights[1]}" "${rights[2]}" >/dev/null
  rmq rmq1 rabbitmqctl set_topic_permissions -p fog "$1" fog.events "${rights[3]}" '^$' >/dev/null
}
