#!/usr/bin/env bash
# `make bench`: FogScheduler's speed on this machine, every figure from one run, with the
# durability of production (the bench profile: fsync and synchronous commits on, quorum
# queues, publisher confirms, Redis AOF). Release build; one scheduler and two fog nodes as
# plain processes with room for thousands of no-ops; the bench services are started if they
# are not running (and stopped again after).
#
#   (a) raw       the broker's limit for this work: confirmed persistent publishes and
#                 consume-with-ack at once, on one quorum queue (fog-bench raw)
#   (b) e2e       BENCH_TASKS (20,000) no-ops through the API, first send to last outcome
#                 recorded, and its ratio to (a)
#   (c) latency   client send -> outcome recorded, open loop, at BENCH_RATES (25 200 1000 2000)
#                 per second, p50/p95/p99, and the client's own lag behind its schedule (a rate
#                 the system took less than 95% of is marked "saturated")
#   (d) the same for /bin/true through the allow-list
#   (e) kill -9 of the fog node running most of 30 sleeps, under a load of 200/s: seconds
#       until each of its running tasks has started again elsewhere
#   (f) CPU per task of every process during (b) (scheduler, fog nodes with their tasks,
#       RabbitMQ, clusterctl, Redis, PostgreSQL with its backends), the fog nodes' idle RSS,
#       the peak RSS of the scheduler (after at least 100,000 tasks) and of each fog node, and
#       PostgreSQL's deadlocks and serialization failures over the whole run
#
# BENCH_TOP_UP_TO (100000) sets how many tasks the database holds when the peak RSS is read.
# Prints one table, writes the figures to BENCH_JSON (docs/bench.json) and a chart of latency
# against offered rate to BENCH_SVG (docs/bench.svg). The bench empties the bench profile's
# task tables first. A benchmark, not a test: nothing here fails on a figure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${FOG_SVC_STATE_ROOT:-/var/tmp/fogscheduler}/bench/bench
PORT=${BENCH_PORT:-18590}
BIN="$ROOT/.build/release"
TASKS=${BENCH_TASKS:-20000}
RATES=${BENCH_RATES:-"25 200 1000 2000"}
SECONDS_PER_RATE=${BENCH_SECONDS:-10}
# /bin/true costs a process, its control group and its sandbox each time: its high rates run
# shorter, so that the backlog they leave drains in a minute or two.
TRUE_SECONDS=${BENCH_TRUE_SECONDS:-3}
JSON_OUT=${BENCH_JSON:-$ROOT/docs/bench.json}
SVG_OUT=${BENCH_SVG:-$ROOT/docs/bench.svg}
NODES=(bench-a bench-b)

# shellcheck disable=SC2034 # read by die() in the sourced lib/processes.sh
SCRIPT_NAME=bench
# shellcheck source=lib/processes.sh
. "$ROOT/scripts/lib/processes.sh"

