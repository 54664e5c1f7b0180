#!/bin/sh
# Write the runtime part of the nginx configuration into /run/nginx, make a TLS certificate when
# none is mounted, then run nginx (as PID 1, so it gets the stop signal). Certificates that change
# while it runs (the ACME service's renewals, your own) are served within CERT_WATCH_SECONDS,
# without a restart: edge-certificate.sh, edge-watch-certificate.sh.
#
#   PUBLIC_HTTPS_PORT  the port browsers use for HTTPS (443 in production, 8443 in development);
#                      the HTTP -> HTTPS redirect points there
#   SERVER_NAME        nginx server_name (default: any)
#   TLS_CERT_FILE, TLS_KEY_FILE
#                      certificate chain and key, relative to /etc/nginx/certs (default fullchain.pem,
#                      privkey.pem); mount your real ones there in production, or let the
#                      ACME service obtain them (/etc/nginx/acme/live/, which wins when present)
#   CERT_WATCH_SECONDS how often to look for a changed certificate (default 10)
#   TLS_DEV_NAMES      names for a generated development certificate (default localhost,127.0.0.1)
#   HSTS_MAX_AGE       seconds (default two years; 0 leaves the header out)
#   WEB_UPSTREAM       host:port of gunicorn (default web:8000)
#   WEB_UPSTREAM_WATCH name:port resolved every second instead, one upstream server per address
#                      (Swarm: tasks.web:8000); see edge-watch-upstream.sh
#   SIGN_IN_RATE       requests per address to /api/auth/login and /register (default 2r/s, burst 5)
#   AUTH_RATE          requests per address to the rest of /api/auth/ (default 10r/s, burst 20)
set -eu

run=/run/nginx
certs=/etc/nginx/certs
cert=${TLS_CERT_FILE:-fullchain.pem}
key=${TLS_KEY_FILE:-privkey.pem}
https_port=${PUBLIC_HTTPS_PORT:-443}
server_name=${SERVER_NAME:-_}
hsts_max_age=${HSTS_MAX_AGE:-63072000}
web_upstream=${WEB_UPSTREAM:-web:8000}
web_upstream_watch=${WEB_UPSTREAM_WATCH:-}
sign_in_rate=${SIGN_IN_RATE:-2r/s}
auth_rate=${AUTH_RATE:-10r/s}

log() { echo "[edge] $*" >&2; }

# shellcheck source=services/nginx/edge-lib.sh
. /usr/local/lib/edge-lib.sh

# A development CA and a certificate it signs, so clients can verify the chain with ca.pem. The CA
# can sign only the names it was made for (name constraints), its key lives in a private temporary
# folder and is deleted once the certificate is signed, and both last a year (browsers refuse
# server certificates valid longer than 398 days; Mozilla's intermediate profile asks under 366).
DEV_CA_SUBJECT="flask-stack development CA"
DEV_DAYS=365
make_certificate() {
  dir=$1
  names=${TLS_DEV_NAMES:-localhost,127.0.0.1}
  san=$(echo "$names" | tr ',' '\n' | awk 'NF { if ($0 ~ /^[0-9.]+$/) printf "%sIP:%s", sep, $0; else printf "%sDNS:%s", sep, $0; sep="," }')
  permitted=$(echo "$names" | tr ',' '\n' | awk 'NF { if ($0 ~ /^[0-9.]+$/) printf "%spermitted;IP:%s/255.255.255.255", sep, $0; else printf "%spermitted;DNS:%s", sep, $0; sep="," }')
  work=$(mktemp -d)
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$work/ca.key" -sha256 -days "$DEV_DAYS" -subj "/CN=$DEV_CA_SUBJECT" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "nameConstraints=critical,$permitted" -addext "subjectKeyIdentifier=hash" -out "$dir/ca.pem"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$key" 2>/dev/null
  openssl req -new -key "$dir/$key" -subj "/CN=${names%%,*}" -out "$work/server.csr"
  printf '%s\n' "subjectAltName=$san" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" > "$work/ext.cnf"
  openssl x509 -req -in "$work/server.csr" -CA "$dir/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -CAserial "$work/ca.srl" -days "$DEV_DAYS" -sha256 -extfile "$work/ext.cnf" -out "$dir/$cert" 2>/dev/null
  chmod 600 "$dir/$key"
  rm -rf "$work"  # the CA's key with it: nothing can be signed with this CA again
  log "generated a development certificate for $names (valid $DEV_DAYS days), signed by $dir/ca.pem"
}

