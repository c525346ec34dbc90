#!/bin/sh
# RabbitMQ with clusterctl beside it, for the Swarm stack (shared/SWARM.md §4). Works on the
# official rabbitmq image and on the project's offline Debian base.
set -eu
node="rabbit@$(hostname -s)"
AS_RABBITMQ="setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups env HOME=/var/lib/rabbitmq"
as_rabbitmq() { $AS_RABBITMQ "$@"; }

# Docker's embedded DNS drops queries for names it does not know: fail fast, not in 10 s.
{ echo "options ndots:0 timeout:1 attempts:1"; grep -v '^options' /etc/resolv.conf; } >/tmp/resolv.conf
cat /tmp/resolv.conf >/etc/resolv.conf

install -o rabbitmq -g rabbitmq -m 400 /run/secrets/erlang_cookie /var/lib/rabbitmq/.erlang.cookie
# Users, their passwords and the vhost: readable by the broker only.
install -o rabbitmq -g rabbitmq -m 400 /run/secrets/rabbitmq_definitions /etc/rabbitmq/definitions.json
chown rabbitmq:rabbitmq /var/lib/rabbitmq

# The management UI (make rabbitmq-ui) and the Prometheus endpoint (:15692), unless the image
# already chose its plugins (the official management image does).
[ -f /etc/rabbitmq/enabled_plugins ] || echo '[rabbitmq_management,rabbitmq_prometheus].' >/etc/rabbitmq/enabled_plugins

# RabbitMQ does not read the container's memory limit: tell it.
if [ -n "${RABBITMQ_MEMORY_LIMIT:-}" ]; then
  cp /etc/rabbitmq/rabbitmq.conf /tmp/rabbitmq.conf
  echo "total_memory_available_override_value = ${RABBITMQ_MEMORY_LIMIT}B" >>/tmp/rabbitmq.conf
  export RABBITMQ_CONFIG_FILE=/tmp/rabbitmq.conf
fi

# A marker written into the volume by an operator (make rabbitmq-force-boot) boots a node alone.
if [ -f /var/lib/rabbitmq/force_boot ]; then
  rm -f /var/lib/rabbitmq/force_boot
  as_rabbitmq rabbitmqctl force_boot || true
fi

# A peer notices a dead node only after net_ticktime (60 s by default: 10 s here). A node killed
# and restarted at once finds its peers still connected to its previous incarnation, and
# Erlang's `global` then hangs its boot in rabbit_node_monitor:global_sync (seen on Swarm: more
# than 10 minutes). So every peer that answers drops that stale connection first.
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="${RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS:-} -kernel net_ticktime 10"
for peer in $(echo "${FOG_CLUSTER_NODES:-}" | tr , ' '); do
  [ "$peer" = "$node" ] && continue
  # shellcheck disable=SC2086 # AS_RABBITMQ is a command line, split on purpose (POSIX sh has no arrays)
  timeout 20 $AS_RABBITMQ rabbitmqctl -n "$peer" -q eval "erlang:disconnect_node('$node')." >/dev/null 2>&1 \
    && echo "fog-rabbitmq-entrypoint: $peer holds no connection to an earlier $node now" || true
done

# Debian's RabbitMQ 3.10 on Erlang 25 can still hang its boot in global's sync now and then,
# despite the step above (seen in one test-swarm run of three: "Faking nodedown/nodeup", then
# nothing; RabbitMQ's own workaround for it no longer works from OTP 25.1, rabbitmq-server#6034).
# Such a boot never ends by itself. A watchdog halts a VM that has not booted within
# FOG_RABBITMQ_BOOT_TIMEOUT (120 s); the container then exits, and Swarm starts it again, the
# peers dropping the stale connection anew. A node that merely waits for its peers' tables (a
# whole cluster starting) is started again too, and waits again: nothing is lost.
boot_watchdog() {
  limit=${FOG_RABBITMQ_BOOT_TIMEOUT:-120}
  started=$(date +%s)
  sleep 10
  while [ $(( $(date +%s) - started )) -lt "$limit" ]; do
    as_rabbitmq rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1 && return 0
    sleep 5
  done
  echo "fog-rabbitmq-entrypoint: $node did not boot within ${limit}s: halting it, to be started again"
  # shellcheck disable=SC2086 # as above
  timeout 15 $AS_RABBITMQ rabbitmqctl -q eval 'erlang:halt(1).' >/dev/null 2>&1 || true
  # A VM that cannot even answer that: every Erlang VM in this container is this node's (or a
  # CLI call's, which can go too).
  for proc in /proc/[0-9]*; do
    case "$(tr '\000' ' ' <"$proc/cmdline" 2>/dev/null)" in
      *beam.smp*) kill -KILL "${proc#/proc/}" 2>/dev/null || true ;;
    esac
  done
}
boot_watchdog &

# clusterctl joins this node to the elected master's cluster through Redis, one at a time,
# and keeps it there (heartbeats, rejoin after a reset).
clusterctl run --node "$node" &

if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
  exec $AS_RABBITMQ /usr/lib/rabbitmq/bin/rabbitmq-server
fi
exec docker-entrypoint.sh rabbitmq-server
