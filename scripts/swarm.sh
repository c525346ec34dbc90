#!/usr/bin/env bash
# The Swarm deployment's operator commands (issue [6/9], in progress):
#   scripts/swarm.sh images   build every image without a registry: a debootstrap Debian base
#                             (cached), static release binaries, docker build
#   scripts/swarm.sh up       write the secrets from .env, deploy the stack, wait until healthy
#   scripts/swarm.sh down     remove the stack (volumes kept)
#   scripts/swarm.sh health   one ✓/✗ line per component; non-zero on any ✗
# DOCKER_HOST is the private engine of scripts/swarm-engine.sh unless set.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${FOG_SWARM_STATE:-/var/tmp/fogscheduler/swarm}
export DOCKER_HOST=${DOCKER_HOST:-unix://$STATE/docker.sock}
STACK=${FOG_STACK:-fog}
TAG=${FOG_IMAGE_TAG:-$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo local)}
BASE_PACKAGES=rabbitmq-server,redis-server,postgresql,librabbitmq4,libhiredis0.14,libpq5,ca-certificates,procps,iproute2,netbase,tini,libstdc++6,libcurl4,libxml2
SCRIPT_NAME=swarm
# shellcheck source=lib/processes.sh
. "$ROOT/scripts/lib/processes.sh"

images() {
  local dir=$STATE/images key tarball stage
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
  say "static release binaries"
  dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o DPkg::Lock::Timeout=900 libcurl4-openssl-dev >/dev/null
  for product in scheduler fog-node clusterctl; do
    (cd "$ROOT" && swift build -c release --static-swift-stdlib --product "$product" 2>&1 | tail -1)
  done
  stage=$dir/stage
  rm -rf "$stage" && mkdir -p "$stage"
  cp "$ROOT"/.build/release/{scheduler,fog-node,clusterctl} "$ROOT"/deploy/rabbitmq-entrypoint.sh "$stage/"
  strip "$stage"/{scheduler,fog-node,clusterctl}
  say "docker build (tag $TAG)"
  docker build -q -f "$ROOT/deploy/Dockerfile.service" --build-arg "BASE_IMAGE=fog/bookworm:$key" -t "fogscheduler/scheduler:$TAG" "$stage" >/dev/null
  docker tag "fogscheduler/scheduler:$TAG" "fogscheduler/fog-node:$TAG"
  docker build -q -f "$ROOT/deploy/Dockerfile.rabbitmq" --build-arg "BASE_IMAGE=fog/bookworm:$key" -t "fogscheduler/rabbitmq:$TAG" "$stage" >/dev/null
  cat >"$STATE/images.env" <<EOF
# Written by scripts/swarm.sh images: the images built here, without a registry.
FOG_SCHEDULER_IMAGE=fogscheduler/scheduler:$TAG
FOG_NODE_IMAGE=fogscheduler/fog-node:$TAG
FOG_RABBITMQ_IMAGE=fogscheduler/rabbitmq:$TAG
FOG_REDIS_IMAGE=fog/bookworm:$key
FOG_POSTGRES_IMAGE=fog/bookworm:$key
EOF
  docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "fogscheduler|fog/bookworm" >&2
}

# The secrets `make up` needs from .env, each refused when missing or still the example's.
SECRETS=(RABBITMQ_ERLANG_COOKIE MQ_ADMIN_PASS MQ_SCHEDULER_PASS MQ_NODE_PASS REDIS_PASS REDIS_SCHEDULER_PASS
         REDIS_NODE_PASS REDIS_CLUSTERCTL_PASS PG_PASS FOG_API_TOKENS)

