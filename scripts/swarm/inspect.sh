# shellcheck shell=bash
# scripts/swarm.sh, looking inside, and the operator's destructive commands. Sourced by swarm.sh after its settings.

show_rabbitmq() {
  read_env
  echo "=== cluster"; rabbitmqctl_ -q cluster_status
  echo "=== queues in vhost fog"
  rabbitmqctl_ -q list_queues -p fog name type messages consumers leader --formatter pretty_table
  echo "=== users"; rabbitmqctl_ -q list_users
}

show_redis() {
  read_env
  echo "=== server"
  redis_ INFO | grep -E '^(redis_version|uptime_in_seconds|connected_clients|used_memory_human|aof_enabled|role):' | tr -d '\r'
  echo "=== keys: $(redis_ DBSIZE)"
  redis_ --scan --pattern '*' | sed -E 's/:[^:]+:(heartbeat)$/:*:\1/; s/^(fog:node:)[^:]+$/\1*/' | sort | uniq -c
  echo "=== RabbitMQ cluster (clusterctl)"
  echo "master:  $(redis_ GET rabbitmq:cluster:master)"
  echo "members: $(redis_ SMEMBERS rabbitmq:cluster:members | tr '\n' ' ')"
  echo "=== scheduler leader: $(redis_ GET fog:scheduler:leader)"
}

show_postgres() {
  read_env
  echo "=== server"; sql "SELECT version()"
  echo "=== databases"; psql_ -c '\l'
  echo "=== tasks by status"; psql_ -c "SELECT status, count(*) FROM tasks GROUP BY status ORDER BY status" 2>&1
}

rabbitmq_cli() {
  read_env; interactive
  if local_target; then services cli shell; else in_service rabbitmq1 bash; fi
}
redis_cli() { read_env; interactive; redis_ "$@"; }
postgres_cli() { read_env; interactive; psql_ "$@"; }

rabbitmq_ui() { # the management UI's address on this host, and whether it answers
  read_env
  local url=http://127.0.0.1:45681 user=$MQ_ADMIN_USER
  if local_target; then
    url=$(services env | sed -n "s/.*_RABBITMQ_ADMIN_URL='http:\/\/\([^:]*\):[^@]*@\(.*\)'/http:\/\/\2 \1/p")
    user=${url#* }; url=${url% *}
  fi
  echo "RabbitMQ management UI: $url (user $user; the password is in your .env or the services' secrets)"
  curl -s -o /dev/null -m 3 "$url/" && echo "✓ it answers" || { echo "✗ it does not answer"; return 1; }
}

purge() {
  read_env
  confirm "This removes every message from every queue in vhost fog: tasks already dispatched to a fog node will not run (they stay queued in PostgreSQL until cancelled)."
  local queue count=0
  for queue in $(rabbitmqctl_ -q list_queues -p fog name --formatter json | jq -r '.[].name'); do
    rabbitmqctl_ -q purge_queue -p fog "$queue" >/dev/null && count=$((count + 1))
  done
  say "purged $count queues"
}

redis_flush() {
  read_env
  confirm "This deletes every Redis key: node registrations, heartbeats, the leader and the RabbitMQ cluster state (they are rebuilt within a heartbeat)."
  redis_ FLUSHALL
}

redis_clear_cluster() {
  read_env
  confirm "This deletes clusterctl's state (rabbitmq:* keys); clusterctl elects a master again."
  local keys
  keys=$(redis_ --scan --pattern 'rabbitmq:*' | tr '\n' ' ')
  # shellcheck disable=SC2086 # one argument per key
  [ -z "$keys" ] || redis_ DEL $keys >/dev/null
  say "removed: ${keys:-nothing}"
}

postgres_create_db() { # creates the database if missing, then brings it to the latest migration
  read_env
  local db=$PG_DATABASE owner=$PG_USER
  if local_target; then db=fog owner=fog; fi
  if [ "$(psql_ -d postgres -At -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" = 1 ]; then
    echo "database $db exists"
  else
    psql_ -d postgres -q -c "CREATE DATABASE \"$db\" OWNER \"$owner\"" && echo "created database $db"
  fi
  if local_target; then
    # shellcheck source=/dev/null # the services' FOG_* URLs
    (source <(services env) && "$ROOT/.build/debug/scheduler" migrate)
  else
    EXEC_TIMEOUT=3600 in_service scheduler scheduler migrate # a migration of a large table takes its time
  fi
}

postgres_drop_db() {
  read_env
  local db=$PG_DATABASE
  local_target && db=fog
  confirm "This drops database $db: every task and its history is lost."
  psql_ -d postgres -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" && echo "dropped database $db"
}
