# shellcheck shell=bash
# scripts/swarm.sh, the images: on the official bases, or offline on a debootstrap Debian base. Sourced by swarm.sh after its settings.

OFFICIAL_IMAGES=(rabbitmq:4-management redis:7 postgres:16 debian:bookworm-slim)

# True when every official image is here or can be pulled (FOG_IMAGE_BASE=official|offline forces).
official_images_available() {
  case "${FOG_IMAGE_BASE:-auto}" in official) return 0 ;; offline) return 1 ;; esac
  local image
  for image in "${OFFICIAL_IMAGES[@]}"; do
    docker image inspect "$image" >/dev/null 2>&1 || timeout 120 docker pull -q "$image" >/dev/null 2>&1 || return 1
  done
}

# The offline base: Debian bookworm from debootstrap with RabbitMQ, Redis, PostgreSQL and the C
# libraries, cached as a tarball keyed by its package list. Prints its image name.
offline_base() {
  local dir=$STATE/images key tarball
  mkdir -p "$dir"
  key=$(echo "$BASE_PACKAGES" | sha256sum | cut -c1-12)
  tarball=$dir/base-$key.tar
  if [ ! -s "$tarball" ]; then
    say "debootstrap: a Debian bookworm base with RabbitMQ, Redis, PostgreSQL and the C libraries (about 2 min)"
    rm -rf "$dir/rootfs"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$dir/rootfs" http://deb.debian.org/debian >"$dir/debootstrap.log" 2>&1 \
      || die "debootstrap failed; see $dir/debootstrap.log"
    rm -rf "$dir"/rootfs/var/cache/apt/archives/*.deb "$dir"/rootfs/var/lib/apt/lists/* "$dir"/rootfs/usr/share/doc/* \
      "$dir"/rootfs/usr/share/man/* "$dir"/rootfs/var/lib/postgresql/*/main
    : >"$dir/rootfs/etc/hostname"
    tar -C "$dir/rootfs" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$dir/rootfs"
  fi
  docker image inspect "fog/bookworm:$key" >/dev/null 2>&1 \
    || docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' "$tarball" "fog/bookworm:$key" >/dev/null
  echo "fog/bookworm:$key"
}

images() {
  local stage=$STATE/images/stage service_base rabbitmq_base libs_base data_base=""
  if official_images_available; then
    say "bases: the official images (${OFFICIAL_IMAGES[*]})"
    service_base=debian:bookworm-slim rabbitmq_base=rabbitmq:4-management libs_base=debian:bookworm-slim
  else
    say "the official images cannot be had: building on an offline Debian base"
    data_base=$(offline_base)
    service_base=$data_base rabbitmq_base=$data_base libs_base=$data_base
  fi
  say "static release binaries"
  dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o DPkg::Lock::Timeout=900 libcurl4-openssl-dev >/dev/null
  for product in scheduler fog-node clusterctl; do
    (cd "$ROOT" && swift build -c release --static-swift-stdlib --product "$product" 2>&1 | tail -1)
  done
  rm -rf "$stage" && mkdir -p "$stage"
  cp "$ROOT"/.build/release/{scheduler,fog-node,clusterctl} "$ROOT"/deploy/rabbitmq-entrypoint.sh "$stage/"
  strip "$stage"/{scheduler,fog-node,clusterctl}
  say "docker build (tag $TAG)"
  docker build -q -f "$ROOT/deploy/Dockerfile.service" --build-arg "BASE_IMAGE=$service_base" \
    -t "fogscheduler/scheduler:$TAG" "$stage" >/dev/null
  docker tag "fogscheduler/scheduler:$TAG" "fogscheduler/fog-node:$TAG"
  docker build -q -f "$ROOT/deploy/Dockerfile.rabbitmq" --build-arg "BASE_IMAGE=$rabbitmq_base" \
    --build-arg "LIBS_IMAGE=$libs_base" -t "fogscheduler/rabbitmq:$TAG" "$stage" >/dev/null
  {
    echo "# Written by scripts/swarm.sh images: the images built here."
    echo "FOG_SCHEDULER_IMAGE=fogscheduler/scheduler:$TAG"
    echo "FOG_NODE_IMAGE=fogscheduler/fog-node:$TAG"
    echo "FOG_RABBITMQ_IMAGE=fogscheduler/rabbitmq:$TAG"
    # The offline base runs Redis and PostgreSQL too; otherwise compose.yml's official defaults.
    if [ -n "$data_base" ]; then echo "FOG_REDIS_IMAGE=$data_base"; echo "FOG_POSTGRES_IMAGE=$data_base"; fi
  } >"$STATE/images.env"
  # Earlier builds' images are dead weight on the engine's disk (those in use stay).
  docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -E '^fogscheduler/' | grep -v ":$TAG\$" \
    | xargs -r docker rmi >/dev/null 2>&1 || true
  docker image prune -f >/dev/null 2>&1 || true
  docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "fogscheduler/.*:$TAG|fog/bookworm" >&2
}
