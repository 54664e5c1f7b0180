#!/bin/sh
# REGISTRY_FORWARD=PORT:HOST:HOSTPORT: 127.0.0.1:PORT here is the registry at HOST:HOSTPORT.
set -eu
if [ -n "${REGISTRY_FORWARD:-}" ]; then
  port=${REGISTRY_FORWARD%%:*}
  socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "TCP:${REGISTRY_FORWARD#*:}" &
fi
exec dockerd --host=unix:///var/run/docker.sock
