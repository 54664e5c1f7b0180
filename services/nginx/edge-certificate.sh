#!/bin/sh
# Point nginx at the certificate it serves (/run/nginx/certificate.conf); with --reload, check the
# configuration and reload nginx gracefully, as edge-watch-certificate.sh does when a certificate's
# files change. The first pair whose two files exist is served:
#   1. /etc/nginx/acme/live/fullchain.pem, privkey.pem  the ACME service's (docs/operations.md "Certificates")
#   2. /etc/nginx/certs/TLS_CERT_FILE, TLS_KEY_FILE     your own, or the development certificate
#   3. /run/nginx/tls/TLS_CERT_FILE, TLS_KEY_FILE       the temporary one the entrypoint made
# A pair nginx refuses (a key that does not match its certificate, half written) changes nothing:
# the last good one is served on, and the watcher tries again.
#
#   edge-certificate.sh [--reload]
set -eu

run=/run/nginx
target=$run/certificate.conf
cert=${TLS_CERT_FILE:-fullchain.pem}
key=${TLS_KEY_FILE:-privkey.pem}

# shellcheck source=services/nginx/edge-lib.sh
. /usr/local/lib/edge-lib.sh

chosen_cert=""
chosen_key=""
choose() {
  [ -z "$chosen_cert" ] && [ -s "$1" ] && [ -s "$2" ] || return 0
  chosen_cert=$1
  chosen_key=$2
}
choose /etc/nginx/acme/live/fullchain.pem /etc/nginx/acme/live/privkey.pem
choose "/etc/nginx/certs/$cert" "/etc/nginx/certs/$key"
choose "$run/tls/$cert" "$run/tls/$key"
if [ -z "$chosen_cert" ]; then
  echo "[edge] no certificate to serve (neither ACME's, nor /etc/nginx/certs/$cert, nor a temporary one)" >&2
  exit 1
fi

previous=""
[ -f "$target" ] && previous=$(cat "$target")
printf 'ssl_certificate %s;\nssl_certificate_key %s;\n' "$chosen_cert" "$chosen_key" > "$target.new"
mv "$target.new" "$target"

served=$(openssl x509 -noout -subject -issuer -enddate -in "$chosen_cert" 2>/dev/null | tr '\n' ' ' || true)
if [ "${1:-}" = "--reload" ]; then
  reload_or_restore "$target" "$previous" "certificate $chosen_cert" || exit 1
  echo "[edge] now serving $chosen_cert: $served" >&2
else
  echo "[edge] serving $chosen_cert: $served" >&2
fi
