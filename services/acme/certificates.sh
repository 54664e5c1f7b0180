#!/bin/sh
# `python3 -m certificates ...` as the acme user, whoever starts it: the entrypoint, the health
# check, `docker compose exec acme certificates check` (files certbot writes stay the acme user's).
set -eu
if [ "$(id -u)" = 0 ]; then
  exec setpriv --reuid=10005 --regid=101 --clear-groups python3 -m certificates "$@"
fi
exec python3 -m certificates "$@"
