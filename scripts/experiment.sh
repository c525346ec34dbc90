#!/usr/bin/env bash
# `make experiment`: the placement policies compared on the real local system.
# Starts the bench services (their own ports), four fog nodes of different capacities, zones,
# declared latencies and power profiles, then for each policy in turn: a scheduler with
# FOG_PLACEMENT_POLICY set, the same seeded workload submitted through the API in paced
# waves, and the figures read back from PostgreSQL. Prints one table; stops what it started.
#
#   EXPERIMENT_POLICIES="smart round-robin"  EXPERIMENT_WAVES=12  EXPERIMENT_SEED=7  make experiment
#
# Every node runs on this one host, so they are equally fast (FOG_NODE_SPEED=1): the measured
# response time is real queueing and execution; the network term adds the latency each node
# declares from the task's origin zone (loopback has none), and energy is each attempt's
# measured run time times its share of the node's declared dynamic power.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${FOG_SVC_STATE_ROOT:-/var/tmp/fogscheduler}/bench/experiment
PORT=${EXPERIMENT_PORT:-18580}
BIN="$ROOT/.build/debug"
POLICIES=${EXPERIMENT_POLICIES:-"smart least-loaded min-min round-robin fcfs random"}
WAVES=${EXPERIMENT_WAVES:-10}
PER_WAVE=${EXPERIMENT_TASKS_PER_WAVE:-8}
SEED=${EXPERIMENT_SEED:-7}
#        id      zone   cpu  memory idle_w max_w
NODES=("pi-a    zone-a 2000 2048  2.7  6.4"
       "pi-b    zone-b 2000 2048  2.7  6.4"
       "nuc-c   zone-c 4000 8192  9    60"
       "edge-b  zone-b 8000 16384 70   220")

# shellcheck disable=SC2034 # read by die() in the sourced lib/processes.sh
SCRIPT_NAME=experiment
# shellcheck source=lib/processes.sh
. "$ROOT/scripts/lib/processes.sh"

STARTED_SERVICES=0
cleanup() {
  local spec id
  stop_pidfile "$STATE/scheduler.pid"
  for spec in "${NODES[@]}"; do read -r id _ <<<"$spec"; stop_pidfile "$STATE/$id.pid"; done
  if [ "$STARTED_SERVICES" = 1 ]; then "$ROOT/scripts/services.sh" down --profile bench >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

latency() { # one-way ms from zone $1 to node zone $2
  [ "$1" = "$2" ] && echo 2 || echo 25
}

start_nodes() {
  local spec id zone cpu memory idle max lat z
  for spec in "${NODES[@]}"; do
    read -r id zone cpu memory idle max <<<"$spec"
    lat=""
    for z in zone-a zone-b zone-c; do lat+="${lat:+,}$z=$(latency "$z" "$zone")"; done
    env -u FOG_DATABASE_URL -u FOG_API_TOKENS FOG_BROKER_URL="$FOG_BENCH_NODE_BROKER_URL" FOG_REDIS_URL="$FOG_BENCH_NODE_REDIS_URL" \
      FOG_NODE_ID="$id" FOG_NODE_ZONE="$zone" FOG_NODE_CPU_MILLICORES="$cpu" \
      FOG_NODE_MEMORY_MB="$memory" FOG_NODE_LATENCIES="$lat" FOG_NODE_POWER_IDLE_W="$idle" FOG_NODE_POWER_MAX_W="$max" \
      FOG_NODE_SPEED=1 FOG_WORK_DIR="$STATE/work-$id" "$BIN/fog-node" run >>"$STATE/$id.log" 2>&1 &
    echo $! >"$STATE/$id.pid"
  done
}

start_scheduler() { # $1: policy
  FOG_HTTP_PORT=$PORT FOG_INSTANCE_ID="experiment-$1" FOG_PLACEMENT_POLICY="$1" \
    "$BIN/scheduler" serve >>"$STATE/scheduler-$1.log" 2>&1 &
  echo $! >"$STATE/scheduler.pid"
  for _ in $(seq 1 120); do
    [ "$("$BIN/scheduler" nodes 2>/dev/null | grep -c ' yes ' || true)" -eq ${#NODES[@]} ] && return 0
    sleep 0.5
  done
  die "the scheduler or the fog nodes did not come up; see $STATE/*.log"
}

# One wave of tasks as a JSON batch, from bash's seeded RANDOM: the reference deployment's
# profiles (30% CPU-heavy 1-2 cores/256 MB, 30% memory-heavy 0.5 core/1-2 GB, 40% light
# 0.1 core/128 MB), sleeps with expected_s, classes, origins in the three zones.
wave() { # $1: policy, $2: wave number
  local i p class origin cpu mem seconds deadline sep="" now
  now=$(date +%s)
  printf '{"tasks": ['
  for i in $(seq 1 "$PER_WAVE"); do
    p=$((RANDOM % 10))
    if [ $p -lt 3 ]; then cpu=$((1000 + RANDOM % 1001)); mem=256; seconds=$((2 + RANDOM % 3))
    elif [ $p -lt 6 ]; then cpu=500; mem=$((1024 + RANDOM % 1025)); seconds=$((1 + RANDOM % 3))
    else cpu=100; mem=128; seconds="0.$((2 + RANDOM % 7))"; fi
    case $((RANDOM % 20)) in 0) class=critical ;; 1|2|3) class=high ;; 4|5|6|7|8|9|10|11|12|13) class=normal ;; *) class=low ;; esac
    case $((RANDOM % 3)) in 0) origin="zone-a" ;; 1) origin="zone-b" ;; *) origin="zone-c" ;; esac
    deadline=""
    [ "$class" = critical ] && deadline=", \"deadline\": \"$(date -u -d "@$((now + 3 + ${seconds%.*} * 2))" +%Y-%m-%dT%H:%M:%SZ)\""
    printf '%s{"name": "exp-%s-%s-%s-%s", "kind": "sleep", "args": {"seconds": %s}, "expected_s": %s, "class": "%s", "resources": {"cpu_millicores": %s, "memory_mb": %s}, "constraints": {"origin": "%s"}%s}' \
      "$sep" "$RUN" "$1" "$2" "$i" "$seconds" "$seconds" "$class" "$cpu" "$mem" "$origin" "$deadline"
    sep=", "
  done
  printf ']}\n'
}

