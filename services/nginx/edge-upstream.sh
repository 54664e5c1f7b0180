#!/bin/sh
# Render the `web` upstream into /run/nginx/upstreams.conf, and with --reload, check the whole
# configuration and reload nginx gracefully: workers finish what they are serving, new ones use the
# new upstream. The deployer calls `edge-upstream.sh --reload HOST:PORT` to move traffic to a new
# web container; the entrypoint calls it at start with WEB_UPSTREAM (default web:8000).
#
#   edge-upstream.sh [--reload] HOST:PORT
#   edge-upstream.sh --draining     prints how many old workers are still finishing requests
set -eu

run=/run/nginx
target=$run/upstreams.conf

if [ "${1:-}" = "--draining" ]; then
  count=0
  for cmdline in /proc/[0-9]*/cmdline; do
    # Processes come and go while we look: a vanished one is simply not counted.
    if { tr '\0' ' ' < "$cmdline"; } 2>/dev/null | grep -q 'worker process is shutting down'; then
      count=$((count + 1))
    fi
  done
  echo "$count"
  exit 0
fi

reload=0
if [ "${1:-}" = "--reload" ]; then reload=1; shift; fi
server=${1:?usage: edge-upstream.sh [--reload] HOST:PORT}

. /usr/local/lib/edge-lib.sh
# From 1.27.3 nginx re-resolves upstream names, so a recreated container (new address) is found.
if nginx_at_least 1.27.3; then
  resolver="resolver 127.0.0.11 valid=5s ipv6=off;"
  upstream_server="zone web 64k; server $server resolve;"
else
  resolver=""
  upstream_server="server $server;"
fi

mkdir -p "$run"
previous=""
[ -f "$target" ] && previous=$(cat "$target")
cat > "$target.new" <<CONF
$resolver
upstream web {
    $upstream_server
    keepalive 32;
    keepalive_timeout 60s;
}
CONF
mv "$target.new" "$target"

if [ "$reload" = 1 ]; then
  if ! nginx -t -q 2>/tmp/edge-upstream.err; then
    printf '%s\n' "$previous" > "$target"
    echo "[edge] refused upstream $server: $(cat /tmp/edge-upstream.err)" >&2
    exit 1
  fi
  nginx -s reload
  echo "[edge] upstream web -> $server (nginx reloading gracefully)"
fi
