#!/usr/bin/env bash
# Local services for development, demos and tests, as plain processes on loopback (usage below;
# `scripts/services.sh help` prints it). The functions live in scripts/services/, one module per
# concern.
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

# shellcheck source=services/install.sh
. "$(dirname "$0")/services/install.sh"
# shellcheck source=services/secrets.sh
. "$(dirname "$0")/services/secrets.sh"
# shellcheck source=services/tls.sh
. "$(dirname "$0")/services/tls.sh"
# shellcheck source=services/processes.sh
. "$(dirname "$0")/services/processes.sh"
# shellcheck source=services/rabbitmq.sh
. "$(dirname "$0")/services/rabbitmq.sh"
# shellcheck source=services/clusterctl.sh
. "$(dirname "$0")/services/clusterctl.sh"
# shellcheck source=services/redis.sh
. "$(dirname "$0")/services/redis.sh"
# shellcheck source=services/postgres.sh
. "$(dirname "$0")/services/postgres.sh"
# shellcheck source=services/urls.sh
. "$(dirname "$0")/services/urls.sh"

usage() {
  cat <<'USAGE'
Local services for development, demos and tests, as plain processes on loopback:
a 3-node RabbitMQ cluster (vhost fog), Redis with a password and an ACL user, and
PostgreSQL with a role and a database. All state, logs, PIDs and generated secrets live in
one folder per profile; every process started is stopped by its recorded PID.

  scripts/services.sh up|down|status|env|wipe|install [--profile dev|test|lab|bench]
  scripts/services.sh kill-node|start-node rmqN|redis|postgres [--profile ...]  (failure tests;
      Redis keeps its data in an append-only file, as in production; start-node redis-empty
      starts it without)
  scripts/services.sh stop-node|wipe-node rmqN [--profile ...]
  scripts/services.sh cli rabbitmqctl|redis-cli|psql|shell [ARGS...] [--profile ...]
      a client as the services' administrator (rabbitmqctl on rmq1; `shell`: a shell with
      rmq1's environment), for `make rabbitmq|redis|postgres[-cli] FOG_TARGET=local`
  scripts/services.sh node-user ID [--profile ...]     a broker and a Redis user for fog node ID
      alone (its queues, its keys, its routing key); prints its FOG_BROKER_URL and FOG_REDIS_URL
  scripts/services.sh node-user-delete ID [--profile ...]
USAGE
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
    usage
    [ "$COMMAND" = help ] || exit 2
    ;;
esac
