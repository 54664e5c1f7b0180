# shellcheck shell=sh
# Sourced by docker-entrypoint.sh and edge-upstream.sh: what this nginx binary supports.

nginx_installed_version() { nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p'; }

# nginx_at_least 1.25.1: true when the running nginx is that version or newer.
nginx_at_least() {
  [ "$(printf '%s\n%s\n' "$1" "$(nginx_installed_version)" | sort -t. -k1,1n -k2,2n -k3,3n | head -n 1)" = "$1" ]
}
