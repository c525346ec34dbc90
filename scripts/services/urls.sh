# shellcheck shell=bash
# scripts/services.sh, the URLs, the node users and the env file. Sourced by services.sh after its settings.

broker_urls() { # the three nodes' amqp:// URLs for user $1 with password $2
  local urls=() i
  for i in 0 1 2; do urls+=("amqp://$1:$2@127.0.0.1:$((AMQP_PORT + i))/fog"); done
  (IFS=,; echo "${urls[*]}")
}

# A broker and a Redis user for fog node $1 alone, both named fog-node-$1, its password kept in
# $STATE/node-users/$1. Prints the node's FOG_BROKER_URL and FOG_REDIS_URL.
add_node_user() {
  local id=$1 user="fog-node-$1" file pass
  [[ $id =~ ^[A-Za-z0-9_-]{1,64}$ ]] || die "node-user: '$id' is not a node id (1-64 letters, digits, - or _)"
  mkdir -p "$STATE/node-users" && chmod 700 "$STATE/node-users"
  file=$STATE/node-users/$id
  [ -f "$file" ] || (umask 077; random_secret >"$file")
  pass=$(cat "$file")
  rmq rmq1 rabbitmqctl add_user "$user" "$pass" >/dev/null 2>&1 || rmq rmq1 rabbitmqctl change_password "$user" "$pass" >/dev/null
  set_node_permissions "$user" "$id"
  # shellcheck disable=SC2046 # the rights are several arguments
  redis_admin ACL SETUSER "$user" reset on ">$pass" $(node_redis_rights "$id") | grep -qx OK || die "cannot create Redis user $user"
  redis_admin ACL SAVE >/dev/null
  echo "FOG_BROKER_URL=$(broker_urls "$user" "$pass")"
  echo "FOG_REDIS_URL=redis://$user:$pass@127.0.0.1:$REDIS_PORT/0"
}

delete_node_user() {
  local id=$1
  rmq rmq1 rabbitmqctl delete_user "fog-node-$id" >/dev/null 2>&1 || true
  redis_admin ACL DELUSER "fog-node-$id" >/dev/null || true
  redis_admin ACL SAVE >/dev/null || true
  rm -f "$STATE/node-users/$id"
}

write_env() {
  local broker node_broker
  broker=$(broker_urls fog "$RABBITMQ_FOG_PASS")
  node_broker=$(broker_urls fog-node "$RABBITMQ_NODE_PASS")
  local prefix=FOG
  [ "$PROFILE" = test ] && prefix=FOG_TEST
  [ "$PROFILE" = lab ] && prefix=FOG_LAB
  [ "$PROFILE" = bench ] && prefix=FOG_BENCH
  umask 077
  cat >"$STATE/env" <<EOF
# Written by scripts/services.sh ($PROFILE profile). Holds generated secrets: do not commit.
export ${prefix}_BROKER_URL='$broker'
export ${prefix}_BROKER_TLS_URL='amqps://fog:$RABBITMQ_FOG_PASS@localhost:$((AMQP_PORT + 100))/fog?cacertfile=$STATE/tls/ca.pem&certfile=$STATE/tls/client.pem&keyfile=$STATE/tls/client.key'
export ${prefix}_TLS_DIR='$STATE/tls'
export ${prefix}_REDIS_URL='redis://fog:$REDIS_FOG_PASS@127.0.0.1:$REDIS_PORT/0'
# The fog nodes' shared users: what a fog node gets as its FOG_BROKER_URL and FOG_REDIS_URL.
export ${prefix}_NODE_BROKER_URL='$node_broker'
export ${prefix}_NODE_REDIS_URL='redis://fog-node:$REDIS_NODE_PASS@127.0.0.1:$REDIS_PORT/0'
export ${prefix}_CLUSTERCTL_REDIS_URL='redis://clusterctl:$REDIS_CLUSTERCTL_PASS@127.0.0.1:$REDIS_PORT/0'
export ${prefix}_DATABASE_URL='postgres://fog:$PG_FOG_PASS@127.0.0.1:$PG_PORT/fog'
export ${prefix}_RABBITMQ_ADMIN_URL='http://admin:$RABBITMQ_ADMIN_PASS@127.0.0.1:$MGMT_PORT'
export ${prefix}_SERVICES_DIR='$STATE'
EOF
  umask 022
}

print_env() {
  [ -f "$STATE/env" ] || die "services are not set up for profile $PROFILE (run: $0 up --profile $PROFILE)"
  cat "$STATE/env"
}

status() {
  local node pid rc=0
  for node in "${NODES[@]}"; do
    pid=$(node_pid "$node")
    if pid_alive "$pid"; then echo "✓ RabbitMQ $node  pid $pid  amqp 127.0.0.1:$((AMQP_PORT + $(node_index "$node")))"
    else echo "✗ RabbitMQ $node  not running"; rc=1; fi
    [ "$PROFILE" = lab ] && continue
    pid=$(pid_from "$(node_dir "$node")/clusterctl.pid")
    if pid_alive "$pid"; then echo "✓ clusterctl  $node  pid $pid"; else echo "✗ clusterctl beside $node not running"; rc=1; fi
  done
  pid=$(pid_from "$STATE/redis/redis.pid")
  if pid_alive "$pid"; then echo "✓ Redis       pid $pid  127.0.0.1:$REDIS_PORT"; else echo "✗ Redis not running"; rc=1; fi
  pid=$(pid_from "$STATE/pg/data/postmaster.pid")
  if pid_alive "$pid"; then echo "✓ PostgreSQL  pid $pid  127.0.0.1:$PG_PORT"; else echo "✗ PostgreSQL not running"; rc=1; fi
  return $rc
}
