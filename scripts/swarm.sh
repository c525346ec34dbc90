#!/usr/bin/env bash
# The operator's commands for a deployment, behind the Makefile's targets (make help):
#
#   images                  build every image; without a registry, on a debootstrap Debian base
#   up | down | clean       deploy the stack from .env and wait until healthy | remove it (volumes
#                           kept) | remove it with its volumes and generated secrets
#   status | health | monitor | debug | logs | logs-follow
#   rabbitmq | redis | postgres            what each holds (cluster, queues, users, keys, tables)
#   rabbitmq-cli | redis-cli | postgres-cli  an interactive client
#   rabbitmq-ui             where the management UI answers, and as whom to log in
#   purge | redis-flush | redis-clear-cluster | postgres-drop-db   destructive: CONFIRM=yes
#   postgres-create-db      create the database (if missing) and migrate it
#   test-failover           faults injected while tasks flow; recovery times; exactly-once
#   test-swarm              a private engine, images, up, health, 200 tasks, test-failover, teardown
#
# FOG_TARGET=local runs status, health, rabbitmq, redis, postgres, the -cli commands, purge,
# redis-flush, redis-clear-cluster and the postgres-*-db commands against the local services of
# scripts/services.sh (PROFILE=dev by default) instead of the stack.
# DOCKER_HOST is the private engine of scripts/swarm-engine.sh unless set; .env is read from
# FOG_ENV_FILE (default ./.env).
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

# --- images -------------------------------------------------------------------------------------

OFFICIAL_IMAGES=(rabbitmq:4-management redis:7 postgres:16 debian:bookworm-slim)

# True when every official image is here or can be pulled (FOG_IMAGE_BASE=official|offline forces).
official_images_available() {
  case "${FOG_IMAGE_BASE:-auto}" in official) return 0 ;; offline) return 1 ;; esac
  local image
  for image in "${OFFICIAL_IMAGES[@]}"; do
    docker image inspect "$image" >/dev/null 2>&1 || timeout 120 docker pull -q "$image" >/dev/null 2>&1 || return 1
  done
}

# The offline base: Debian bookworm from debootstrap with RabbitMQ, Redis, PostgreSQL and the C
# libraries, cached as a tarball keyed by its package list. Prints its image name.
offline_base() {
  local dir=$STATE/images key tarball
  mkdir -p "$dir"
  key=$(echo "$BASE_PACKAGES" | sha256sum | cut -c1-12)
  tarball=$dir/base-$key.tar
  if [ ! -s "$tarball" ]; then
    say "debootstrap: a Debian bookworm base with RabbitMQ, Redis, PostgreSQL and the C libraries (about 2 min)"
    rm -rf "$dir/rootfs"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$dir/rootfs" http://deb.debian.org/debian >"$dir/debootstrap.log" 2>&1 \
      || die "debootstrap failed; see $dir/debootstrap.log"
    rm -rf "$dir"/rootfs/var/cache/apt/archives/*.deb "$dir"/rootfs/var/lib/apt/lists/* "$dir"/rootfs/usr/share/doc/* \
      "$dir"/rootfs/usr/share/man/* "$dir"/rootfs/var/lib/postgresql/*/main
    : >"$dir/rootfs/etc/hostname"
    tar -C "$dir/rootfs" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$dir/rootfs"
  fi
  docker image inspect "fog/bookworm:$key" >/dev/null 2>&1 \
    || docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' "$tarball" "fog/bookworm:$key" >/dev/null
  echo "fog/bookworm:$key"
}

images() {
  local stage=$STATE/images/stage service_base rabbitmq_base libs_base data_base=""
  if official_images_available; then
    say "bases: the official images (${OFFICIAL_IMAGES[*]})"
    service_base=debian:bookworm-slim rabbitmq_base=rabbitmq:4-management libs_base=debian:bookworm-slim
  else
    say "the official images cannot be had: building on an offline Debian base"
    data_base=$(offline_base)
    service_base=$data_base rabbitmq_base=$data_base libs_base=$data_base
  fi
  say "static release binaries"
  dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o DPkg::Lock::Timeout=900 libcurl4-openssl-dev >/dev/null
  for product in scheduler fog-node clusterctl; do
    (cd "$ROOT" && swift build -c release --static-swift-stdlib --product "$product" 2>&1 | tail -1)
  done
  rm -rf "$stage" && mkdir -p "$stage"
  cp "$ROOT"/.build/release/{scheduler,fog-node,clusterctl} "$ROOT"/deploy/rabbitmq-entrypoint.sh "$stage/"
  strip "$stage"/{scheduler,fog-node,clusterctl}
  say "docker build (tag $TAG)"
  docker build -q -f "$ROOT/deploy/Dockerfile.service" --build-arg "BASE_IMAGE=$service_base" \
    -t "fogscheduler/scheduler:$TAG" "$stage" >/dev/null
  docker tag "fogscheduler/scheduler:$TAG" "fogscheduler/fog-node:$TAG"
  docker build -q -f "$ROOT/deploy/Dockerfile.rabbitmq" --build-arg "BASE_IMAGE=$rabbitmq_base" \
    --build-arg "LIBS_IMAGE=$libs_base" -t "fogscheduler/rabbitmq:$TAG" "$stage" >/dev/null
  {
    echo "# Written by scripts/swarm.sh images: the images built here."
    echo "FOG_SCHEDULER_IMAGE=fogscheduler/scheduler:$TAG"
    echo "FOG_NODE_IMAGE=fogscheduler/fog-node:$TAG"
    echo "FOG_RABBITMQ_IMAGE=fogscheduler/rabbitmq:$TAG"
    # The offline base runs Redis and PostgreSQL too; otherwise compose.yml's official defaults.
    if [ -n "$data_base" ]; then echo "FOG_REDIS_IMAGE=$data_base"; echo "FOG_POSTGRES_IMAGE=$data_base"; fi
  } >"$STATE/images.env"
  # Earlier builds' images are dead weight on the engine's disk (those in use stay).
  docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -E '^fogscheduler/' | grep -v ":$TAG\$" \
    | xargs -r docker rmi >/dev/null 2>&1 || true
  docker image prune -f >/dev/null 2>&1 || true
  docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "fogscheduler/.*:$TAG|fog/bookworm" >&2
}

