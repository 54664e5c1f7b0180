#!/bin/sh
# Render the `web` upstream into /run/nginx/upstreams.conf, and with --reload, check the whole
# configuration and reload nginx gracefully: workers finish what they are serving, new ones use the
# new upstream. The deployer calls `edge-upstream.sh --reload HOST:PORT...` to move traffic to new
# web containers (one or several: nginx spreads requests over them); the entrypoint calls it at
# start with WEB_UPSTREAM (default web:8000, the service name: every web container).
#
#   edge-upstream.sh [--reload] HOST:PORT...
#   edge-upstream.sh --draining     prints how many old workers are still finishing requests
set -eu

run=/run/nginx
target=$run/upstreams.conf

# shellcheck source=services/nginx/edge-lib.sh
. /usr/local/lib/edge-lib.sh

if [ "${1:-}" = "--draining" ]; then
  nginx_workers draining | wc -l
  exit 0
fi

reload=0
if [ "${1:-}" = "--reload" ]; then reload=1; shift; fi
[ $# -gt 0 ] || { echo "usage: edge-upstream.sh [--reload] HOST:PORT..." >&2; exit 2; }

# From 1.27.3 nginx re-resolves upstream names, so a recreated container (new address) is found.
if nginx_at_least 1.27.3; then
  resolver="resolver 127.0.0.11 valid=5s ipv6=off;"
  zone="zone web 64k;"
  resolve=" resolve"
else
  resolver=""
  zone=""
  resolve=""
fi
servers=""
for server in "$@"; do
  servers="$servers    server $server$resolve;
"
done

mkdir -p "$run"
previous=""
[ -f "$target" ] && previous=$(cat "$target")
cat > "$target.new" <<CONF
$resolver
upstream web {
    $zone
$servers    keepalive 32;
    keepalive_timeout 60s;
}
CONF
mv "$target.new" "$target"

if [ "$reload" = 1 ]; then
  reload_or_restore "$target" "$previous" "upstream $*" || exit 1
  echo "[edge] upstream web -> $* (old workers finishing their requests)"
fi
