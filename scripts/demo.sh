#!/usr/bin/env bash
# `make demo` / `make demo-down`: the whole system on this machine as plain processes.
# up:   installs what is missing, starts the dev services, builds, runs the scheduler and three
#       fog nodes of different sizes and zones, submits a mixed workload, prints where each
#       task ran and how it ended, and leaves everything running.
# down: stops the scheduler and fog nodes (by their recorded PIDs) and the dev services.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${FOG_SVC_STATE_ROOT:-/var/tmp/fogscheduler}/dev/demo
PORT=${FOG_DEMO_PORT:-8080}
BIN="$ROOT/.build/debug"
NODES=("edge-small zone-a 1000 512" "edge-medium zone-b 2000 1024" "edge-large zone-c 4000 2048")

# shellcheck disable=SC2034 # read by die() in the sourced lib/processes.sh
SCRIPT_NAME=demo
# shellcheck source=lib/processes.sh
. "$ROOT/scripts/lib/processes.sh"

start_processes() {
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  [ -s "$STATE/token" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$STATE/token"
  eval "$("$ROOT/scripts/services.sh" env --profile dev)"
  export FOG_API_TOKENS FOG_API_URL="http://127.0.0.1:$PORT" FOG_API_TOKEN
  FOG_API_TOKENS=$(cat "$STATE/token")
  FOG_API_TOKEN=$FOG_API_TOKENS

  if ! pid_alive "$(cat "$STATE/scheduler.pid" 2>/dev/null)"; then
    FOG_HTTP_PORT=$PORT FOG_INSTANCE_ID=demo-scheduler "$BIN/scheduler" serve >>"$STATE/scheduler.log" 2>&1 &
    echo $! >"$STATE/scheduler.pid"
  fi
  local spec id zone cpu memory
  for spec in "${NODES[@]}"; do
    read -r id zone cpu memory <<<"$spec"
    pid_alive "$(cat "$STATE/$id.pid" 2>/dev/null)" && continue
    # The fog nodes' own users: their queues, fog.events and their Redis keys, nothing more.
    env -u FOG_DATABASE_URL -u FOG_API_TOKENS FOG_BROKER_URL="$FOG_NODE_BROKER_URL" FOG_REDIS_URL="$FOG_NODE_REDIS_URL" \
      FOG_NODE_ID="$id" FOG_NODE_ZONE="$zone" FOG_NODE_CPU_MILLICORES="$cpu" \
      FOG_NODE_MEMORY_MB="$memory" FOG_NODE_LATENCIES="zone-a=5,zone-b=15,zone-c=40" FOG_WORK_DIR="$STATE/work-$id" \
      FOG_ALLOWED_COMMANDS=/bin/sh,/bin/echo,/usr/bin/sha256sum,/bin/uname \
      "$BIN/fog-node" run >>"$STATE/$id.log" 2>&1 &
    echo $! >"$STATE/$id.pid"
  done
  for _ in $(seq 1 120); do
    "$BIN/scheduler" nodes >/dev/null 2>&1 && [ "$("$BIN/scheduler" nodes | grep -c ' yes ')" -eq ${#NODES[@]} ] && return 0
    sleep 0.5
  done
  die "the scheduler or the fog nodes did not come up; see $STATE/*.log"
}

# Submits one kind of task and says so in one line; a refusal is shown, not fatal.
submit() {
  local what=$1
  shift
  if "$BIN/scheduler" submit --json "$@" >/dev/null 2>"$STATE/submit.err"; then
    printf '  %-58s submitted\n' "$what"
  else
    printf '  %-58s refused: %s\n' "$what" "$(tr '\n' ' ' <"$STATE/submit.err")"
  fi
}

submit_workload() {
  say "Submitting a mixed workload (the four classes)"
  submit "sensor-fusion: critical, 500 m CPU for 2 s" --name sensor-fusion --class critical --kind cpu --seconds 2 --millicores 500 --cpu 500 --memory 128
  submit "alarm-check x5: critical no-ops" --name alarm-check --class critical --kind noop --count 5
  submit "video-frame: high, 1.5 cores for 3 s" --name video-frame --class high --kind cpu --seconds 3 --millicores 1500 --cpu 1500 --memory 256
  submit "checksum: high, a shell pipeline" --name checksum --class high -- /bin/sh -c 'head -c 4000000 /dev/zero | /usr/bin/sha256sum'
  submit "report x6: normal, sleep 2 s" --name report --class normal --kind sleep --seconds 2 --count 6
  submit "hello: normal, /bin/echo" --name hello --class normal -- /bin/echo "hello from a fog node"
  submit "batch-archive x8: low, sleep 1 s" --name batch-archive --class low --kind sleep --seconds 1 --count 8
  submit "memory-hog: touches 256 MB with a 128 MB limit" --name memory-hog --kind alloc --mb 256 --memory 128 --seconds 1 --max-attempts 1
  submit "stuck-job: sleeps 60 s with a 2 s timeout, 2 attempts" --name stuck-job --class low --kind sleep --seconds 60 --timeout 2 --max-attempts 2
  submit "too-big: asks for 64 cores" --name too-big --kind noop --cpu 64000
  submit "not-allowed: /usr/bin/id, outside the allow-list" --name not-allowed --max-attempts 1 -- /usr/bin/id
}

up() {
  command -v swift >/dev/null || die "swift is not on PATH"
  # Its progress goes to stderr; the FOG_* variables it prints hold the generated passwords.
  "$ROOT/scripts/services.sh" up --profile dev >/dev/null
  say "Building"
  (cd "$ROOT" && swift build 2>&1 | tail -1)
  say "Starting the scheduler (http://127.0.0.1:$PORT) and three fog nodes"
  start_processes
  "$BIN/scheduler" nodes
  submit_workload
  say "Waiting for the workload to end"
  "$BIN/scheduler" wait --timeout 120 || true
  say "Where each task ran and how it ended"
  "$BIN/scheduler" tasks --limit 100
  echo
  "$BIN/scheduler" nodes
  cat <<EOT

The demo keeps running:
  API            http://127.0.0.1:$PORT   (token in $STATE/token)
  OpenAPI        http://127.0.0.1:$PORT/openapi.json
  metrics        http://127.0.0.1:$PORT/metrics
  RabbitMQ UI    http://127.0.0.1:15772   (user admin; its password is RABBITMQ_ADMIN_PASS in /var/tmp/fogscheduler/dev/secrets.env)
  logs           $STATE/*.log
Try:
  export FOG_API_URL=http://127.0.0.1:$PORT FOG_API_TOKEN=\$(cat $STATE/token)
  $BIN/scheduler submit --kind sleep --seconds 3 --class high
  $BIN/scheduler task <id>
Stop it all with: make demo-down
EOT
}

down() {
  local spec id
  for spec in "${NODES[@]}"; do
    read -r id _ <<<"$spec"
    stop_pidfile "$STATE/$id.pid"
  done
  stop_pidfile "$STATE/scheduler.pid"
  "$ROOT/scripts/services.sh" down --profile dev
  echo "demo stopped"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) die "usage: $0 up|down" ;;
esac