STARTED_SERVICES=0
cleanup() {
  local id
  stop_pidfile "$STATE/scheduler.pid"
  for id in "${NODES[@]}"; do stop_pidfile "$STATE/$id.pid"; done
  if [ "$STARTED_SERVICES" = 1 ]; then "$ROOT/scripts/services.sh" down --profile bench >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

SVC=${FOG_SVC_STATE_ROOT:-/var/tmp/fogscheduler}/bench
pids_of() { local f; for f in "$@"; do [ -f "$f" ] && { head -n1 "$f" | tr -dc 0-9; echo; }; done | paste -sd, -; }
groups() { # the process groups whose use is measured
  echo "scheduler=$(pids_of "$STATE/scheduler.pid")"
  local id; for id in "${NODES[@]}"; do echo "$id=$(pids_of "$STATE/$id.pid")"; done
  echo "rabbitmq=$(pids_of "$SVC"/rmq/*/rabbit.pid "$SVC/rmq/epmd.pid")"
  echo "clusterctl=$(pids_of "$SVC"/rmq/*/clusterctl.pid)"
  echo "redis=$(pids_of "$SVC/redis/redis.pid")"
  echo "postgres=$(head -n1 "$SVC/pg/data/postmaster.pid" 2>/dev/null)"
}
# shellcheck disable=SC2046 # one argument per process group
usage() { python3 "$ROOT/scripts/lib/proc_usage.py" "$1" $(groups); }
pg_counter() { psql "$FOG_DATABASE_URL" -At -c "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"; }
serialization_failures() { grep -c 'could not serialize access' "$SVC/pg/postgres.log" 2>/dev/null || true; }
bench() { "$BIN/fog-bench" "$@"; }

start_nodes() {
  local id
  for id in "${NODES[@]}"; do
    start_node "$id"
  done
}
start_node() {
  # Room for thousands of no-ops (each asks 100 millicores and 64 MB by default).
  env -u FOG_DATABASE_URL -u FOG_API_TOKENS FOG_BROKER_URL="$FOG_BENCH_NODE_BROKER_URL" FOG_REDIS_URL="$FOG_BENCH_NODE_REDIS_URL" \
    FOG_NODE_ID="$1" FOG_NODE_ZONE=bench FOG_NODE_CPU_MILLICORES=400000 FOG_NODE_MEMORY_MB=262144 \
    FOG_ALLOWED_COMMANDS=/bin/true,/usr/bin/true FOG_WORK_DIR="$STATE/work-$1" \
    "$BIN/fog-node" run >>"$STATE/$1.log" 2>&1 &
  echo $! >"$STATE/$1.pid"
}

start_scheduler() {
  FOG_HTTP_PORT=$PORT FOG_INSTANCE_ID=bench "$BIN/scheduler" serve >>"$STATE/scheduler.log" 2>&1 &
  echo $! >"$STATE/scheduler.pid"
  for _ in $(seq 1 120); do
    [ "$("$BIN/scheduler" nodes 2>/dev/null | grep -c ' yes ' || true)" -eq ${#NODES[@]} ] && return 0
    sleep 0.5
  done
  die "the scheduler or the fog nodes did not come up; see $STATE/*.log"
}

# (e): 30 sleeps of 20 s on both nodes, a load of 200 no-ops a second around them, the node
# running most of the sleeps killed; prints the JSON of the figure.
kill_node() {
  local load sleeps victim killed_at
  bench latency --rate 200 --seconds 25 --lanes 32 >"$STATE/kill-load.json" &
  load=$!
  sleep 1
  sleeps=$("$BIN/scheduler" submit --kind sleep --seconds 20 --count 30 --json | jq -r '[.tasks[].id] | join(",")')
  local ids="'${sleeps//,/\',\'}'"
  for _ in $(seq 1 100); do
    [ "$(psql "$FOG_DATABASE_URL" -At -c "SELECT count(*) FROM tasks WHERE id IN ($ids) AND status = 'running'")" = 30 ] && break
    sleep 0.2
  done
  victim=$(psql "$FOG_DATABASE_URL" -At -c "SELECT node FROM tasks WHERE id IN ($ids) GROUP BY node ORDER BY count(*) DESC LIMIT 1")
  killed_at=$(date +%s.%N)
  kill -9 "$(cat "$STATE/$victim.pid")"
  rm -f "$STATE/$victim.pid"
  local query="SELECT count(*), count(b.started_at),
      round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM b.started_at)))::numeric - $killed_at, 2),
      round(extract(epoch FROM max(b.started_at)) - $killed_at, 2)
    FROM attempts a JOIN tasks t ON t.id = a.task_id LEFT JOIN attempts b ON b.task_id = a.task_id AND b.number = a.number + 1
    WHERE a.task_id IN ($ids) AND a.node = '$victim'"
  local row total restarted
  for _ in $(seq 1 300); do
    row=$(psql "$FOG_DATABASE_URL" -At -F ' ' -c "$query") || die "cannot read the attempts of the kill: $row"
    read -r total restarted _ _ <<<"$row"
    [ "$total" -gt 0 ] && [ "$total" = "$restarted" ] && break
    sleep 0.1
  done
  wait "$load" || true
  read -r total restarted median last <<<"$(psql "$FOG_DATABASE_URL" -At -F ' ' -c "$query")"
  printf '{"bench": "kill", "node": "%s", "running_on_it": %s, "started_elsewhere": %s, "p50_s": %s, "max_s": %s, "load": %s}\n' \
    "$victim" "$total" "$restarted" "${median:-null}" "${last:-null}" "$(cat "$STATE/kill-load.json" 2>/dev/null || echo null)"
  start_node "$victim" # back for what follows
}

