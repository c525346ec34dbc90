#!/usr/bin/env bash
# Local services for development, demos and tests, as plain processes on loopback:
# a 3-node RabbitMQ cluster (vhost fog), Redis with a password and an ACL user, and
# PostgreSQL with a role and a database. All state, logs, PIDs and generated secrets live in
# one folder per profile; every process started is stopped by its recorded PID.
#
#   scripts/services.sh up|down|status|env|wipe [--profile dev|test]
#   scripts/services.sh kill-node|start-node rmqN|redis|postgres [--profile ...]  (failure tests;
#       Redis keeps its data in an append-only file, as in production; start-node redis-empty
#       starts it without)
#   scripts/services.sh stop-node|wipe-node rmqN [--profile ...]
#   scripts/services.sh cli rabbitmqctl|redis-cli|psql|shell [ARGS...] [--profile ...]
#       a client as the services' administrator (rabbitmqctl on rmq1; `shell`: a shell with
#       rmq1's environment), for `make rabbitmq|redis|postgres[-cli] FOG_TARGET=local`
#   scripts/services.sh node-user ID [--profile ...]     a broker and a Redis user for fog node ID
#       alone (its queues, its keys, its routing key); prints its FOG_BROKER_URL and FOG_REDIS_URL
#   scripts/services.sh node-user-delete ID [--profile ...]
#
# Each role has users of its own, with least privilege (docs/SECURITY.md): the scheduler (`fog`:
# all of vhost fog; Redis fog:*), the fog nodes (`fog-node`, shared: consume fog.node.* and its
# control queue, publish to fog.events only; Redis fog:node:* and SADD on fog:nodes), clusterctl
# (Redis rabbitmq:* only) and the administrator.
#
# A `clusterctl run` beside each RabbitMQ node forms the cluster through Redis (it is built
# first if needed). The lab profile starts three RabbitMQ nodes only, without clusterctl:
# clusterctl's own tests form and break that cluster (with the test profile's Redis).
#
# Profiles use different ports and folders, so tests never disturb a running demo.
set -euo pipefail

PROFILE=dev
COMMAND=${1:-help}
shift || true
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE=${2:?--profile needs dev, test, lab or bench}; shift 2 ;;
    --profile=*) PROFILE=${1#--profile=}; shift ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
TARGET=${ARGS[0]:-}

# Port plan: every port can be overridden from the environment.
case "$PROFILE" in
  dev)  D_AMQP=5772 D_DIST=25772 D_MGMT=15772 D_EPMD=4372 D_CTL=35772 D_REDIS=6390 D_PG=55433 D_PLUGINS='[rabbitmq_management].' ;;
  test) D_AMQP=5782 D_DIST=25782 D_MGMT=15782 D_EPMD=4373 D_CTL=35790 D_REDIS=6391 D_PG=55434 D_PLUGINS='[].' ;;
  # autoheal, as in the Swarm deployment: with pause_minority the last running node pauses
  # when a test stops the other two, which is not what those tests are about.
  lab)  D_AMQP=5792 D_DIST=25792 D_MGMT=15792 D_EPMD=4374 D_CTL=35810 D_REDIS=6391 D_PG=55434 D_PLUGINS='[].' D_PARTITIONS=autoheal ;;
  # make experiment: the whole system with its own ports, beside a demo and the tests.
  bench) D_AMQP=5802 D_DIST=25802 D_MGMT=15802 D_EPMD=4375 D_CTL=35830 D_REDIS=6392 D_PG=55435 D_PLUGINS='[].' ;;
  *) echo "services.sh: unknown profile '$PROFILE' (dev, test, lab or bench)" >&2; exit 2 ;;
