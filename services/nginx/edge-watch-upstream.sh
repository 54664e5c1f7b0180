#!/bin/sh
# Keep the `web` upstream equal to the addresses NAME resolves to, looking every second. Under
# Swarm NAME is tasks.web: one address per running (healthy) web task. nginx before 1.27.3 resolves
# an upstream's names only when it loads its configuration, so a task that is replaced or killed
# would otherwise be sent requests until the next reload. On a change the upstream is rendered
# again and nginx reloads gracefully (edge-upstream.sh): requests in flight finish where they are.
# While NAME resolves to nothing (no task up yet, or none left) the upstream stays as it is.
#
#   edge-watch-upstream.sh NAME:PORT     (run in the background by the entrypoint)
set -u

name=${1%:*}
port=${1##*:}
current=""
while :; do
  addresses=$(getent ahostsv4 "$name" 2>/dev/null | awk '{ print $1 }' | sort -u | tr '\n' ' ')
  if [ -n "$addresses" ] && [ "$addresses" != "$current" ] && [ -s /run/nginx/nginx.pid ]; then
    set --
    for address in $addresses; do set -- "$@" "$address:$port"; done
    if edge-upstream.sh --reload "$@" >&2; then
      current=$addresses
    fi
  fi
  sleep 1
done