report_sql() {
  cat <<'SQL'
WITH node(id, zone, cpu, idle_w, max_w) AS (VALUES
  ('pi-a','zone-a',2000,2.7,6.4), ('pi-b','zone-b',2000,2.7,6.4), ('nuc-c','zone-c',4000,9,60), ('edge-b','zone-b',8000,70,220)),
runs AS (
  SELECT t.status, t.class, t.deadline, a.node,
         extract(epoch FROM a.finished_at - t.created_at) AS response,
         extract(epoch FROM a.finished_at - a.started_at) AS run,
         CASE WHEN n.zone = t.spec->'constraints'->>'origin' THEN 0.004 ELSE 0.050 END AS network,
         (n.max_w - n.idle_w) * t.cpu_millicores::float / n.cpu * extract(epoch FROM a.finished_at - a.started_at) AS joules,
         a.finished_at
  FROM tasks t JOIN attempts a ON a.id = t.current_attempt JOIN node n ON n.id = a.node
  WHERE t.name LIKE 'exp-' || :'run' || '-' || :'policy' || '-%')
SELECT :'policy' AS policy, count(*) AS tasks, count(*) FILTER (WHERE status = 'succeeded') AS ok,
       round(avg(response)::numeric, 3) AS mean_resp_s,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY response)::numeric, 3) AS p95_resp_s,
       round(avg(response + network)::numeric, 3) AS mean_with_net_s,
       count(*) FILTER (WHERE class = 0 AND finished_at > deadline) || '/' || count(*) FILTER (WHERE class = 0) AS crit_missed,
       round(sum(joules)::numeric, 0) AS dyn_energy_j,
       (SELECT string_agg(node || ':' || c, ' ' ORDER BY node) FROM (SELECT node, count(*) c FROM runs GROUP BY node) x) AS per_node
FROM runs;
SQL
}

main() {
  command -v swift >/dev/null || die "swift is not on PATH"
  start_bench_services
  (cd "$ROOT" && swift build 2>&1 | tail -1) >&2
  use_bench_services
  "$BIN/scheduler" migrate >&2
  RUN=$(date +%s)   # task names carry the run, so earlier runs' tasks are left out
  start_nodes
  local policy w out
  out="$STATE/results.txt"
  : >"$out"
  for policy in $POLICIES; do
    say "policy $policy: $WAVES waves of $PER_WAVE tasks, one wave a second"
    start_scheduler "$policy"
    RANDOM=$SEED
    for w in $(seq 1 "$WAVES"); do
      wave "$policy" "$w" >"$STATE/wave.json"
      "$BIN/scheduler" submit --file "$STATE/wave.json" --json >/dev/null
      sleep 1
    done
    "$BIN/scheduler" wait --timeout 300 >/dev/null || say "policy $policy: not every task ended in time"
    psql "$FOG_DATABASE_URL" -q -v policy="$policy" -v run="$RUN" -A -F '|' -t -f <(report_sql) >>"$out"
    stop_pidfile "$STATE/scheduler.pid"
  done
  {
    echo "policy|tasks|succeeded|mean resp s|p95 resp s|mean + network s|critical missed|energy J|tasks per node"
    cat "$out"
  } | awk -F '|' '{ printf "%-13s %5s %9s %11s %10s %16s %15s %8s  %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }'
}

main "$@"
