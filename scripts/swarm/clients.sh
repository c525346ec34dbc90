# shellcheck shell=bash
# scripts/swarm.sh, the clients, on the stack's containers or on the local services. Sourced by swarm.sh after its settings.

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
