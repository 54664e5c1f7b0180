#!/usr/bin/env bash
# The images of the monitoring profile, chosen as the base images are (local-env.sh): the official
# ones when present or pullable, else stand-ins built from Debian's packages. Records the choice in
# the repository's .env (PROMETHEUS_IMAGE, NGINX_EXPORTER_IMAGE), which compose reads. `make
# monitoring` runs it; it is quick once the images are there.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
env_file="$repo/.env"
prefix=${LOCAL_IMAGE_PREFIX:-flask-stack-local}
# variable, official image, stand-in (compose/local-images/<name>)
images=(
  "PROMETHEUS_IMAGE prom/prometheus:v2.53.3 prometheus:2"
  "NGINX_EXPORTER_IMAGE nginx/nginx-prometheus-exporter:1.3.0 nginx-exporter:0"
)

say() { printf '[monitoring-images] %s\n' "$*"; }

lines=()
for entry in "${images[@]}"; do
  read -r variable official standin <<<"$entry"
  if docker image inspect "$official" >/dev/null 2>&1 || docker pull -q "$official" >/dev/null 2>&1; then
    lines+=("$variable=$official")
  else
    say "$official cannot be had here: a stand-in from Debian's packages"
    "$repo/compose/local-images/build.sh" "$standin" >&2
    lines+=("$variable=$prefix/$standin")
  fi
done

tmp=$(mktemp)
if [ -f "$env_file" ]; then grep -vE '^(PROMETHEUS_IMAGE|NGINX_EXPORTER_IMAGE)=' "$env_file" > "$tmp" || true; fi
printf '%s\n' "${lines[@]}" >> "$tmp"
mv "$tmp" "$env_file"
say "$(printf '%s ' "${lines[@]}")"