# --- .env and the secrets -----------------------------------------------------------------------

# The secrets `make up` needs from .env, each refused when missing, short, or still the example's.
SECRETS=(RABBITMQ_ERLANG_COOKIE MQ_ADMIN_PASS MQ_SCHEDULER_PASS MQ_NODE_PASS REDIS_PASS REDIS_SCHEDULER_PASS
         REDIS_NODE_PASS REDIS_CLUSTERCTL_PASS PG_PASS FOG_API_TOKENS)

# Reads .env and the image names `images` chose, if there are any; checks nothing.
read_env() {
  local file=${FOG_ENV_FILE:-$ROOT/.env}
  # shellcheck source=/dev/null # the operator's .env
  if [ -f "$file" ]; then set -a; . "$file"; set +a; fi
  # shellcheck source=/dev/null # written by images
  if [ -f "$STATE/images.env" ]; then set -a; . "$STATE/images.env"; set +a; fi
  MQ_ADMIN_USER=${MQ_ADMIN_USER:-admin}
  PG_USER=${PG_USER:-fog}
  PG_DATABASE=${PG_DATABASE:-fog}
  API_TOKEN=${FOG_API_TOKENS:-}; API_TOKEN=${API_TOKEN%%,*}; API_TOKEN=${API_TOKEN%%:*}
}

# read_env, then refuses (naming each one) a secret that is missing, short or the example's:
# those of SECRETS, and the password of each edge node whose user is set.
load_env() {
  local file=${FOG_ENV_FILE:-$ROOT/.env} name n problem bad=()
  [ -f "$file" ] || die "no $file: copy .env.example to .env and set every secret in it"
  read_env
  local names=("${SECRETS[@]}")
  for n in $(edge_nodes); do names+=("MQ_NODE${n}_PASS"); done
  for name in "${names[@]}"; do
    problem=$(secret_problem "$name")
    [ -z "$problem" ] || bad+=("$problem")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    printf -v name '%s; ' "${bad[@]}"
    die "refusing to deploy: ${name%; } (set them in ${FOG_ENV_FILE:-.env})"
  fi
}

# Why the secret in variable $1 cannot be used (missing, still the example's, short), or nothing.
secret_problem() {
  local name=$1 value=${!1:-} example
  example=$(grep -E "^$name=" "$ROOT/.env.example" | cut -d= -f2- || true)
  if [ -z "$value" ]; then echo "$name is missing"
  elif [ "$value" = "$example" ]; then echo "$name is still the example's value"
  elif [ ${#value} -lt 16 ]; then echo "$name is shorter than 16 characters"; fi
}

# The edge nodes that have a broker user of their own (the reference deployment's
# MQ_NODE{1,2,3}_WORKER and _PASS): each runs as the service fog-edge-N, fog node id edge-N,
# with users that reach its own queues and keys only. The others share the fognode users.
edge_nodes() {
  local n user
  for n in 1 2 3; do
    user=MQ_NODE${n}_WORKER
    [ -n "${!user:-}" ] && echo "$n"
  done
  return 0
}

# A fresh .env with random secrets, for test-swarm (never the developer's .env): one edge node
# with a user of its own, beside the shared ones.
write_test_env() {
  local file=$1 name
  secret() { tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 || true; }
  umask 077
  { for name in "${SECRETS[@]}"; do echo "$name=$(secret)"; done; echo "RABBITMQ_MEMORY_LIMIT=400M"
    echo "MQ_NODE1_WORKER=worker1"; echo "MQ_NODE1_PASS=$(secret)"; } >"$file"
  umask 022
}

# A fog node's broker rights (lib/roles.sh) as the definitions' permissions and
# topic_permissions entries: node_permissions USER ID-REGEX prints them as one JSON object.
node_permissions() {
  local rights
  mapfile -t rights < <(node_broker_rights "$2")
  jq -cn --arg user "$1" --arg c "${rights[0]}" --arg w "${rights[1]}" --arg r "${rights[2]}" --arg t "${rights[3]}" '{
    permissions: {user: $user, vhost: "fog", configure: $c, write: $w, read: $r},
    topic: {user: $user, vhost: "fog", exchange: "fog.events", write: $t, read: "^$"}}'
}

# The RabbitMQ definitions: the vhost, and a user per role with least privilege.
write_definitions() {
  local file=$1 shared edges="[]" n user pass
  command -v jq >/dev/null || die "jq is needed to write the RabbitMQ definitions (apt-get install jq)"
  shared=$(node_permissions fognode '[A-Za-z0-9_-]+')
  for n in $(edge_nodes); do
    user=MQ_NODE${n}_WORKER pass=MQ_NODE${n}_PASS
    edges=$(jq -c --arg user "${!user}" --arg pass "${!pass}" --argjson rights "$(node_permissions "${!user}" "edge-$n")" \
      '. + [{user: {name: $user, password: $pass, tags: ""}, rights: $rights}]' <<<"$edges")
  done
  jq -n --arg admin "$MQ_ADMIN_USER" --arg adminPass "$MQ_ADMIN_PASS" --arg schedulerPass "$MQ_SCHEDULER_PASS" \
    --arg nodePass "$MQ_NODE_PASS" --argjson shared "$shared" --argjson edges "$edges" '{
      vhosts: [{name: "fog"}],
      users: ([{name: $admin, password: $adminPass, tags: "administrator"}, {name: "scheduler", password: $schedulerPass, tags: ""},
               {name: "fognode", password: $nodePass, tags: ""}] + [$edges[].user]),
      permissions: ([{user: $admin, vhost: "fog", configure: ".*", write: ".*", read: ".*"},
                     {user: "scheduler", vhost: "fog", configure: ".*", write: ".*", read: ".*"}, $shared.permissions]
                    + [$edges[].rights.permissions]),
      topic_permissions: ([$shared.topic] + [$edges[].rights.topic])}' >"$file"
}

