#!/bin/sh
# Root only long enough to give the volumes to the acme user (a new volume belongs to root, and
# nginx's image may have made it first), then the service, as that user.
set -eu
if [ "$(id -u)" = 0 ]; then
  chown 10005:101 /etc/letsencrypt /certs /var/www/acme
fi
exec certificates "$@"
