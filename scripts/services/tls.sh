# shellcheck shell=bash
# scripts/services.sh, TLS: a private CA, a server certificate for localhost/127.0.0.1, a client certificate. Sourced by services.sh after its settings.

make_certificates() {
  local dir=$STATE/tls
  [ -f "$dir/client.pem" ] && return 0
  mkdir -p "$dir"
  (
    cd "$dir"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
      -subj "/CN=FogScheduler local CA ($PROFILE)" 2>/dev/null
    issue() { # issue NAME CN EXTENSIONS
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
      printf '%b' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days 3650 \
        -extfile "$1.ext" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    issue server localhost 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n'
    issue client fog 'extendedKeyUsage=clientAuth\n'
  ) || die "cannot create the TLS certificates in $dir"
}