# compose.edges.yml beside the secrets: a service per edge node with a user of its own.
write_edge_services() {
  local file=$STATE/compose.edges.yml n
  rm -f "$file"
  [ -n "$(edge_nodes)" ] || return 0
  {
    echo "# Written by make up from .env (MQ_NODE{1,2,3}_WORKER): one fog node per edge user."
    echo 'version: "3.8"'
    echo "services:"
    for n in $(edge_nodes); do cat <<YAML
  fog-edge-$n:
    image: "\${FOG_NODE_IMAGE:-fogscheduler/fog-node:latest}"
    command: ["fog-node", "run"]
    hostname: "edge-$n"
    environment:
      FOG_NODE_ID: "edge-$n"
      FOG_NODE_ZONE: "\${FOG_NODE_ZONE:-default}"
      FOG_BROKER_URL_FILE: /run/secrets/edge${n}_broker_url
      FOG_REDIS_URL_FILE: /run/secrets/edge${n}_redis_url
      FOG_ALLOWED_COMMANDS: "\${FOG_ALLOWED_COMMANDS:-}"
      FOG_CGROUPS: "false"
      FOG_LOG_LEVEL: "\${FOG_LOG_LEVEL:-info}"
    secrets:
      - {source: edge${n}_broker_url, target: edge${n}_broker_url, mode: 0400}
      - {source: edge${n}_redis_url, target: edge${n}_redis_url, mode: 0400}
    networks: [fognet]
    stop_grace_period: 40s
    deploy:
      endpoint_mode: dnsrr
      restart_policy: {condition: any, delay: 2s}
      resources: {limits: {cpus: "\${FOG_NODE_CPUS:-1}", memory: "\${FOG_NODE_MEMORY:-512M}"}}
YAML
    done
    echo "secrets:"
    for n in $(edge_nodes); do
      echo "  edge${n}_broker_url: {file: \"$STATE/secrets/edge${n}_broker_url\"}"
      echo "  edge${n}_redis_url: {file: \"$STATE/secrets/edge${n}_redis_url\"}"
    done
  } >"$file"
}

# The Swarm secrets, written from .env into a 0700 folder that `down` removes again.
write_secrets() {
  local dir=$STATE/secrets user pass file u n
  mkdir -p "$dir" && chmod 700 "$dir"
  umask 077
  printf '%s' "$RABBITMQ_ERLANG_COOKIE" >"$dir/erlang_cookie"
  write_definitions "$dir/rabbitmq_definitions.json"
  # `health` may only PING (the healthcheck), so it needs no password.
  {
    echo "user default on >$REDIS_PASS ~* &* +@all"
    echo "user health on nopass -@all +ping"
    echo "user scheduler on >$REDIS_SCHEDULER_PASS ~fog:* &* +@all -@dangerous"
    echo "user fognode on >$REDIS_NODE_PASS $(node_redis_rights '*')"
    echo "user clusterctl on >$REDIS_CLUSTERCTL_PASS ~rabbitmq:* &* +@all -@dangerous"
    for n in $(edge_nodes); do
      user=MQ_NODE${n}_WORKER pass=MQ_NODE${n}_PASS
      echo "user ${!user} on >${!pass} $(node_redis_rights "edge-$n")"
      echo "amqp://${!user}:${!pass}@rabbitmq1:5672/fog,amqp://${!user}:${!pass}@rabbitmq2:5672/fog,amqp://${!user}:${!pass}@rabbitmq3:5672/fog" >"$dir/edge${n}_broker_url"
      echo "redis://${!user}:${!pass}@redis:6379/0" >"$dir/edge${n}_redis_url"
    done
  } >"$dir/redis.acl"
  for u in scheduler:$MQ_SCHEDULER_PASS:scheduler_broker_url fognode:$MQ_NODE_PASS:node_broker_url; do
    IFS=: read -r user pass file <<<"$u"
    echo "amqp://$user:$pass@rabbitmq1:5672/fog,amqp://$user:$pass@rabbitmq2:5672/fog,amqp://$user:$pass@rabbitmq3:5672/fog" >"$dir/$file"
  done
  echo "redis://scheduler:$REDIS_SCHEDULER_PASS@redis:6379/0" >"$dir/scheduler_redis_url"
  echo "redis://fognode:$REDIS_NODE_PASS@redis:6379/0" >"$dir/node_redis_url"
  echo "redis://clusterctl:$REDIS_CLUSTERCTL_PASS@redis:6379/0" >"$dir/clusterctl_redis_url"
  echo "postgres://$PG_USER:$PG_PASS@postgres:5432/$PG_DATABASE" >"$dir/scheduler_database_url"
  printf '%s' "$PG_PASS" >"$dir/pg_pass"
  printf '%s' "$FOG_API_TOKENS" >"$dir/api_tokens"
  [ "${FOG_MONITORING:-false}" != true ] || printf '%s' "$GRAFANA_ADMIN_PASS" >"$dir/grafana_admin_pass"
  write_edge_services
  umask 022
  export FOG_SWARM_SECRETS=$dir
}

# --- clients, on the stack's containers or on the local services ---------------------------------

local_target() { [ "$TARGET" = local ]; }
services() { "$ROOT/scripts/services.sh" "$@" --profile "$PROFILE"; }

