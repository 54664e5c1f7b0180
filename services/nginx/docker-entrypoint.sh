#!/bin/sh
# Write the runtime part of the nginx configuration into /run/nginx, make a TLS certificate when
# none is mounted, then run nginx (as PID 1, so it gets the stop signal).
#
#   PUBLIC_HTTPS_PORT  the port browsers use for HTTPS (443 in production, 8443 in development);
#                      the HTTP -> HTTPS redirect points there
#   SERVER_NAME        nginx server_name (default: any)
#   TLS_CERT_FILE, TLS_KEY_FILE
#                      certificate chain and key, relative to /etc/nginx/certs (default fullchain.pem,
#                      privkey.pem); mount your real ones there in production
#   TLS_DEV_NAMES      names for a generated development certificate (default localhost,127.0.0.1)
#   HSTS_MAX_AGE       seconds (default two years; 0 leaves the header out)
#   WEB_UPSTREAM       host:port of gunicorn (default web:8000)
set -eu

run=/run/nginx
certs=/etc/nginx/certs
cert=${TLS_CERT_FILE:-fullchain.pem}
key=${TLS_KEY_FILE:-privkey.pem}
https_port=${PUBLIC_HTTPS_PORT:-443}
server_name=${SERVER_NAME:-_}
hsts_max_age=${HSTS_MAX_AGE:-63072000}
web_upstream=${WEB_UPSTREAM:-web:8000}

log() { echo "[edge] $*" >&2; }

. /usr/local/lib/edge-lib.sh

# A development CA and a certificate it signs, so clients can verify the chain with ca.pem.
make_certificate() {
  dir=$1
  names=${TLS_DEV_NAMES:-localhost,127.0.0.1}
  san=$(echo "$names" | tr ',' '\n' | awk 'NF { if ($0 ~ /^[0-9.]+$/) printf "%sIP:%s", sep, $0; else printf "%sDNS:%s", sep, $0; sep="," }')
  work=$(mktemp -d)
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -subj "/CN=flask-stack development CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out "$dir/ca.pem"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$key" 2>/dev/null
  openssl req -new -key "$dir/$key" -subj "/CN=${names%%,*}" -out "$work/server.csr"
  printf '%s\n' "subjectAltName=$san" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" > "$work/ext.cnf"
  openssl x509 -req -in "$work/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 825 -sha256 -extfile "$work/ext.cnf" -out "$dir/$cert" 2>/dev/null
  chmod 600 "$dir/ca.key" "$dir/$key"
  rm -rf "$work" "$dir/ca.srl"
  log "generated a development certificate for $names, signed by $dir/ca.pem"
}

cert_dir=$certs
if [ ! -s "$certs/$cert" ] || [ ! -s "$certs/$key" ]; then
  if [ -w "$certs" ]; then
    make_certificate "$certs"
  else
    # Read-only mount without certificates (first start of a production host, before certbot):
    # serve a throwaway certificate so the ACME challenge can run, and say so loudly.
    cert_dir=$run/tls
    mkdir -p "$cert_dir"
    make_certificate "$cert_dir"
    log "WARNING: no certificate at $certs/$cert; serving a temporary self-signed one"
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
edge-upstream.sh "$web_upstream"
cat > "$run/http-server.conf" <<CONF
server_name $server_name;
set \$https_port_suffix "$port_suffix";
CONF
cat > "$run/https-server.conf" <<CONF
$listen_tls
server_name $server_name;
ssl_certificate $cert_dir/$cert;
ssl_certificate_key $cert_dir/$key;
CONF
# A map, not a "set": errors nginx decides before any location runs (a request line too long) skip
# every "set", and must carry HSTS too. HTTPS is always 8443 inside the container.
cat > "$run/hsts.conf" <<CONF
map \$server_port \$hsts {
    8443 "$hsts";
    default "";
}
CONF

nginx -t -q
log "nginx $(nginx_installed_version); HTTPS on 8443 (public port $https_port), upstream $web_upstream"
exec "$@"