# A development certificate is made again when it is near its end, or was made the old way (its
# CA's key kept beside it). Certificates of your own are never touched.
dev_certificate_due() {
  [ -s "$certs/ca.pem" ] || return 1
  openssl x509 -noout -issuer -in "$certs/$cert" 2>/dev/null | grep -q "$DEV_CA_SUBJECT" || return 1
  [ -e "$certs/ca.key" ] || ! openssl x509 -checkend $((30 * 86400)) -noout -in "$certs/$cert" >/dev/null
}
if [ -w "$certs" ] && [ -s "$certs/$cert" ] && dev_certificate_due; then
  log "renewing the development certificate"
  rm -f "$certs/$cert" "$certs/$key" "$certs/ca.key"
fi

if [ ! -s /etc/nginx/acme/live/fullchain.pem ] && { [ ! -s "$certs/$cert" ] || [ ! -s "$certs/$key" ]; }; then
  if [ -w "$certs" ]; then
    make_certificate "$certs"
  else
    # Read-only mount without certificates (first start of a production host, before the ACME
    # service or certbot has run): serve a throwaway certificate so the ACME challenge can run,
    # and say so loudly.
    mkdir -p "$run/tls"
    make_certificate "$run/tls"
    log "WARNING: no certificate at $certs/$cert; serving a temporary self-signed one until one arrives"
  fi
fi

if [ "$https_port" = 443 ]; then port_suffix=""; else port_suffix=":$https_port"; fi
if [ "$hsts_max_age" = 0 ]; then hsts=""; else hsts="max-age=$hsts_max_age; includeSubDomains"; fi
# `http2 on` exists from nginx 1.25.1 (the listen flag is deprecated there); Debian bookworm has 1.22.
if nginx_at_least 1.25.1; then
  listen_tls="listen 8443 ssl; http2 on;"
else
  listen_tls="listen 8443 ssl http2;"
fi

mkdir -p "$run"
for setting in "SIGN_IN_RATE=$sign_in_rate" "AUTH_RATE=$auth_rate"; do
  case "${setting#*=}" in
    *[!0-9rsm/]*|"") log "$setting is not a rate such as 2r/s or 30r/m"; exit 1 ;;
  esac
done
{
  echo "limit_req_zone \$binary_remote_addr zone=sign_in:10m rate=$sign_in_rate;"
  echo "limit_req_zone \$binary_remote_addr zone=auth:10m rate=$auth_rate;"
} > "$run/limits.conf"
if [ -n "$web_upstream_watch" ]; then
  # Until the watcher has found a task: a port nothing listens on, so requests get a JSON 502.
  web_upstream=127.0.0.1:9
  edge-watch-upstream.sh "$web_upstream_watch" &
fi
edge-upstream.sh "$web_upstream"
cat > "$run/http-server.conf" <<CONF
server_name $server_name;
set \$https_port_suffix "$port_suffix";
CONF
cat > "$run/https-server.conf" <<CONF
$listen_tls
server_name $server_name;
include $run/certificate.conf;
CONF
edge-watch-certificate.sh &
edge-certificate.sh
# A map, not a "set": errors nginx decides before any location runs (a request line too long) skip
# every "set", and must carry HSTS too. HTTPS is always 8443 inside the container.
cat > "$run/hsts.conf" <<CONF
map \$server_port \$hsts {
    8443 "$hsts";
    default "";
}
CONF

nginx -t -q
log "nginx $(nginx_installed_version); HTTPS on 8443 (public port $https_port), upstream ${web_upstream_watch:-$web_upstream}"
exec "$@"