container() { # the running container of service $1 (first replica)
  docker ps -q -f "label=com.docker.swarm.service.name=${STACK}_$1" -f status=running | head -1
}

# in_service SERVICE COMMAND...: runs in the service's running container; with a terminal when
# EXEC_FLAGS says so (the -cli commands), since a terminal turns the output's newlines into CRLF.
EXEC_FLAGS=()
in_service() {
  local c
  c=$(container "$1") || true
  [ -n "$c" ] || { echo "no running container of ${STACK}_$1" >&2; return 1; }
  shift
  if [ ${#EXEC_FLAGS[@]} -gt 0 ]; then docker exec "${EXEC_FLAGS[@]}" "$c" "$@"; else bounded docker exec "$c" "$@"; fi
}
# A call that is not an operator's own session ends within EXEC_TIMEOUT seconds, whatever the
# other side does: rabbitmqctl waits forever by default (list_queues on a cluster whose members
# are coming back), and one such call once stalled test-failover until CI's time ran out.
bounded() { timeout -k 5 "${EXEC_TIMEOUT:-60}" "$@"; }
interactive() { if [ -t 0 ] && [ -t 1 ]; then EXEC_FLAGS=(-it); else EXEC_FLAGS=(-i); fi; }

RMQ_NODE=""  # a node known to answer (health sets it), so that no call asks each node first
rabbitmqctl_() { # rabbitmqctl on the first RabbitMQ node that answers
  if local_target; then services cli rabbitmqctl "$@"; return; fi
  [ -z "$RMQ_NODE" ] || { in_service "$RMQ_NODE" rabbitmqctl "$@"; return; }
  local n
  for n in 1 2 3; do
    in_service "rabbitmq$n" rabbitmqctl status >/dev/null 2>&1 && { in_service "rabbitmq$n" rabbitmqctl "$@"; return; }
  done
  echo "no RabbitMQ node answers" >&2; return 1
}
redis_() {
  if local_target; then services cli redis-cli "$@"; else in_service redis redis-cli --no-auth-warning -a "${REDIS_PASS:-}" "$@"; fi
}
psql_() {
  if local_target; then services cli psql "$@"; else in_service postgres psql -U "$PG_USER" -d "$PG_DATABASE" "$@"; fi
}
sql() { psql_ -At -c "$1"; } # one query, unaligned output
api() { # scheduler CLI against the API, from inside a scheduler container
  in_service scheduler env FOG_API_TOKEN="$API_TOKEN" scheduler "$@"
}

# Destructive commands ask first: CONFIRM=yes, or "yes" typed at a terminal.
confirm() {
  [ "${CONFIRM:-}" = yes ] && return 0
  if [ -t 0 ]; then
    local answer
    read -r -p "$1 Type yes to go on: " answer
    [ "$answer" = yes ] && return 0
  fi
  die "not confirmed: $1 (run it with CONFIRM=yes)"
}

# --- the stack ------------------------------------------------------------------------------------

deploy() { # docker stack deploy with the files in use (compose.yml, and the monitoring one if asked)
  local files=(-c compose.yml)
  [ "${FOG_MONITORING:-false}" = true ] && files+=(-c deploy/compose.monitoring.yml)
  [ -f "$STATE/compose.edges.yml" ] && files+=(-c "$STATE/compose.edges.yml")
  (cd "$ROOT" && docker stack deploy --resolve-image never "${files[@]}" "$STACK" >/dev/null)
}

up() {
  load_env
  local grafana=${GRAFANA_ADMIN_PASS:-}
  [ "${FOG_MONITORING:-false}" != true ] || [ ${#grafana} -ge 16 ] \
    || die "refusing to deploy: FOG_MONITORING=true needs GRAFANA_ADMIN_PASS (16+ characters) in ${FOG_ENV_FILE:-.env}"
  write_secrets
  local started=$SECONDS
  deploy
  say "deployed; waiting until healthy"
  local deadline=$((SECONDS + 360))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if health >/dev/null 2>&1; then
      DEPLOY_TO_HEALTHY=$((SECONDS - started))
      say "healthy $DEPLOY_TO_HEALTHY s after deploy"
      health
      return 0
    fi
    sleep 2
  done
  health || true
  die "the stack did not become healthy in 6 min (make debug)"
}

down() {
  docker stack rm "$STACK" >/dev/null 2>&1 || true
  for _ in $(seq 1 120); do
    [ -z "$(docker ps -aq -f "label=com.docker.stack.namespace=$STACK")" ] && break
    sleep 0.5
  done
  # Swarm keeps its own copy of the secrets; the files were only needed to deploy.
  rm -rf "$STATE/secrets" "$STATE/compose.edges.yml"
  say "stack $STACK removed (volumes kept; make clean removes them)"
}

clean() {
  down
  local volumes
  for _ in $(seq 1 30); do # a volume is busy until its container is gone
    volumes=$(docker volume ls -q -f "label=com.docker.stack.namespace=$STACK")
    [ -z "$volumes" ] && break
    echo "$volumes" | xargs -r docker volume rm >/dev/null 2>&1 || sleep 1
  done
  [ -z "$volumes" ] || die "volumes still in use: $volumes"
  say "volumes of $STACK removed"
}

status() {
  if local_target; then services status; return; fi
  docker stack services "$STACK" --format 'table {{.Name}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}'
  echo
  docker stack ps "$STACK" -f desired-state=running --format 'table {{.Name}}\t{{.CurrentState}}\t{{.Error}}'
}

SERVICES_IN_STACK=(rabbitmq1 rabbitmq2 rabbitmq3 redis postgres scheduler fog-node)

logs() {
  local s n
  read_env
  for n in $(edge_nodes); do SERVICES_IN_STACK+=("fog-edge-$n"); done
  for s in "${SERVICES_IN_STACK[@]}"; do
    echo "=== $s"
    docker service logs --no-task-ids --tail "${TAIL:-100}" "${STACK}_$s" 2>&1
  done
}

logs_follow() { # every service's log, interleaved, until interrupted
  local s n pids=()
  read_env
  for n in $(edge_nodes); do SERVICES_IN_STACK+=("fog-edge-$n"); done
  for s in "${SERVICES_IN_STACK[@]}"; do docker service logs --no-task-ids -f --tail 10 "${STACK}_$s" 2>&1 & pids+=($!); done
  trap 'kill "${pids[@]}" 2>/dev/null' INT TERM EXIT
  wait
}

debug() { # what an operator looks at when health says ✗
  echo "=== engine"; docker info --format 'Docker {{.ServerVersion}}, Swarm {{.Swarm.LocalNodeState}}, {{.NCPU}} CPUs, {{.MemTotal}} bytes'
  echo "=== nodes"; docker node ls
  echo "=== services"; docker stack services "$STACK"
  echo "=== tasks that are not running, latest first"
  docker stack ps "$STACK" --no-trunc --format '{{.Name}}  {{.CurrentState}}  {{.Error}}' | grep -v " Running " | head -20
  echo "=== containers"; docker stats --no-stream --format 'table {{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}'
  echo "=== disk"; docker system df
  echo "=== health"; health || true
  TAIL=20 logs
}

monitor() { # health every INTERVAL seconds, until interrupted (or ROUNDS rounds)
  local round=0
  while :; do
    [ -t 1 ] && clear
    date '+%T'
    health || true
    round=$((round + 1))
    [ -n "${ROUNDS:-}" ] && [ "$round" -ge "$ROUNDS" ] && return 0
    sleep "${INTERVAL:-5}"
  done
}

# --- health -----------------------------------------------------------------------------------------

# One ✓/✗ line per component; non-zero on any ✗. Every check runs, whatever the others say.
health() {
  local failed=0 n c running json quorum whole leaders leader id ids slot
  set +e
  RMQ_NODE=""
  line() { if [ "$1" = 0 ]; then echo "✓ $2"; else echo "✗ $2"; failed=1; fi; }
  read_env
  if local_target; then
    services status | sed 's/^/  /; s/^  ✓/✓/; s/^  ✗/✗/'
    [ "${PIPESTATUS[0]}" = 0 ] || failed=1
  else
    for n in 1 2 3; do
      in_service "rabbitmq$n" rabbitmqctl -q status >/dev/null 2>&1 && RMQ_NODE=${RMQ_NODE:-rabbitmq$n}
      line $? "RabbitMQ rabbitmq$n"
    done
  fi
  running=$(rabbitmqctl_ -q cluster_status --formatter json 2>/dev/null | jq '.running_nodes | length' 2>/dev/null)
  [ "${running:-0}" -eq 3 ]; line $? "RabbitMQ cluster: ${running:-0} of 3 nodes running together"
  json=$(rabbitmqctl_ -q list_queues -p fog name type members online leader --formatter json 2>/dev/null)
  quorum=$(jq '[.[] | select(.type == "quorum")] | length' <<<"$json" 2>/dev/null)
  whole=$(jq '[.[] | select(.type == "quorum" and (.members | length) == 3 and (.online | length) == 3)] | length' <<<"$json" 2>/dev/null)
  leaders=$(jq -r '[.[] | select(.type == "quorum") | .leader | sub("^rabbit@"; "")] | group_by(.) | map("\(.[0]) \(length)") | join(", ")' <<<"$json" 2>/dev/null)
  [ -n "$quorum" ] && [ "$quorum" = "$whole" ]
  line $? "quorum queues: ${whole:-?} of ${quorum:-?} with 3 of 3 members online (leaders: ${leaders:-none})"
  local master members
  master=$(redis_ GET rabbitmq:cluster:master 2>/dev/null)
  members=$(redis_ SMEMBERS rabbitmq:cluster:members 2>/dev/null | sed 's/^rabbit@//' | sort | tr '\n' ' ')
  [ -n "$master" ]; line $? "clusterctl: master ${master:-none}, members ${members:-none}"
  if local_target; then
    [ "$failed" = 0 ]; return
  fi
  in_service redis redis-cli --no-auth-warning --user health --pass probe ping 2>/dev/null | grep -q PONG; line $? "Redis"
  in_service postgres pg_isready -q -h 127.0.0.1; line $? "PostgreSQL"

  # Each scheduler replica ready, and the leader one of them.
  leader=$(redis_ GET fog:scheduler:leader 2>/dev/null)
  ids=""
  for c in $(docker ps -q -f "label=com.docker.swarm.service.name=${STACK}_scheduler" -f status=running); do
    id=$(bounded docker exec "$c" printenv FOG_INSTANCE_ID 2>/dev/null)
    ids="$ids $id"
    bounded docker exec "$c" scheduler probe http://127.0.0.1:8080/readyz >/dev/null 2>&1
    line $? "scheduler $id ready$([ "$id" = "$leader" ] && echo ', the leader')"
  done
  replicas_full scheduler; line $? "schedulers: $(replicas scheduler) running"
  [[ " $ids " == *" $leader "* ]]; line $? "scheduler leader: ${leader:-none}"

  # Each fog-node replica registered and alive, with the age of its last heartbeat.
  json=$(api nodes --json 2>/dev/null)
  for slot in $(docker ps -f "label=com.docker.swarm.service.name=${STACK}_fog-node" -f status=running \
                  --format '{{.Label "com.docker.swarm.task.name"}}' | cut -d. -f2 | sort -n); do
    id=fog-node-$slot
    jq -e --arg id "$id" '.nodes[] | select(.id == $id and .alive)' <<<"$json" >/dev/null 2>&1
    line $? "fog node $id: $(jq -r --arg id "$id" '[.nodes[] | select(.id == $id)] | if length == 0 then "not registered"
      else .[0] | if .heartbeat_age_s then "heartbeat \(.heartbeat_age_s * 10 | round / 10) s ago, \(.active_attempts) active"
      else "no heartbeat" end end' <<<"$json" 2>/dev/null)"
  done
  replicas_full fog-node; line $? "fog nodes: $(replicas fog-node) running"
  # Each edge node with a user of its own.
  for n in $(edge_nodes); do
    id=edge-$n
    jq -e --arg id "$id" '.nodes[] | select(.id == $id and .alive)' <<<"$json" >/dev/null 2>&1
    line $? "fog node $id (a user of its own): $(replicas "fog-edge-$n") running, $(jq -r --arg id "$id" '[.nodes[] | select(.id == $id)]
      | if length == 0 then "not registered" elif .[0].alive then "alive" else "no heartbeat" end' <<<"$json" 2>/dev/null)"
  done
  return $failed
}

replicas() { docker service ls -f "name=${STACK}_$1" --format '{{.Replicas}}' 2>/dev/null | head -1 | cut -d' ' -f1; }
replicas_full() { # running == desired > 0
  local r; r=$(replicas "$1")
  [ -n "$r" ] && [ "${r%%/*}" = "${r##*/}" ] && [ "${r%%/*}" != 0 ]
}

# --- looking inside, and the operator's destructive commands ----------------------------------------

show_rabbitmq() {
  read_env
  echo "=== cluster"; rabbitmqctl_ -q cluster_status
  echo "=== queues in vhost fog"
  rabbitmqctl_ -q list_queues -p fog name type messages consumers leader --formatter pretty_table
  echo "=== users"; rabbitmqctl_ -q list_users
}

show_redis() {
  read_env
  echo "=== server"
  redis_ INFO | grep -E '^(redis_version|uptime_in_seconds|connected_clients|used_memory_human|aof_enabled|role):' | tr -d '\r'
  echo "=== keys: $(redis_ DBSIZE)"
  redis_ --scan --pattern '*' | sed -E 's/:[^:]+:(heartbeat)$/:*:\1/; s/^(fog:node:)[^:]+$/\1*/' | sort | uniq -c
  echo "=== RabbitMQ cluster (clusterctl)"
  echo "master:  $(redis_ GET rabbitmq:cluster:master)"
  echo "members: $(redis_ SMEMBERS rabbitmq:cluster:members | tr '\n' ' ')"
  echo "=== scheduler leader: $(redis_ GET fog:scheduler:leader)"
}

show_postgres() {
  read_env
  echo "=== server"; sql "SELECT version()"
  echo "=== databases"; psql_ -c '\l'
  echo "=== tasks by status"; psql_ -c "SELECT status, count(*) FROM tasks GROUP BY status ORDER BY status" 2>&1
}

rabbitmq_cli() {
  read_env; interactive
  if local_target; then services cli shell; else in_service rabbitmq1 bash; fi
}
redis_cli() { read_env; interactive; redis_ "$@"; }
postgres_cli() { read_env; interactive; psql_ "$@"; }

rabbitmq_ui() { # the management UI's address on this host, and whether it answers
  read_env
  local url=http://127.0.0.1:45681 user=$MQ_ADMIN_USER
  if local_target; then
    url=$(services env | sed -n "s/.*_RABBITMQ_ADMIN_URL='http:\/\/\([^:]*\):[^@]*@\(.*\)'/http:\/\/\2 \1/p")
    user=${url#* }; url=${url% *}
  fi
  echo "RabbitMQ management UI: $url (user $user; the password is in your .env or the services' secrets)"
  curl -s -o /dev/null -m 3 "$url/" && echo "✓ it answers" || { echo "✗ it does not answer"; return 1; }
}

purge() {
  read_env
  confirm "This removes every message from every queue in vhost fog: tasks already dispatched to a fog node will not run (they stay queued in PostgreSQL until cancelled)."
  local queue count=0
  for queue in $(rabbitmqctl_ -q list_queues -p fog name --formatter json | jq -r '.[].name'); do
    rabbitmqctl_ -q purge_queue -p fog "$queue" >/dev/null && count=$((count + 1))
  done
  say "purged $count queues"
}

redis_flush() {
  read_env
  confirm "This deletes every Redis key: node registrations, heartbeats, the leader and the RabbitMQ cluster state (they are rebuilt within a heartbeat)."
  redis_ FLUSHALL
}

redis_clear_cluster() {
  read_env
  confirm "This deletes clusterctl's state (rabbitmq:* keys); clusterctl elects a master again."
  local keys
  keys=$(redis_ --scan --pattern 'rabbitmq:*' | tr '\n' ' ')
  # shellcheck disable=SC2086 # one argument per key
  [ -z "$keys" ] || redis_ DEL $keys >/dev/null
  say "removed: ${keys:-nothing}"
}

postgres_create_db() { # creates the database if missing, then brings it to the latest migration
  read_env
  local db=$PG_DATABASE owner=$PG_USER
  if local_target; then db=fog owner=fog; fi
  if [ "$(psql_ -d postgres -At -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" = 1 ]; then
    echo "database $db exists"
  else
    psql_ -d postgres -q -c "CREATE DATABASE \"$db\" OWNER \"$owner\"" && echo "created database $db"
  fi
  if local_target; then
    # shellcheck source=/dev/null # the services' FOG_* URLs
    (source <(services env) && "$ROOT/.build/debug/scheduler" migrate)
  else
    EXEC_TIMEOUT=3600 in_service scheduler scheduler migrate # a migration of a large table takes its time
  fi
}

postgres_drop_db() {
  read_env
  local db=$PG_DATABASE
  local_target && db=fog
  confirm "This drops database $db: every task and its history is lost."
  psql_ -d postgres -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" && echo "dropped database $db"
}

# --- make test-failover: faults injected while tasks flow -----------------------------------------

FINAL_STATUSES="'succeeded','failed','dead','cancelled','timed_out','resource_exceeded'"

# Submits COUNT tasks of SECONDS each through whichever scheduler answers (retrying for 60 s
# while none does) and prints their ids, comma-separated and quoted for SQL.
submit() {
  local count=$1 seconds=$2 out deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    out=$(api submit --kind sleep --seconds "$seconds" --count "$count" --json 2>/dev/null) \
      && { jq -r '[.tasks[].id | "'"'"'\(.)'"'"'"] | join(",")' <<<"$out"; return 0; }
    sleep 1
  done
  return 1
}

# Waits (up to $2 s) until every task in $1 has ended; true when all of them succeeded.
all_succeeded() {
  local ids=$1 open deadline=$((SECONDS + $2))
  while [ "$SECONDS" -lt "$deadline" ]; do
    open=$(sql "SELECT count(*) FROM tasks WHERE id IN ($ids) AND status NOT IN ($FINAL_STATUSES)" 2>/dev/null)
    [ "$open" = 0 ] && break
    sleep 1
  done
  [ "$(sql "SELECT count(*) FROM tasks WHERE id IN ($ids) AND status = 'succeeded'")" = $(( $(tr -cd , <<<"$ids" | wc -c) + 1 )) ]
}

# fault WHAT COMMAND: 50 tasks in flight, the fault injected, 50 more submitted during the
# recovery. Reports the seconds until health passes again and until both waves have ended,
# and checks that every task of both succeeded, each exactly once.
fault() {
  local what=$1 t0 healthy ended before during ids bad twice deadline
  before=$(submit 50 0.5) || { echo "✗ $what: no scheduler accepted tasks before the fault"; return 1; }
  t0=$SECONDS
  eval "$2"
  during=$(submit 50 0.2) || { echo "✗ $what: no scheduler accepted tasks for 60 s after the fault"; return 1; }
  ids="$before,$during"
  sleep 3 # the fault must be seen before health can count as restored
  deadline=$((SECONDS + 240)) # by the clock: one health round may take long while a node comes back
  while [ "$SECONDS" -lt "$deadline" ]; do health >/dev/null 2>&1 && break; sleep 1; done
  healthy=$((SECONDS - t0))
  all_succeeded "$ids" 240
  ended=$((SECONDS - t0))
  bad=$(sql "SELECT count(*) FROM tasks WHERE id IN ($ids) AND status <> 'succeeded'")
  twice=$(sql "SELECT count(*) FROM (SELECT task_id FROM attempts WHERE task_id IN ($ids) AND status = 'succeeded'
               GROUP BY task_id HAVING count(*) > 1) x")
  if [ "$bad" = 0 ] && [ "$twice" = 0 ] && health >/dev/null 2>&1; then
    echo "✓ $what: healthy after $healthy s; its 100 tasks all ended after $ended s, each succeeded once"
  else
    echo "✗ $what: healthy after $healthy s; $bad of its 100 tasks did not succeed, $twice succeeded twice"
    health
    TAIL=30 logs >"$STATE/failover-$(date +%H%M%S).log" 2>&1
    echo "  (the services' last log lines: $STATE/failover-*.log)"
    return 1
  fi
}

leader_container() {
  local leader c
  leader=$(redis_ GET fog:scheduler:leader)
  for c in $(docker ps -q -f "label=com.docker.swarm.service.name=${STACK}_scheduler" -f status=running); do
    [ "$(bounded docker exec "$c" printenv FOG_INSTANCE_ID)" = "$leader" ] && echo "$c"
  done
}

test_failover() {
  [ "$TARGET" = swarm ] || die "test-failover runs against the Swarm stack"
  load_env
  local master other failed=0 started=$SECONDS
  health >/dev/null || { health; die "the stack is not healthy to begin with"; }
  master=$(redis_ GET rabbitmq:cluster:master | sed 's/^rabbit@//')
  [ -n "$master" ] || die "clusterctl has no master in Redis"
  fault "the RabbitMQ master ($master) killed" "docker kill \$(container $master) >/dev/null" || failed=1
  other=rabbitmq1; [ "$master" = rabbitmq1 ] && other=rabbitmq2
  fault "RabbitMQ $other killed" "docker kill \$(container $other) >/dev/null" || failed=1
  fault "Redis killed" "docker kill \$(container redis) >/dev/null" || failed=1
  # The reference deployment's third scenario: submissions get 503 until Swarm restarts it.
  fault "PostgreSQL killed" "docker kill \$(container postgres) >/dev/null" || failed=1
  fault "the scheduler leader killed" "docker kill \$(leader_container) >/dev/null" || failed=1
  fault "a fog-node container killed" "docker kill \$(container fog-node) >/dev/null" || failed=1
  local n; n=$(replicas fog-node); n=${n##*/}
  fault "fog-node scaled from $n to $((n + 1))" "docker service scale -d ${STACK}_fog-node=$((n + 1)) >/dev/null" || failed=1
  fault "fog-node scaled back to $n" "docker service scale -d ${STACK}_fog-node=$n >/dev/null" || failed=1
  echo "test-failover: $((SECONDS - started)) s; $(sql "SELECT count(*) FROM tasks") tasks in the database"
  return $failed
}

# --- make test-swarm: the whole deployment from nothing, and back to nothing -------------------------

# What test-swarm found before it started, for its teardown (an EXIT trap: no locals there).
TS_ENGINE_WAS_UP=false TS_STATE_EXISTED=false TS_CACHE_EXISTED=false TS_IMAGES_ENV_EXISTED=false

# Everything test-swarm made goes again: the stack, its volumes and secrets, the engine if it
# started it, and the cached base and image list if they were not there before.
test_swarm_teardown() {
  say "teardown"
  clean || true
  rm -f "$FOG_ENV_FILE"
  $TS_ENGINE_WAS_UP || "$ROOT/scripts/swarm-engine.sh" down
  $TS_IMAGES_ENV_EXISTED || rm -f "$STATE/images.env"
  $TS_CACHE_EXISTED || rm -rf "$STATE/images"
  $TS_STATE_EXISTED || rm -rf "$STATE"
  if ! $TS_ENGINE_WAS_UP && "$ROOT/scripts/swarm-engine.sh" status >/dev/null 2>&1; then
    echo "✗ teardown: the private engine still runs" >&2
    exit 1
  fi
  $TS_STATE_EXISTED || [ ! -e "$STATE" ] || { echo "✗ teardown: $STATE is still there" >&2; exit 1; }
  say "teardown done: the host is as it was before test-swarm"
}

test_swarm() {
  local started=$SECONDS failed=0 ids
  "$ROOT/scripts/swarm-engine.sh" status >/dev/null 2>&1 && TS_ENGINE_WAS_UP=true
  [ -d "$STATE" ] && TS_STATE_EXISTED=true
  [ -d "$STATE/images" ] && TS_CACHE_EXISTED=true
  [ -f "$STATE/images.env" ] && TS_IMAGES_ENV_EXISTED=true
  # The test's own secrets and stack name: never the developer's .env or stack.
  export FOG_ENV_FILE=$STATE/test-swarm.env FOG_STACK=fogtest
  STACK=fogtest
  mkdir -p "$STATE"
  write_test_env "$FOG_ENV_FILE"
  trap test_swarm_teardown EXIT
  trap 'exit 130' INT TERM  # so that an interrupted run tears down too
  "$ROOT/scripts/swarm-engine.sh" up
  # The stack publishes fixed host ports: another stack on this engine would hold them.
  if [ -n "$(docker stack ls --format '{{.Name}}' 2>/dev/null)" ]; then
    trap - EXIT
    die "a stack already runs on this engine ($(docker stack ls --format '{{.Name}}' | tr '\n' ' ')): make down first"
  fi
  (cd "$ROOT" && docker stack config -c compose.yml >/dev/null) && say "compose.yml validates (docker stack config)"
  local t=$SECONDS
  images
  say "images built in $((SECONDS - t)) s"
  up
  say "200 tasks"
  t=$SECONDS
  ids=$(submit 200 0.2) && all_succeeded "$ids" 300 \
    && say "200 of 200 tasks succeeded in $((SECONDS - t)) s" || { echo "✗ the 200 tasks did not all succeed"; failed=1; }
  footprint
  say "least privilege"
  least_privilege || failed=1
  test_failover || failed=1
  say "test-swarm: $((SECONDS - started)) s, deploy to healthy ${DEPLOY_TO_HEALTHY:-?} s"
  return $failed
}

# The roles' users on the stack reach what docs/SECURITY.md says and no more: a fog node's Redis
# user cannot take the scheduler's lease or write another node's registration, clusterctl's
# cannot read fog:* keys, and the fog nodes' broker users have their own queues and routing key.
least_privilege() {
  local failed=0 out user pass n
  refused() { # refused WHAT USER PASS COMMAND...: the command must be refused with NOPERM
    local what=$1 user=$2 pass=$3; shift 3
    out=$(in_service redis redis-cli --no-auth-warning --user "$user" --pass "$pass" "$@" 2>&1)
    if [[ $out == *NOPERM* ]]; then echo "✓ $what: refused"; else echo "✗ $what: $out"; failed=1; fi
  }
  refused "fognode taking the scheduler's lease" fognode "$REDIS_NODE_PASS" SET fog:scheduler:leader x
  refused "clusterctl reading the scheduler's lease" clusterctl "$REDIS_CLUSTERCTL_PASS" GET fog:scheduler:leader
  for n in $(edge_nodes); do
    user=MQ_NODE${n}_WORKER pass=MQ_NODE${n}_PASS
    refused "${!user} writing fog-node-1's registration" "${!user}" "${!pass}" HSET fog:node:fog-node-1 cpu_millicores 1
  done
  out=$(rabbitmqctl_ -q list_user_permissions fognode 2>&1 | grep -v '^vhost' | tr '\t\n' '  ')
  if [[ $out == *'^fog\.control\.'* ]] && [[ $out != *'.* .* .*'* ]]; then echo "✓ fognode's broker rights: $out"
  else echo "✗ fognode's broker rights: $out"; failed=1; fi
  out=$(rabbitmqctl_ -q list_user_topic_permissions fognode 2>&1 | grep -v '^vhost' | tr '\t\n' '  ')
  if [[ $out == *'fog.events ^node\.'* ]]; then echo "✓ fognode publishes events under node.<id> only: $out"
  else echo "✗ fognode's topic rights: $out"; failed=1; fi
  return $failed
}

footprint() { # the stack's memory and disk, for the record
  say "memory (docker stats)"
  docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' | sed -E "s/^${STACK}_([a-z0-9-]+)\.[^ ]+/\1/" \
    | awk '{print "  " $1 ": " $2; v=$2; u=v; gsub(/[0-9.]/, "", u); gsub(/[^0-9.]/, "", v);
            m = (u == "GiB") ? v * 1024 : (u == "KiB") ? v / 1024 : v; total += m}
           END {printf "  total: %.0f MiB\n", total}'
  say "disk"
  docker system df --format '  {{.Type}}: {{.Size}}'
  # -x: not into the containers' overlay mounts, which would count the images again.
  du -shx "$STATE/docker" 2>/dev/null | sed 's/^/  engine data-root: /'
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
  *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; [ "${1:-}" = help ] || exit 2 ;;
esac