main() {
  command -v swift >/dev/null || die "swift is not on PATH"
  start_bench_services
  say "release build (static Swift runtime, as in the images)"
  (cd "$ROOT" && for p in scheduler fog-node fog-bench; do swift build -c release --static-swift-stdlib --product "$p" 2>&1 | tail -1; done) >&2
  use_bench_services
  "$BIN/scheduler" migrate >&2
  psql "$FOG_DATABASE_URL" -q -c "TRUNCATE tasks CASCADE" >&2
  local out=$STATE/results.jsonl deadlocks0 serial0 rate task cpu0 cpu1 seconds
  : >"$out"
  deadlocks0=$(pg_counter); serial0=$(serialization_failures)
  start_nodes
  start_scheduler
  sleep 5
  echo "{\"bench\": \"idle\", \"rss\": $(usage rss)}" >>"$out"

  say "(a) the broker's limit: confirmed publishes and acked consumes at once, one quorum queue"
  bench raw --messages "$TASKS" | tee -a "$out" >&2
  say "(b) $TASKS no-ops through the API"
  cpu0=$(usage cpu)
  bench throughput --count "$TASKS" >"$STATE/b.json"
  cpu1=$(usage cpu)
  echo "{\"bench\": \"cpu\", \"tasks\": $TASKS, \"before\": $cpu0, \"after\": $cpu1}" >>"$out"
  tee -a "$out" <"$STATE/b.json" >&2
  for task in noop true; do
    for rate in $RATES; do
      say "($([ $task = noop ] && echo c || echo d)) $task at $rate/s, open loop"
      seconds=$SECONDS_PER_RATE
      [ "$task" = true ] && [ "$rate" -gt 25 ] && seconds=$TRUE_SECONDS
      bench latency --task "$task" --rate "$rate" --seconds "$seconds" | tee -a "$out" >&2
    done
  done
  say "(e) kill -9 of a fog node under load"
  kill_node | tee -a "$out" >&2
  local total left
  total=$(psql "$FOG_DATABASE_URL" -At -c "SELECT count(*) FROM tasks")
  left=$((${BENCH_TOP_UP_TO:-100000} - total))
  if [ "$left" -gt 0 ]; then
    say "(f) $left more no-ops, so that the scheduler's peak memory is read after ${BENCH_TOP_UP_TO:-100000} tasks"
    bench throughput --count "$left" | sed 's/"bench": *"throughput"/"bench": "top-up"/; s/"bench":"throughput"/"bench":"top-up"/' | tee -a "$out" >&2
  fi
  total=$(psql "$FOG_DATABASE_URL" -At -c "SELECT count(*) FROM tasks")
  echo "{\"bench\": \"end\", \"tasks\": $total, \"rss\": $(usage rss), \"deadlocks\": $(( $(pg_counter) - deadlocks0 )), \"serialization_failures\": $(( $(serialization_failures) - serial0 )), \"commit\": \"$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+changes')\", \"date\": \"$(date -u +%Y-%m-%dT%H:%MZ)\"}" >>"$out"
  python3 "$ROOT/scripts/lib/bench_report.py" "$out" "$JSON_OUT" "$SVG_OUT"
}

main "$@"
