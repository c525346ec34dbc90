#!/usr/bin/env bash
# A private Docker engine and a single-node Swarm for `make test-swarm` on a machine that has
# none (the recipe of shared/SWARM.md): its own containerd and dockerd, its own bridges, no
# host firewall or sysctl change, every container cgroup under /fogtest. `down` removes all of
# it and leaves the host as it was.
#
#   scripts/swarm-engine.sh up|down|status|env
#
# Everything lives in $FOG_SWARM_STATE (default /var/tmp/fogscheduler/swarm); processes are
# stopped by their recorded PIDs.
set -euo pipefail

STATE=${FOG_SWARM_STATE:-/var/tmp/fogscheduler/swarm}
SOCK="unix://$STATE/docker.sock"
BRIDGE=spk0 BRIDGE_NET=10.213.0 GW_BRIDGE=spk_gw GW_NET=10.213.1
CGROUP=fogtest

# shellcheck disable=SC2034 # read by die() in the sourced lib/processes.sh
SCRIPT_NAME=swarm-engine
# shellcheck source=lib/processes.sh
. "$(cd "$(dirname "$0")" && pwd)/lib/processes.sh"
docker_() { DOCKER_HOST=$SOCK docker "$@"; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v jq >/dev/null || missing+=(jq)
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 "${missing[@]}" >/dev/null
}

wait_for() { # $1: seconds, rest: command
  local limit=$1; shift
  for _ in $(seq 1 $((limit * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

up() {
  [ "$(id -u)" = 0 ] || die "needs root (a private dockerd)"
  install_packages
  mkdir -p "$STATE/containerd/root" "$STATE/containerd/state" "$STATE/docker" "$STATE/exec"
  chmod 700 "$STATE"
  if [ -f "$STATE/dockerd.pid" ] && pid_alive "$(cat "$STATE/dockerd.pid")" && docker_ version >/dev/null 2>&1; then
    say "engine already running ($SOCK)"
  else
    start_engine
  fi
  ensure_swarm
  say "up: DOCKER_HOST=$SOCK"
}

start_engine() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || {
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_NET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  }
  cat >"$STATE/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$STATE/containerd/containerd.sock"
[ttrpc]
  address = "$STATE/containerd/containerd.sock.ttrpc"
[metrics]
  address = ""
EOF
  containerd --config "$STATE/containerd.toml" >>"$STATE/containerd.log" 2>&1 &
  echo $! >"$STATE/containerd.pid"
  wait_for 20 test -S "$STATE/containerd/containerd.sock" || die "containerd did not start; see $STATE/containerd.log"
  echo '{}' >"$STATE/daemon.json"
  dockerd --config-file "$STATE/daemon.json" --host "$SOCK" --containerd "$STATE/containerd/containerd.sock" \
    --containerd-namespace fogtest --containerd-plugins-namespace fogtest-plugins \
    --data-root "$STATE/docker" --exec-root "$STATE/exec" --pidfile "$STATE/dockerd.pid.own" \
    --storage-driver overlay2 --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
    --bridge "$BRIDGE" --ip 127.0.0.1 --dns "$BRIDGE_NET.1" --cgroup-parent "/$CGROUP" \
    --log-opt max-size=10m --log-opt max-file=2 >>"$STATE/dockerd.log" 2>&1 &
  echo $! >"$STATE/dockerd.pid"
  wait_for 60 docker_ version || die "dockerd did not answer; see $STATE/dockerd.log"
}

ensure_swarm() {
  if [ "$(docker_ info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
    docker_ network inspect docker_gwbridge >/dev/null 2>&1 || docker_ network create --driver bridge \
      --subnet "$GW_NET.0/24" --gateway "$GW_NET.1" -o com.docker.network.bridge.name="$GW_BRIDGE" \
      -o com.docker.network.bridge.enable_icc=false -o com.docker.network.bridge.enable_ip_masquerade=false \
      -o com.docker.network.bridge.host_binding_ipv4=127.0.0.1 docker_gwbridge >/dev/null
    docker_ swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:42377 --data-path-port 47890 \
      --default-addr-pool 10.213.128.0/17 --default-addr-pool-mask-length 24 >/dev/null
  fi
}

down() {
  if [ -f "$STATE/dockerd.pid" ] && docker_ version >/dev/null 2>&1; then
    local stack
    for stack in $(docker_ stack ls --format '{{.Name}}' 2>/dev/null); do
      docker_ stack rm "$stack" >/dev/null 2>&1 || true
      wait_for 60 sh -c "[ -z \"\$(DOCKER_HOST=$SOCK docker ps -aq -f label=com.docker.stack.namespace=$stack)\" ]" || true
      docker_ volume ls -q -f "label=com.docker.stack.namespace=$stack" | xargs -r env DOCKER_HOST="$SOCK" docker volume rm >/dev/null 2>&1 || true
    done
    docker_ swarm leave --force >/dev/null 2>&1 || true
    docker_ network rm docker_gwbridge >/dev/null 2>&1 || true
  fi
  stop_pidfile "$STATE/dockerd.pid" 30
  stop_pidfile "$STATE/containerd.pid" 30
  grep " $STATE" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  ip link del "$GW_BRIDGE" 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  find /sys/fs/cgroup/*/"$CGROUP" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  rmdir /run/containerd/s /run/containerd 2>/dev/null || true
  # The engine's data goes; the cached base image tarball (images/) stays for the next run.
  rm -rf "$STATE/docker" "$STATE/containerd" "$STATE/exec" "$STATE"/*.sock "$STATE"/*.log "$STATE"/*.toml "$STATE"/*.json 2>/dev/null || true
  say "down: no private engine, bridges or cgroups left"
}

status() {
  if [ -f "$STATE/dockerd.pid" ] && pid_alive "$(cat "$STATE/dockerd.pid")" && docker_ version >/dev/null 2>&1; then
    echo "✓ private Docker engine  pid $(cat "$STATE/dockerd.pid")  $SOCK  swarm $(docker_ info --format '{{.Swarm.LocalNodeState}}')"
  else
    echo "✗ private Docker engine not running"
    return 1
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export DOCKER_HOST=$SOCK" ;;
  *) die "usage: $0 up|down|status|env" ;;
esac
