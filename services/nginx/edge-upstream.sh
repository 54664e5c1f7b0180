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

# nginx_workers serving|draining: the pids of nginx's workers that take new connections, or of
# those that finish their requests after a reload. Processes come and go while we look: a vanished
# one is simply not listed.
nginx_workers() {
  for dir in /proc/[0-9]*; do
    title=$({ tr '\0' ' ' < "$dir/cmdline"; } 2>/dev/null) || continue
    case "$title" in
      *"worker process is shutting down"*) [ "$1" = draining ] && echo "${dir#/proc/}" ;;
      *"worker process"*) [ "$1" = serving ] && echo "${dir#/proc/}" ;;
    esac
  done
  return 0
}

# still_serving PID...: those of the given workers that still take new connections.
still_serving() {
  serving=" $(nginx_workers serving | tr '\n' ' ') "
  for pid in "$@"; do
    case "$serving" in *" $pid "*) echo "$pid" ;; esac
  done
}

if [ "${1:-}" = "--draining" ]; then
  nginx_workers draining | wc -l
  exit 0
fi

reload=0
if [ "${1:-}" = "--reload" ]; then reload=1; shift; fi
[ $# -gt 0 ] || { echo "usage: edge-upstream.sh [--reload] HOST:PORT..." >&2; exit 2; }

# shellcheck source=services/nginx/edge-lib.sh
. /usr/local/lib/edge-lib.sh
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
  if ! nginx -t -q 2>/tmp/edge-upstream.err; then
    printf '%s\n' "$previous" > "$target"
    echo "[edge] refused upstream $*: $(cat /tmp/edge-upstream.err)" >&2
    exit 1
  fi
  before=$(nginx_workers serving)
  nginx -s reload
  # `nginx -s reload` only signals the master, which then reads the configuration and starts new
  # workers: until it has, the old workers still take new connections (for tens of milliseconds,
  # longer under load). Return only once every one of them is finishing up or gone, so that a
  # caller that next waits for `--draining` to reach 0 and stops the old upstream loses nothing.
  waited=0
  # shellcheck disable=SC2086  # $before is a list of PIDs, one argument each
  while [ -n "$(still_serving $before)" ]; do
    if [ "$waited" -ge 200 ]; then
      echo "[edge] nginx has not applied the reload within 10 s" >&2
      exit 1
    fi
    sleep 0.05
    waited=$((waited + 1))
  done
  echo "[edge] upstream web -> $* (old workers finishing their requests)"
fi
