# shellcheck shell=bash
# scripts/swarm.sh, health: one line per component. Sourced by swarm.sh after its settings.

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
