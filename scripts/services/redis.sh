# shellcheck shell=bash
# scripts/services.sh, Redis with its ACL users. Sourced by services.sh after its settings.

start_redis() {
  local dir=$STATE/redis
  mkdir -p "$dir"
  pid_alive "$(pid_from "$dir/redis.pid")" && return 0
  umask 077
  cat >"$dir/redis.conf" <<EOF
bind 127.0.0.1
port $REDIS_PORT
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
dir $dir
save ""
appendonly yes
appendfsync everysec
aclfile $dir/users.acl
EOF
  write_redis_acl "$dir/users.acl"
  umask 022
  rm -f "$dir/redis.pid"
  redis-server "$dir/redis.conf"
  wait_for 20 "Redis" redis-cli -p "$REDIS_PORT" --user fog --pass "$REDIS_FOG_PASS" --no-auth-warning ping
}

# The role users, in an ACL file so that per-node users (node-user) survive a restart:
# fog is the scheduler (and the tests' own test:* keys); clusterctl has rabbitmq:* only;
# fog-node has the nodes' registrations and heartbeats and SADD on fog:nodes, nothing else.
write_redis_acl() {
  local file=$1 kept=""
  [ -f "$file" ] && kept=$(grep -E '^user fog-node-' "$file" || true)
  {
    echo "user default on >$REDIS_ADMIN_PASS ~* &* +@all"
    echo "user fog on >$REDIS_FOG_PASS ~fog:* ~test:* &* +@all -@dangerous"
    echo "user clusterctl on >$REDIS_CLUSTERCTL_PASS ~rabbitmq:* &* +@all -@dangerous"
    echo "user fog-node on >$REDIS_NODE_PASS $(node_redis_rights '*')"
    [ -z "$kept" ] || echo "$kept"
  } >"$file"
}

redis_admin() { redis-cli -p "$REDIS_PORT" --no-auth-warning -a "$REDIS_ADMIN_PASS" "$@"; }

stop_redis() {
  local pid; pid=$(pid_from "$STATE/redis/redis.pid")
  pid_alive "$pid" || return 0
  kill "$pid"
  for _ in $(seq 50); do pid_alive "$pid" || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