esac
AMQP_PORT=${FOG_SVC_AMQP_PORT:-$D_AMQP}        # rmq1; rmq2 and rmq3 use +1 and +2; AMQPS is +100
DIST_PORT=${FOG_SVC_DIST_PORT:-$D_DIST}        # Erlang distribution, same +1/+2 scheme
MGMT_PORT=${FOG_SVC_MGMT_PORT:-$D_MGMT}        # management UI/API (dev profile only)
EPMD_PORT=${FOG_SVC_EPMD_PORT:-$D_EPMD}        # a private epmd, not the machine's 4369
CTL_PORT=${FOG_SVC_CTL_PORT:-$D_CTL}           # rabbitmqctl's own distribution ports (10)
REDIS_PORT=${FOG_SVC_REDIS_PORT:-$D_REDIS}
PG_PORT=${FOG_SVC_PG_PORT:-$D_PG}
PLUGINS=${FOG_SVC_RABBITMQ_PLUGINS:-$D_PLUGINS}
PARTITIONS=${FOG_SVC_PARTITION_HANDLING:-${D_PARTITIONS:-pause_minority}}
# Not under /root or a mktemp folder: the postgres user must be able to traverse it.
STATE=${FOG_SVC_STATE_DIR:-/var/tmp/fogscheduler/$PROFILE}
RMQ_BIN=/usr/lib/rabbitmq/bin
PG_BIN=/usr/lib/postgresql/15/bin
NODES=(rmq1 rmq2 rmq3)

# shellcheck source=lib/roles.sh
. "$(dirname "$0")/lib/roles.sh"

log() { printf '[services:%s] %s\n' "$PROFILE" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- installation -------------------------------------------------------------------------

# gcc: the attack tests build a shared object to preload. nftables: the fence test and the chaos
# run cut a fog node off from Redis and the broker.
PACKAGES=(rabbitmq-server redis-server postgresql librabbitmq-dev libhiredis-dev libpq-dev libcurl4-openssl-dev amqp-tools openssl gcc nftables)

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages (${missing[*]}); run as root or install them"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=900 "${missing[@]}" >/dev/null
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 binaries not found in $PG_BIN"
}

# --- secrets --------------------------------------------------------------------------------

random_secret() { tr -dc 'A-Za-z0-9' </dev/urandom | head -c "${1:-24}" || true; }

load_secrets() {
  local file=$STATE/secrets.env
  if [ ! -f "$file" ]; then
    umask 077
    {
      echo "RABBITMQ_COOKIE=$(random_secret 32)"
      echo "RABBITMQ_FOG_PASS=$(random_secret)"
      echo "RABBITMQ_ADMIN_PASS=$(random_secret)"
      echo "REDIS_ADMIN_PASS=$(random_secret)"
      echo "REDIS_FOG_PASS=$(random_secret)"
      echo "REDIS_NODE_PASS=$(random_secret)"
      echo "REDIS_CLUSTERCTL_PASS=$(random_secret)"
      echo "RABBITMQ_NODE_PASS=$(random_secret)"
      echo "PG_SUPER_PASS=$(random_secret)"
      echo "PG_FOG_PASS=$(random_secret)"
    } >"$file"
    umask 022
  fi
  # A state folder from before the per-role users: add their passwords.
  local name
  for name in REDIS_NODE_PASS REDIS_CLUSTERCTL_PASS RABBITMQ_NODE_PASS; do
    grep -q "^$name=" "$file" || (umask 077; echo "$name=$(random_secret)" >>"$file")
  done
  # shellcheck disable=SC1090
  . "$file"
}

# --- TLS: a private CA, a server certificate for localhost/127.0.0.1, a client certificate ---

