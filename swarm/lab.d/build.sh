#!/usr/bin/env bash
# `swarm/lab build`: the lab's images, none of them from a public registry.
# 1. A Debian base image made once with debootstrap and `docker import`, cached by a content hash
#    of everything that shapes it (the recipe below, debootstrap's version, the host CA bundle).
# 2. Every swarm/*.Dockerfile built on it (--build-arg BASE_IMAGE=...), tagged
#    10.99.0.1:5000/<name>:latest, pushed to the lab registry and pulled on every worker, so that
#    no task start waits for a pull.
# Builds use the host's network (`--network host`) and get the package index's addresses as
# --add-host: the lab engines resolve nothing outside, but pip inside a build must reach the index. The host CA bundle is baked into the base
# image (and PIP_CERT points at it) because the index is only reachable with it on this machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REGISTRY=10.99.0.1:5000
CACHE=${SG_LAB_CACHE:-/var/cache/swarmguard-lab}
MIRROR=${SG_LAB_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
INCLUDE=python3,python3-venv,python3-pip,ca-certificates,curl
HOST_CA=/etc/ssl/certs/ca-certificates.crt
STATE=/run/swarmguard-lab
# The lab engines resolve no outside name (daemon.json "dns"), even for a build on the host's
# network: the package index's names are resolved here and handed to each build as --add-host,
# and so is the Debian mirror's (apt in swarm/loadhost.Dockerfile uses the base image's sources).
MIRROR_HOST=$(printf '%s' "$MIRROR" | sed -E 's#^[a-z]+://([^/:]+).*#\1#')
INDEX_HOSTS=${SG_LAB_INDEX_HOSTS:-pypi.org files.pythonhosted.org $MIRROR_HOST}

step() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf 'swarm/lab build: %s\n' "$*" >&2; exit 1; }
elapsed() { printf '%ss' "$((SECONDS - $1))"; }

base_hash() {
  {
    echo "recipe=debootstrap --variant=minbase --include=$INCLUDE $SUITE $MIRROR"
    echo "trim=usr/share/doc usr/share/man usr/share/info usr/share/locale var/cache/apt var/lib/apt/lists"
    echo "debootstrap=$(dpkg-query -W -f='${Version}' debootstrap)"
    sha256sum < "$HOST_CA"
  } | sha256sum | cut -c1-12
}

make_rootfs_tar() { # make_rootfs_tar TARBALL
  local tar=$1 dir
  dir=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  info "debootstrap $SUITE (minbase + $INCLUDE) from $MIRROR: about 70 s"
  if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$dir" "$MIRROR" \
      >"$CACHE/debootstrap.log" 2>&1; then
    rm -rf "$dir"
    die "debootstrap failed: see $CACHE/debootstrap.log"
  fi
  # A slimmer rootfs makes every pull, and so every migration, faster.
  rm -rf "$dir"/usr/share/{doc,man,info} "$dir"/var/cache/apt/* "$dir"/var/lib/apt/lists/*
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} + 2>/dev/null || true
  cp "$HOST_CA" "$dir/etc/ssl/certs/ca-certificates.crt"
  tar -C "$dir" -c . > "$tar.tmp"
  mv "$tar.tmp" "$tar"
  rm -rf "$dir"
}

ensure_base() { # prints the base image's local name
  local hash tar name t0=$SECONDS
  hash=$(base_hash)
  name="$REGISTRY/swarmguard-base:$hash"
  if docker image inspect "$name" >/dev/null 2>&1; then
    step "base image $name: present" >&2
  else
    mkdir -p "$CACHE"
    tar="$CACHE/base-$hash.tar"
    if [ -s "$tar" ]; then
      step "base image $name: importing the cached rootfs $tar" >&2
    else
      step "base image $name: building" >&2
      make_rootfs_tar "$tar" >&2
    fi
    docker import --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
      --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
      "$tar" "$name" >/dev/null
    info "base image ready in $(elapsed $t0)" >&2
  fi
  docker tag "$name" "$REGISTRY/swarmguard-base:latest"
  echo "$name"
}

# The build context without the virtualenv, git data and results (no .dockerignore needed).
context_tar() {
  tar -C "$ROOT" --exclude=./.venv --exclude=./.git --exclude=./results \
    --exclude='__pycache__' --exclude='.pytest_cache' --exclude='.hypothesis' -c .
}

dockerfiles() {
  local f
  for f in "$ROOT"/swarm/*.Dockerfile; do
    [ -e "$f" ] && echo "swarm/${f##*/}"
  done
  return 0
}

index_host_args() { # --add-host NAME:IP for each of INDEX_HOSTS, resolved by the host
  local host ip
  for host in $INDEX_HOSTS; do
    ip=$(getent ahostsv4 "$host" | awk 'NR==1{print $1}')
    [ -n "$ip" ] || die "cannot resolve $host (needed by pip inside the builds)"
    printf -- '--add-host\n%s:%s\n' "$host" "$ip"
  done
}

build_one() { # build_one DOCKERFILE BASE
  local file=$1 base=$2 name t0=$SECONDS
  name=${file##*/}
  name=${name%.Dockerfile}
  step "image $name from $file"
  # The classic builder (no BuildKit frontend image to pull); its deprecation notice is noise.
  local errors status=0 hosts
  mapfile -t hosts < <(index_host_args)
  errors=$(mktemp)
  context_tar | DOCKER_BUILDKIT=0 docker build -q --network host "${hosts[@]}" -f "$file" \
    --build-arg "BASE_IMAGE=$base" -t "$REGISTRY/$name:latest" - >/dev/null 2>"$errors" || status=$?
  grep -v -E 'DEPRECATED|BuildKit|environment-variable|^ *$' "$errors" >&2 || true
  rm -f "$errors"
  ((status == 0)) ||
    die "docker build of $file failed (rerun: docker build -f $file --build-arg BASE_IMAGE=$base .)"
  docker push -q "$REGISTRY/$name:latest" >/dev/null
  info "built and pushed $REGISTRY/$name:latest in $(elapsed $t0)"
  BUILT+=("$REGISTRY/$name:latest")
}

prepull() {
  local workers n img t0=$SECONDS
  workers=$(cat "$STATE/workers" 2>/dev/null || echo 3)
  step "pre-pull on $workers workers"
  for ((n = 1; n <= workers; n++)); do
    for img in "$@"; do
      docker -H "unix:///run/sgn$n/docker.sock" pull -q "$img" >/dev/null &
    done
  done
  wait || die "a pre-pull failed"
  info "pulled ${#@} images on every worker in $(elapsed $t0)"
}

prune_dangling() { # every rebuild leaves the previous :latest untagged on each engine (lab engines only)
  local n workers
  workers=$(cat "$STATE/workers" 2>/dev/null || echo 3)
  docker image prune -f >/dev/null
  for ((n = 1; n <= workers; n++)); do docker -H "unix:///run/sgn$n/docker.sock" image prune -f >/dev/null; done
}

main() {
  local base t0=$SECONDS
  BUILT=()
  base=$(ensure_base)
  docker push -q "$REGISTRY/swarmguard-base:latest" >/dev/null
  while read -r file; do build_one "$file" "$base"; done < <(dockerfiles)
  ((${#BUILT[@]})) || info "no swarm/*.Dockerfile: only the base image"
  prepull "$REGISTRY/swarmguard-base:latest" "${BUILT[@]}"
  prune_dangling
  step "build done in $(elapsed $t0)"
  docker images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep "^$REGISTRY/" | grep -v ':[0-9a-f]\{12\} '
}
main "$@"
