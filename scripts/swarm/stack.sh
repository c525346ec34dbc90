# shellcheck shell=bash
# scripts/swarm.sh, the stack: deploy, remove, status, logs. Sourced by swarm.sh after its settings.

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
