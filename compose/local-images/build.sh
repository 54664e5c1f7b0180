#!/usr/bin/env bash
# Build local stand-ins for the official base images on a machine that cannot pull them.
# compose/scripts/local-env.sh selects them in .env (`make images` does both).
#
#   debootstrap (Debian's own mirror, from this machine's apt configuration) -> docker import
#   -> one thin Dockerfile per stand-in (postgres, redis, python, nginx) FROM that base.
#
#   build.sh [--all] [NAME:TAG...]   the four base stand-ins, or the named ones (registry:2);
#                                    --all rebuilds even those whose files have not changed
#
# The project's Dockerfiles stay the same: they take their base image from PYTHON_IMAGE / NGINX_IMAGE,
# and compose takes POSTGRES_IMAGE / REDIS_IMAGE; only those variables change. Needs root (debootstrap).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
prefix=${LOCAL_IMAGE_PREFIX:-flask-stack-local}
suite=bookworm
base_image="$prefix/debian:$suite"
export DOCKER_BUILDKIT=0  # the classic builder uses local images as they are, never asking a registry

say() { printf '[local-images] %s\n' "$*"; }

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return
  say "installing debootstrap from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

# The Debian mirror this machine already uses (deb822 or one-line format); empty means debootstrap's default.
host_mirror() {
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources
  elif [ -f /etc/apt/sources.list ]; then
    awk '$1 == "deb" && $3 == "'"$suite"'" {print $2; exit}' /etc/apt/sources.list
  fi
}

build_base() {
  if docker image inspect "$base_image" >/dev/null 2>&1 && [ -z "${REBUILD:-}" ]; then
    say "$base_image already built"
    return
  fi
  ensure_debootstrap
  local rootfs
  rootfs=$(mktemp -d /tmp/flask-stack-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' RETURN
  # The mirror is debootstrap's optional third argument: none means its default.
  local mirror=()
  mapfile -t mirror < <(host_mirror || true)
  say "debootstrap $suite into $rootfs (${mirror[*]:-default mirror})"
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$rootfs" "${mirror[@]}" >/dev/null
  # Same package sources as this machine (updates, security), when it uses the standard layout.
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/debian.sources"
    rm -f "$rootfs/etc/apt/sources.list"
  fi
  # Packages must not try to start services inside an image build.
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
  chmod +x "$rootfs/usr/sbin/policy-rc.d"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$rootfs/etc/apt/apt.conf.d/90-no-recommends"
  : > "$rootfs/etc/resolv.conf"
  echo localhost > "$rootfs/etc/hostname"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  say "importing $base_image"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' - "$base_image" >/dev/null
}

# A digest of a stand-in's files: local-env.sh rebuilds a stand-in whose files changed since.
source_digest() { (cd "$here/$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }

build_standin() {
  local name=$1 tag=$2 log
  say "building $prefix/$name:$tag"
  log=$(mktemp)
  if ! docker build --build-arg "BASE_IMAGE=$base_image" --label "flask-stack.source=$(source_digest "$name")" \
      -t "$prefix/$name:$tag" "$here/$name" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

# Each stand-in, unless it is built already from the files it has now (--all: every one). Named
# ones only, when named (registry:2 is built only for `make registry`).
standins=(postgres:15 redis:7 python:3.11 nginx:stable)
rebuild=0
if [ "${1:-}" = "--all" ]; then rebuild=1; shift; fi
if [ $# -gt 0 ]; then standins=("$@"); fi
build_base
for standin in "${standins[@]}"; do
  name=${standin%%:*}
  built=$(docker image inspect -f '{{ index .Config.Labels "flask-stack.source" }}' "$prefix/$standin" 2>/dev/null || true)
  if [ "$rebuild" = 1 ] || [ "$built" != "$(source_digest "$name")" ]; then
    build_standin "$name" "${standin#*:}"
  else
    say "$prefix/$standin is up to date"
  fi
done