load_env() {
  local file=${FOG_ENV_FILE:-$ROOT/.env} name value example bad=()
  [ -f "$file" ] || die "no $file: copy .env.example to .env and set every secret in it"
  set -a; . "$file"; set +a
  if [ -f "$STATE/images.env" ]; then set -a; . "$STATE/images.env"; set +a; fi
  for name in "${SECRETS[@]}"; do
    value=${!name:-}
    example=$(grep -E "^$name=" "$ROOT/.env.example" | cut -d= -f2- || true)
    if [ -z "$value" ]; then bad+=("$name is missing")
    elif [ "$value" = "$example" ]; then bad+=("$name is still the example's value")
    elif [ ${#value} -lt 16 ]; then bad+=("$name is shorter than 16 characters"); fi
  done
  if [ ${#bad[@]} -gt 0 ]; then
    printf -v name '%s; ' "${bad[@]}"
    die "refusing to deploy: ${name%; } (set them in ${FOG_ENV_FILE:-.env})"
  fi
  MQ_ADMIN_USER=${MQ_ADMIN_USER:-admin}
  PG_USER=${PG_USER:-fog}
}

write_secrets() {
  local dir=$STATE/secrets
  mkdir -p "$dir" && chmod 700 "$dir"
  umask 077
  printf '%s' "$RABBITMQ_ERLANG_COOKIE" >"$dir/erlang_cookie"
  cat >"$dir/rabbitmq_definitions.json" <<EOF
{"vhosts": [{"name": "fog"}],
 "users": [{"name": "$MQ_ADMIN_USER", "password": "$MQ_ADMIN_PASS", "tags": "administrator"},
           {"name": "scheduler", "password": "$MQ_SCHEDULER_PASS", "tags": ""},
           {"name": "fognode", "password": "$MQ_NODE_PASS", "tags": ""}],
 "permissions": [{"user": "$MQ_ADMIN_USER", "vhost": "fog", "configure": ".*", "write": ".*", "read": ".*"},
                 {"user": "scheduler", "vhost": "fog", "configure": ".*", "write": ".*", "read": ".*"},
                 {"user": "fognode", "vhost": "fog", "configure": ".*", "write": ".*", "read": ".*"}]}
EOF
  cat >"$dir/redis.acl" <<EOF
user default on >$REDIS_PASS ~* &* +@all
user health on >health -@all +ping
user scheduler on >$REDIS_SCHEDULER_PASS ~fog:* &* +@all -@dangerous
user fognode on >$REDIS_NODE_PASS ~fog:* &* +@all -@dangerous
user clusterctl on >$REDIS_CLUSTERCTL_PASS ~rabbitmq:* &* +@all -@dangerous
EOF
  local u
  for u in scheduler:$MQ_SCHEDULER_PASS:scheduler_broker_url fognode:$MQ_NODE_PASS:node_broker_url; do
    IFS=: read -r user pass file <<<"$u"
    echo "amqp://$user:$pass@rabbitmq1:5672/fog,amqp://$user:$pass@rabbitmq2:5672/fog,amqp://$user:$pass@rabbitmq3:5672/fog" >"$dir/$file"
  done
  echo "redis://scheduler:$REDIS_SCHEDULER_PASS@redis:6379/0" >"$dir/scheduler_redis_url"
  echo "redis://fognode:$REDIS_NODE_PASS@redis:6379/0" >"$dir/node_redis_url"
  echo "redis://clusterctl:$REDIS_CLUSTERCTL_PASS@redis:6379/0" >"$dir/clusterctl_redis_url"
  echo "postgres://$PG_USER:$PG_PASS@postgres:5432/${PG_DATABASE:-fog}" >"$dir/scheduler_database_url"
  printf '%s' "$PG_PASS" >"$dir/pg_pass"
  printf '%s' "$FOG_API_TOKENS" >"$dir/api_tokens"
  umask 022
  export FOG_SWARM_SECRETS=$dir
}

container() { # the running container of service $1
  docker ps -q -f "label=com.docker.swarm.service.name=${STACK}_$1" -f status=running | head -1
}

up() {
  load_env
  write_secrets
  local started=$SECONDS
  (cd "$ROOT" && docker stack deploy --resolve-image never -c compose.yml "$STACK" >/dev/null)
  say "deployed; waiting until healthy"
  for _ in $(seq 1 180); do
    if health >/dev/null 2>&1; then
      say "healthy $((SECONDS - started)) s after deploy"
      health
      return 0
    fi
    sleep 2
  done
  health || true
  die "the stack did not become healthy in 6 min"
}

down() {
  docker stack rm "$STACK" >/dev/null 2>&1 || true
  for _ in $(seq 1 120); do
    [ -z "$(docker ps -aq -f "label=com.docker.stack.namespace=$STACK")" ] && break
    sleep 0.5
  done
  say "stack $STACK removed (volumes kept)"
}

replicas_full() { # service: running == desired > 0
  local r
  r=$(docker service ls -f "name=${STACK}_$1" --format '{{.Replicas}}' 2>/dev/null | head -1)
  r=${r%% *}
  [ -n "$r" ] && [ "${r%%/*}" = "${r##*/}" ] && [ "${r%%/*}" != 0 ]
}

health() {
  local failed=0 c running
  set +e  # each check reports its own failure
  line() { if [ "$1" = 0 ]; then echo "✓ $2"; else echo "✗ $2"; failed=1; fi; }
  for n in 1 2 3; do
    c=$(container "rabbitmq$n")
    [ -n "$c" ] && docker exec "$c" rabbitmqctl -q status >/dev/null 2>&1; line $? "RabbitMQ rabbitmq$n"
  done
  c=$(container rabbitmq1)
  running=0
  [ -n "$c" ] && running=$(docker exec "$c" rabbitmqctl -q cluster_status --formatter json 2>/dev/null \
    | tr -d ' \n' | grep -o '"running_nodes":\[[^]]*\]' | grep -o 'rabbit@' | wc -l)
  [ "$running" -eq 3 ]; line $? "RabbitMQ cluster: $running of 3 nodes running together"
  c=$(container redis)
  [ -n "$c" ] && docker exec "$c" redis-cli --no-auth-warning --user health --pass health ping 2>/dev/null | grep -q PONG; line $? "Redis"
  c=$(container postgres)
  [ -n "$c" ] && docker exec "$c" pg_isready -q -h 127.0.0.1; line $? "PostgreSQL"
  replicas_full scheduler; line $? "schedulers: $(docker service ls -f "name=${STACK}_scheduler" --format '{{.Replicas}}' 2>/dev/null)"
  c=$(container scheduler)
  [ -n "$c" ] && docker exec "$c" scheduler probe http://127.0.0.1:8080/readyz >/dev/null 2>&1; line $? "scheduler API ready"
  replicas_full fog-node; line $? "fog nodes: $(docker service ls -f "name=${STACK}_fog-node" --format '{{.Replicas}}' 2>/dev/null)"
  return $failed
}

# --- make test-failover: faults injected while tasks flow; recovery times; exactly-once ---

redis_cli() { docker exec "$(container redis)" redis-cli --no-auth-warning -a "$REDIS_PASS" "$@"; }
psql_() { docker exec "$(container postgres)" psql -U "$PG_USER" -d "${PG_DATABASE:-fog}" -At -c "$1"; }
api() { docker exec -e FOG_API_TOKEN="$FOG_API_TOKENS" "$(container scheduler)" scheduler "$@"; }

# Submits 50 short tasks through whichever scheduler answers, retrying while none does.
submit_wave() {
  for _ in $(seq 1 60); do
    api submit --kind sleep --seconds 0.2 --count 50 --json >/dev/null 2>&1 && return 0
    sleep 1
  done
  return 1
}

# $1: what, $2: command that injects the fault. Prints the time until health passes again
# and until every task submitted so far has ended.
fault() {
  local what=$1 t0 healthy ended
  t0=$SECONDS
  eval "$2"
  submit_wave || { echo "✗ $what: no scheduler accepted tasks for 60 s"; return 1; }
  for _ in $(seq 1 120); do health >/dev/null 2>&1 && break; sleep 1; done
  healthy=$((SECONDS - t0))
  for _ in $(seq 1 120); do
    [ "$(psql_ "SELECT count(*) FROM tasks WHERE status NOT IN ('succeeded','failed','dead','cancelled','timed_out','resource_exceeded')")" = 0 ] && break
    sleep 1
  done
  ended=$((SECONDS - t0))
  local bad twice
  bad=$(psql_ "SELECT count(*) FROM tasks WHERE status <> 'succeeded'")
  twice=$(psql_ "SELECT count(*) FROM (SELECT task_id FROM attempts WHERE status = 'succeeded' GROUP BY task_id HAVING count(*) > 1) x")
  if [ "$bad" = 0 ] && [ "$twice" = 0 ] && health >/dev/null 2>&1; then
    echo "✓ $what: healthy after ${healthy} s, every task done after ${ended} s, each succeeded once"
  else
    echo "✗ $what: healthy after ${healthy} s; $bad tasks not succeeded, $twice succeeded twice"
    return 1
  fi
}

test_failover() {
  load_env
  local master other failed=0
  health >/dev/null || die "the stack is not healthy to begin with (make health)"
  submit_wave
  master=$(redis_cli get rabbitmq:cluster:master | sed 's/^rabbit@//')
  [ -n "$master" ] || master=rabbitmq1
  fault "RabbitMQ master $master killed" "docker kill \$(container $master) >/dev/null" || failed=1
  other=rabbitmq1; [ "$master" = rabbitmq1 ] && other=rabbitmq2
  fault "RabbitMQ $other killed" "docker kill \$(container $other) >/dev/null" || failed=1
  fault "Redis killed" "docker kill \$(container redis) >/dev/null" || failed=1
  local leader
  leader=$(redis_cli get fog:scheduler:leader)
  fault "scheduler leader $leader killed" "docker kill \$(docker ps -q -f label=com.docker.swarm.service.name=${STACK}_scheduler | while read -r c; do docker exec \$c printenv FOG_INSTANCE_ID | grep -qx '$leader' && echo \$c; done) >/dev/null" || failed=1
  fault "a fog-node container killed" "docker kill \$(container fog-node) >/dev/null" || failed=1
  fault "fog-node scaled to 3" "docker service scale -d ${STACK}_fog-node=3 >/dev/null" || failed=1
  fault "fog-node scaled back to 2" "docker service scale -d ${STACK}_fog-node=2 >/dev/null" || failed=1
  echo "$(psql_ "SELECT count(*) FROM tasks") tasks in all"
  return $failed
}

case "${1:-}" in
  test-failover) test_failover ;;
  images) images ;;
  up) up ;;
  down) down ;;
  health) health ;;
  *) die "usage: $0 images|up|down|health" ;;
esac
