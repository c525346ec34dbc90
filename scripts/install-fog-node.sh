#!/usr/bin/env bash
# `make install-fog-node`: installs the fog node on this (edge) host: the release binary in
# /usr/local/bin, the systemd unit, and an env file to fill in. It starts nothing by itself.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${PREFIX:-/usr/local}
ETC=${FOG_ETC:-/etc/fogscheduler}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}

install_binary() {
  # The Swift runtime linked in: the edge host needs no toolchain, and the node starts (and
  # spawns its exec shim) in 7 ms instead of 12, with 5 MB less resident (docs/BENCHMARKS.md).
  (cd "$ROOT" && swift build -c release --static-swift-stdlib --product fog-node 2>&1 | tail -1)
  install -D -m 0755 "$ROOT/.build/release/fog-node" "$PREFIX/bin/fog-node"
}

install_unit() {
  install -D -m 0644 "$ROOT/deploy/fog-node.service" "$UNIT_DIR/fog-node.service"
  if [ ! -f "$ETC/fog-node.env" ]; then
    install -d -m 0750 "$ETC"
    # The variables a fog node reads, from .env.example, blank: fill them in.
    grep -E '^(FOG_BROKER_URL|FOG_REDIS_URL|FOG_NODE_|FOG_ALLOWED_COMMANDS|FOG_DRAIN_TIMEOUT)' "$ROOT/.env.example" \
      | sed 's/=.*$/=/' >"$ETC/fog-node.env"
    chmod 0640 "$ETC/fog-node.env"
  fi
}

install_binary
install_unit
command -v systemctl >/dev/null && systemctl daemon-reload 2>/dev/null || true
cat <<EOT
Installed $PREFIX/bin/fog-node and $UNIT_DIR/fog-node.service.
Fill in $ETC/fog-node.env (broker and Redis URLs, node id, zone, allowed commands), then:
  systemctl enable --now fog-node
EOT
