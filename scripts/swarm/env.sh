# shellcheck shell=bash
# scripts/swarm.sh, .env, the secrets, the RabbitMQ definitions and the edge services. Sourced by swarm.sh after its settings.

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
