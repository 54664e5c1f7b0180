#!/bin/sh
# Serve a renewed certificate without a restart: every CERT_WATCH_SECONDS (default 10) compare the
# content of every certificate nginx could serve (edge-certificate.sh) with the last look; on a
# change, choose again and reload nginx gracefully (connections in flight finish on the old
# certificate, new ones get the new). A refused pair is tried again at the next look.
#
#   edge-watch-certificate.sh      (run in the background by the entrypoint)
set -u

interval=${CERT_WATCH_SECONDS:-10}
cert=${TLS_CERT_FILE:-fullchain.pem}
key=${TLS_KEY_FILE:-privkey.pem}

fingerprint() {
  for file in /etc/nginx/acme/live/fullchain.pem /etc/nginx/acme/live/privkey.pem \
      "/etc/nginx/certs/$cert" "/etc/nginx/certs/$key"; do
    # A file that cannot be read counts as missing: what changes is what nginx could load.
    printf '%s ' "$file"
    sha256sum 2>/dev/null < "$file" || echo missing
  done
}

seen=$(fingerprint)
while sleep "$interval"; do
  now=$(fingerprint)
  [ "$now" != "$seen" ] && [ -s /run/nginx/nginx.pid ] || continue
  if edge-certificate.sh --reload; then
    seen=$now
  fi
done
