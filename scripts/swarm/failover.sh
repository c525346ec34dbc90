# shellcheck shell=bash
# scripts/swarm.sh, make test-failover: faults injected while tasks flow. Sourced by swarm.sh after its settings.

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
