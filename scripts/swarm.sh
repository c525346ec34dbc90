#!/usr/bin/env bash
# The operator's commands for a deployment, behind the Makefile's targets: `scripts/swarm.sh help`
# prints them (the usage below). The commands live in scripts/swarm/, one module per concern.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${FOG_SWARM_STATE:-/var/tmp/fogscheduler/swarm}
export DOCKER_HOST=${DOCKER_HOST:-unix://$STATE/docker.sock}
STACK=${FOG_STACK:-fog}
TARGET=${FOG_TARGET:-swarm}
PROFILE=${PROFILE:-dev}
TAG=${FOG_IMAGE_TAG:-$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo local)}
BASE_PACKAGES=rabbitmq-server,redis-server,postgresql,librabbitmq4,libhiredis0.14,libpq5,ca-certificates,procps,iproute2,netbase,tini,libstdc++6,libcurl4,libxml2
# shellcheck disable=SC2034 # read by die() in the sourced lib/processes.sh
SCRIPT_NAME=swarm
# shellcheck source=lib/processes.sh
. "$ROOT/scripts/lib/processes.sh"
# shellcheck source=lib/roles.sh
. "$ROOT/scripts/lib/roles.sh"

# The commands, one module per concern (each only defines functions and its constants).
# shellcheck source=swarm/images.sh
. "$ROOT/scripts/swarm/images.sh"
# shellcheck source=swarm/env.sh
. "$ROOT/scripts/swarm/env.sh"
# shellcheck source=swarm/clients.sh
. "$ROOT/scripts/swarm/clients.sh"
# shellcheck source=swarm/stack.sh
. "$ROOT/scripts/swarm/stack.sh"
# shellcheck source=swarm/health.sh
. "$ROOT/scripts/swarm/health.sh"
# shellcheck source=swarm/inspect.sh
. "$ROOT/scripts/swarm/inspect.sh"
# shellcheck source=swarm/failover.sh
. "$ROOT/scripts/swarm/failover.sh"
# shellcheck source=swarm/test-swarm.sh
. "$ROOT/scripts/swarm/test-swarm.sh"

usage() {
  cat <<'USAGE'
scripts/swarm.sh COMMAND

The operator's commands for a deployment, behind the Makefile's targets (make help):

  images                  build every image; without a registry, on a debootstrap Debian base
  up | down | clean       deploy the stack from .env and wait until healthy | remove it (volumes
                          kept) | remove it with its volumes and generated secrets
  status | health | monitor | debug | logs | logs-follow
  rabbitmq | redis | postgres            what each holds (cluster, queues, users, keys, tables)
  rabbitmq-cli | redis-cli | postgres-cli  an interactive client
  rabbitmq-ui             where the management UI answers, and as whom to log in
  purge | redis-flush | redis-clear-cluster | postgres-drop-db   destructive: CONFIRM=yes
  postgres-create-db      create the database (if missing) and migrate it
  test-failover           faults injected while tasks flow; recovery times; exactly-once
  test-swarm              a private engine, images, up, health, 200 tasks, test-failover, teardown

FOG_TARGET=local runs status, health, rabbitmq, redis, postgres, the -cli commands, purge,
redis-flush, redis-clear-cluster and the postgres-*-db commands against the local services of
scripts/services.sh (PROFILE=dev by default) instead of the stack.
DOCKER_HOST is the private engine of scripts/swarm-engine.sh unless set; .env is read from
FOG_ENV_FILE (default ./.env).
USAGE
}

case "${1:-}" in
  images) images ;;
  up) up ;;
  down) down ;;
  clean) clean ;;
  status) status ;;
  health) health ;;
  monitor) monitor ;;
  debug) read_env; debug ;;
  logs) logs ;;
  logs-follow) logs_follow ;;
  rabbitmq) show_rabbitmq ;;
  redis) show_redis ;;
  postgres) show_postgres ;;
  rabbitmq-cli) rabbitmq_cli ;;
  redis-cli) shift; redis_cli "$@" ;;
  postgres-cli) shift; postgres_cli "$@" ;;
  rabbitmq-ui) rabbitmq_ui ;;
  purge) purge ;;
  redis-flush) redis_flush ;;
  redis-clear-cluster) redis_clear_cluster ;;
  postgres-create-db) postgres_create_db ;;
  postgres-drop-db) postgres_drop_db ;;
  test-failover) test_failover ;;
  test-swarm) test_swarm ;;
  *) usage; [ "${1:-}" = help ] || exit 2 ;;
esac
