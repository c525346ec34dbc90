# shellcheck shell=bash
# scripts/services.sh, the generated secrets. Sourced by services.sh after its settings.

random_secret() { tr -dc 'A-Za-z0-9' </dev/urandom | head -c "${1:-24}" || true; }

load_secrets() {
  local file=$STATE/secrets.env
  if [ ! -f "$file" ]; then
    umask 077
    {
      echo "RABBITMQ_COOKIE=$(random_secret 32)"
      echo "RABBITMQ_FOG_PASS=$(random_secret)"
      echo "RABBITMQ_ADMIN_PASS=$(random_secret)"
      echo "REDIS_ADMIN_PASS=$(random_secret)"
      echo "REDIS_FOG_PASS=$(random_secret)"
      echo "REDIS_NODE_PASS=$(random_secret)"
      echo "REDIS_CLUSTERCTL_PASS=$(random_secret)"
      echo "RABBITMQ_NODE_PASS=$(random_secret)"
      echo "PG_SUPER_PASS=$(random_secret)"
      echo "PG_FOG_PASS=$(random_secret)"
    } >"$file"
    umask 022
  fi
  # A state folder from before the per-role users: add their passwords.
  local name
  for name in REDIS_NODE_PASS REDIS_CLUSTERCTL_PASS RABBITMQ_NODE_PASS; do
    grep -q "^$name=" "$file" || (umask 077; echo "$name=$(random_secret)" >>"$file")
  done
  # shellcheck disable=SC1090
  . "$file"
}
