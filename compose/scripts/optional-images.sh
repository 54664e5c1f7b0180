#!/usr/bin/env bash
# Images beyond the base ones, chosen as those are (local-env.sh): the official one when present or
# pullable, else a stand-in built from Debian's packages. Records each choice in the repository's
# .env, which compose and the tests read. Quick once the images are there.
#
#   optional-images.sh VARIABLE...    e.g. PROMETHEUS_IMAGE NGINX_EXPORTER_IMAGE (`make monitoring`),
#                                     MARIADB_IMAGE (the integration tier's MariaDB)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
env_file="$repo/.env"
prefix=${LOCAL_IMAGE_PREFIX:-flask-stack-local}
# variable, official image, stand-in (compose/local-images/<name>)
images=(
  "PROMETHEUS_IMAGE prom/prometheus:v2.53.3 prometheus:2"
  "NGINX_EXPORTER_IMAGE nginx/nginx-prometheus-exporter:1.3.0 nginx-exporter:0"
  "MARIADB_IMAGE mariadb:10.11 mariadb:10.11"
)

say() { printf '[optional-images] %s\n' "$*"; }

[ $# -gt 0 ] || { echo "usage: $0 VARIABLE..." >&2; exit 2; }
lines=()
for wanted in "$@"; do
  entry=$(printf '%s\n' "${images[@]}" | awk -v name="$wanted" '$1 == name')
  [ -n "$entry" ] || { echo "$0: no image is known as $wanted" >&2; exit 2; }
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
if [ -f "$env_file" ]; then grep -vE "^($(IFS='|'; echo "$*"))=" "$env_file" > "$tmp" || true; fi
printf '%s\n' "${lines[@]}" >> "$tmp"
mv "$tmp" "$env_file"
say "$(printf '%s ' "${lines[@]}")"
