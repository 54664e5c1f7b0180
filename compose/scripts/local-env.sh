#!/usr/bin/env bash
# Write what this machine needs into the repository's .env, which compose reads for ${...} values
# (and so do `make` and the tests). Other lines a user keeps in .env are left alone.
#
#   BASE IMAGES      the official images when present or pullable; otherwise local stand-ins, built
#                    by compose/local-images/build.sh (again when their files change).
#                    `--local-images` selects the stand-ins.
#   EXTRA_CA_CERTS   the certificates this machine trusts beyond the standard bundle (the folder
#                    update-ca-certificates reads), so image builds work behind a TLS-intercepting
#                    proxy. Stored on one line with \n escapes; the Dockerfiles expand them.
#   DEPLOY_*         for the push-to-deploy deployer: the repository's absolute path (mounted at the
#                    same path, so compose paths mean the same inside and out), its owner (the
#                    deployer checks out commits as that user) and the Docker socket's group.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
env_file="$repo/.env"
prefix=${LOCAL_IMAGE_PREFIX:-flask-stack-local}
local_ca_dir=${LOCAL_CA_DIR:-/usr/local/share/ca-certificates}
managed='POSTGRES_IMAGE|REDIS_IMAGE|PYTHON_IMAGE|NGINX_IMAGE|DEBIAN_IMAGE|EXTRA_CA_CERTS|DEPLOY_ROOT|DEPLOY_UID|DEPLOY_GID|DOCKER_GID'
declare -A standins=(
  [POSTGRES_IMAGE]="$prefix/postgres:15"
  [REDIS_IMAGE]="$prefix/redis:7"
  [PYTHON_IMAGE]="$prefix/python:3.11"
  [NGINX_IMAGE]="$prefix/nginx:stable"
  [DEBIAN_IMAGE]="$prefix/debian:bookworm"
)

say() { printf '[local-env] %s\n' "$*"; }

official_images() { grep -E '^[A-Z_]+=' "$repo/compose/official-images.env"; }

choose_images() {
  if [ "${1:-}" = "--local-images" ]; then
    for key in POSTGRES_IMAGE REDIS_IMAGE PYTHON_IMAGE NGINX_IMAGE DEBIAN_IMAGE; do echo "$key=${standins[$key]}"; done
    return
  fi
  local key official missing=0
  while IFS='=' read -r key official; do
    if ! docker image inspect "$official" >/dev/null 2>&1 && ! docker pull -q "$official" >/dev/null 2>&1; then
      say "$official cannot be had here" >&2
      missing=1
    fi
  done < <(official_images)
  if [ "$missing" = 0 ]; then
    official_images
    return
  fi
  # Builds what is missing or out of date (a stand-in's files changed); quick when all are current.
  "$repo/compose/local-images/build.sh" >&2
  choose_images --local-images
}

extra_ca_line() {
  local certs=("$local_ca_dir"/*.crt)
  [ -e "${certs[0]}" ] || return 0
  printf "EXTRA_CA_CERTS='%s'\n" "$(cat "${certs[@]}" | awk 'BEGIN { ORS = "\\n" } { print }')"
}

deploy_lines() {
  local socket=${DOCKER_SOCKET:-/var/run/docker.sock}
  echo "DEPLOY_ROOT=$repo"
  echo "DEPLOY_UID=$(stat -c %u "$repo")"
  echo "DEPLOY_GID=$(stat -c %g "$repo")"
  [ -S "$socket" ] && echo "DOCKER_GID=$(stat -c %g "$socket")"
  return 0
}

selection=$(choose_images "${1:-}")
tmp=$(mktemp)
if [ -f "$env_file" ]; then
  grep -vE "^($managed)=|^# written by compose/scripts/local-env.sh" "$env_file" > "$tmp" || true
fi
{
  echo "# written by compose/scripts/local-env.sh; other lines are yours"
  echo "$selection"
  extra_ca_line
  deploy_lines
} >> "$tmp"
mv "$tmp" "$env_file"
say "base images: $(echo "$selection" | sed -n 's/^PYTHON_IMAGE=//p' | grep -q "^$prefix/" && echo "local stand-ins" || echo "official")$( [ -n "$(extra_ca_line)" ] && echo "; extra CA certificates recorded")"