make_certificates() {
  local dir=$STATE/tls
  [ -f "$dir/client.pem" ] && return 0
  mkdir -p "$dir"
  (
    cd "$dir"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
      -subj "/CN=FogScheduler local CA ($PROFILE)" 2>/dev/null
    issue() { # issue NAME CN EXTENSIONS
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
      printf '%b' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days 3650 \
        -extfile "$1.ext" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    issue server localhost 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n'
    issue client fog 'extendedKeyUsage=clientAuth\n'
  ) || die "cannot create the TLS certificates in $dir"
}

# --- processes --------------------------------------------------------------------------------

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

# --- RabbitMQ ----------------------------------------------------------------------------------

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
  ( . "$dir/env.sh"; cd "$dir"; exec setsid --wait rabbitmq-server >"$dir/log/server.out" 2>&1 </dev/null ) &
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

# --- clusterctl ---------------------------------------------------------------------------------

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

# --- Redis --------------------------------------------------------------------------------------

start_redis() {
  local dir=$STATE/redis
  mkdir -p "$dir"
  pid_alive "$(pid_from "$dir/redis.pid")" && return 0
  umask 077
  cat >"$dir/redis.conf" <<EOF
bind 127.0.0.1
port $REDIS_PORT
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
dir $dir
save ""
appendonly yes
appendfsync everysec
aclfile $dir/users.acl
EOF
  write_redis_acl "$dir/users.acl"
  umask 022
  rm -f "$dir/redis.pid"
  redis-server "$dir/redis.conf"
  wait_for 20 "Redis" redis-cli -p "$REDIS_PORT" --user fog --pass "$REDIS_FOG_PASS" --no-auth-warning ping
}

# The role users, in an ACL file so that per-node users (node-user) survive a restart:
# fog is the scheduler (and the tests' own test:* keys); clusterctl has rabbitmq:* only;
# fog-node has the nodes' registrations and heartbeats and SADD on fog:nodes, nothing else.
write_redis_acl() {
  local file=$1 kept=""
  [ -f "$file" ] && kept=$(grep -E '^user fog-node-' "$file" || true)
  {
    echo "user default on >$REDIS_ADMIN_PASS ~* &* +@all"
    echo "user fog on >$REDIS_FOG_PASS ~fog:* ~test:* &* +@all -@dangerous"
    echo "user clusterctl on >$REDIS_CLUSTERCTL_PASS ~rabbitmq:* &* +@all -@dangerous"
    echo "user fog-node on >$REDIS_NODE_PASS $(node_redis_rights '*')"
    [ -z "$kept" ] || echo "$kept"
  } >"$file"
}

redis_admin() { redis-cli -p "$REDIS_PORT" --no-auth-warning -a "$REDIS_ADMIN_PASS" "$@"; }

stop_redis() {
  local pid; pid=$(pid_from "$STATE/redis/redis.pid")
  pid_alive "$pid" || return 0
  kill "$pid"
  local i; for i in $(seq 50); do pid_alive "$pid" || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# --- PostgreSQL -----------------------------------------------------------------------------------

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

# --- the URLs -----------------------------------------------------------------------------------------

broker_urls() { # the three nodes' amqp:// URLs for user $1 with password $2
  local urls=() i
  for i in 0 1 2; do urls+=("amqp://$1:$2@127.0.0.1:$((AMQP_PORT + i))/fog"); done
  (IFS=,; echo "${urls[*]}")
}

# A broker and a Redis user for fog node $1 alone, both named fog-node-$1, its password kept in
# $STATE/node-users/$1. Prints the node's FOG_BROKER_URL and FOG_REDIS_URL.
add_node_user() {
  local id=$1 user="fog-node-$1" file pass
  [[ $id =~ ^[A-Za-z0-9_-]{1,64}$ ]] || die "node-user: '$id' is not a node id (1-64 letters, digits, - or _)"
  mkdir -p "$STATE/node-users" && chmod 700 "$STATE/node-users"
  file=$STATE/node-users/$id
  [ -f "$file" ] || (umask 077; random_secret >"$file")
  pass=$(cat "$file")
  rmq rmq1 rabbitmqctl add_user "$user" "$pass" >/dev/null 2>&1 || rmq rmq1 rabbitmqctl change_password "$user" "$pass" >/dev/null
  set_node_permissions "$user" "$id"
  # shellcheck disable=SC2046 # the rights are several arguments
  redis_admin ACL SETUSER "$user" reset on ">$pass" $(node_redis_rights "$id") | grep -qx OK || die "cannot create Redis user $user"
  redis_admin ACL SAVE >/dev/null
  echo "FOG_BROKER_URL=$(broker_urls "$user" "$pass")"
  echo "FOG_REDIS_URL=redis://$user:$pass@127.0.0.1:$REDIS_PORT/0"
}

delete_node_user() {
  local id=$1
  rmq rmq1 rabbitmqctl delete_user "fog-node-$id" >/dev/null 2>&1 || true
  redis_admin ACL DELUSER "fog-node-$id" >/dev/null || true
  redis_admin ACL SAVE >/dev/null || true
  rm -f "$STATE/node-users/$id"
}

write_env() {
  local broker node_broker
  broker=$(broker_urls fog "$RABBITMQ_FOG_PASS")
  node_broker=$(broker_urls fog-node "$RABBITMQ_NODE_PASS")
  local prefix=FOG
  [ "$PROFILE" = test ] && prefix=FOG_TEST
  [ "$PROFILE" = lab ] && prefix=FOG_LAB
  [ "$PROFILE" = bench ] && prefix=FOG_BENCH
  umask 077
  cat >"$STATE/env" <<EOF
# Written by scripts/services.sh ($PROFILE profile). Holds generated secrets: do not commit.
export ${prefix}_BROKER_URL='$broker'
export ${prefix}_BROKER_TLS_URL='amqps://fog:$RABBITMQ_FOG_PASS@localhost:$((AMQP_PORT + 100))/fog?cacertfile=$STATE/tls/ca.pem&certfile=$STATE/tls/client.pem&keyfile=$STATE/tls/client.key'
export ${prefix}_TLS_DIR='$STATE/tls'
export ${prefix}_REDIS_URL='redis://fog:$REDIS_FOG_PASS@127.0.0.1:$REDIS_PORT/0'
# The fog nodes' shared users: what a fog node gets as its FOG_BROKER_URL and FOG_REDIS_URL.
export ${prefix}_NODE_BROKER_URL='$node_broker'
export ${prefix}_NODE_REDIS_URL='redis://fog-node:$REDIS_NODE_PASS@127.0.0.1:$REDIS_PORT/0'
export ${prefix}_CLUSTERCTL_REDIS_URL='redis://clusterctl:$REDIS_CLUSTERCTL_PASS@127.0.0.1:$REDIS_PORT/0'
export ${prefix}_DATABASE_URL='postgres://fog:$PG_FOG_PASS@127.0.0.1:$PG_PORT/fog'
export ${prefix}_RABBITMQ_ADMIN_URL='http://admin:$RABBITMQ_ADMIN_PASS@127.0.0.1:$MGMT_PORT'
export ${prefix}_SERVICES_DIR='$STATE'
EOF
  umask 022
}

print_env() {
  [ -f "$STATE/env" ] || die "services are not set up for profile $PROFILE (run: $0 up --profile $PROFILE)"
  cat "$STATE/env"
}

status() {
  local node pid rc=0
  for node in "${NODES[@]}"; do
    pid=$(node_pid "$node")
    if pid_alive "$pid"; then echo "✓ RabbitMQ $node  pid $pid  amqp 127.0.0.1:$((AMQP_PORT + $(node_index "$node")))"
    else echo "✗ RabbitMQ $node  not running"; rc=1; fi
    [ "$PROFILE" = lab ] && continue
    pid=$(pid_from "$(node_dir "$node")/clusterctl.pid")
    if pid_alive "$pid"; then echo "✓ clusterctl  $node  pid $pid"; else echo "✗ clusterctl beside $node not running"; rc=1; fi
  done
  pid=$(pid_from "$STATE/redis/redis.pid")
  if pid_alive "$pid"; then echo "✓ Redis       pid $pid  127.0.0.1:$REDIS_PORT"; else echo "✗ Redis not running"; rc=1; fi
  pid=$(pid_from "$STATE/pg/data/postmaster.pid")
  if pid_alive "$pid"; then echo "✓ PostgreSQL  pid $pid  127.0.0.1:$PG_PORT"; else echo "✗ PostgreSQL not running"; rc=1; fi
  return $rc
}

case "$COMMAND" in
  up)
    install_packages
    mkdir -p "$STATE"; chmod 755 "$STATE"
    load_secrets
    started=$SECONDS
    make_certificates
    if [ "$PROFILE" != lab ]; then
      start_postgres
      start_redis
    fi
    start_rabbitmq
    write_env
    log "services up in $((SECONDS - started))s; state in $STATE"
    print_env
    ;;
  down)
    [ -d "$STATE" ] || exit 0
    load_secrets
    stop_rabbitmq
    stop_redis
    stop_postgres
    log "services stopped"
    ;;
  start-node)
    load_secrets
    case "$TARGET" in
      rmq1|rmq2|rmq3)
        prepare_rabbitmq_home; start_node "$TARGET"; wait_node "$TARGET"
        [ "$PROFILE" = lab ] || start_agent "$TARGET"
        ;;
      redis) start_redis ;;
      redis-empty)
        # As after a lost disk: the append-only file goes; the ACL file (the users) stays.
        pid_alive "$(pid_from "$STATE/redis/redis.pid")" && die "Redis runs: kill-node redis first"
        rm -rf "$STATE/redis/appendonlydir" "$STATE/redis/dump.rdb"
        start_redis ;;
      postgres) start_postgres ;;
      *) die "start-node takes rmq1, rmq2, rmq3, redis, redis-empty or postgres" ;;
    esac
    ;;
  kill-node)
    # Failure injection: end one service abruptly, by its recorded PID.
    case "$TARGET" in
      rmq1|rmq2|rmq3) pid=$(node_pid "$TARGET") ;;
      redis) pid=$(pid_from "$STATE/redis/redis.pid") ;;
      postgres) pid=$(pid_from "$STATE/pg/data/postmaster.pid") ;;
      *) die "kill-node takes rmq1, rmq2, rmq3, redis or postgres" ;;
    esac
    pid_alive "$pid" || die "$TARGET is not running"
    kill -9 "$pid"
    for _ in $(seq 100); do pid_alive "$pid" || break; sleep 0.1; done
    log "killed $TARGET (pid $pid)"
    ;;
  stop-node)
    case "$TARGET" in rmq1|rmq2|rmq3) ;; *) die "stop-node takes rmq1, rmq2 or rmq3" ;; esac
    if pid_alive "$(node_pid "$TARGET")"; then rmq "$TARGET" rabbitmqctl shutdown >/dev/null 2>&1 || true; fi
    pid=$(node_pid "$TARGET")
    if pid_alive "$pid"; then kill -9 "$pid"; fi
    ;;
  wipe-node)
    # Loses the node's data on purpose: for tests of a node that comes back empty.
    case "$TARGET" in rmq1|rmq2|rmq3) ;; *) die "wipe-node takes rmq1, rmq2 or rmq3" ;; esac
    pid_alive "$(node_pid "$TARGET")" && die "$TARGET is running: stop it first"
    rm -rf "$(node_dir "$TARGET")/mnesia"
    log "wiped $TARGET"
    ;;
  cli)
    [ -d "$STATE" ] || die "services are not set up for profile $PROFILE (run: $0 up --profile $PROFILE)"
    load_secrets
    case "$TARGET" in
      rabbitmqctl) rmq rmq1 rabbitmqctl "${ARGS[@]:1}" ;;
      shell) rmq rmq1 bash "${ARGS[@]:1}" ;;
      redis-cli) redis_admin "${ARGS[@]:1}" ;;
      psql) pg psql -h "$STATE/pg/run" -p "$PG_PORT" -U postgres -d fog "${ARGS[@]:1}" ;;
      *) die "cli takes rabbitmqctl, redis-cli, psql or shell" ;;
    esac
    ;;
  status) status ;;
  env) print_env ;;
  wipe)
    [ -d "$STATE" ] || exit 0
    "$0" down --profile "$PROFILE"
    rm -rf "$STATE"
    log "removed $STATE"
    ;;
  install) install_packages ;;
  node-user)
    [ -n "$TARGET" ] || die "node-user takes a fog node id"
    load_secrets
    add_node_user "$TARGET"
    ;;
  node-user-delete)
    [ -n "$TARGET" ] || die "node-user-delete takes a fog node id"
    load_secrets
    delete_node_user "$TARGET"
    ;;
  *)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    [ "$COMMAND" = help ] || exit 2
    ;;
esac
