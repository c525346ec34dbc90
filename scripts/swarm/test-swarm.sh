# shellcheck shell=bash
# scripts/swarm.sh, make test-swarm: the whole deployment from nothing, and back to nothing. Sourced by swarm.sh after its settings.

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
