# shellcheck shell=bash
# scripts/services.sh, installing the Debian packages the services need. Sourced by services.sh after its settings.

# gcc: the attack tests build a shared object to preload. nftables: the fence test and the chaos
# run cut a fog node off from Redis and the broker.
PACKAGES=(rabbitmq-server redis-server postgresql librabbitmq-dev libhiredis-dev libpq-dev libcurl4-openssl-dev amqp-tools openssl gcc nftables)

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages (${missing[*]}); run as root or install them"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=900 "${missing[@]}" >/dev/null
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 binaries not found in $PG_BIN"
}
