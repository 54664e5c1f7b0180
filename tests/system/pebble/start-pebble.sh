#!/bin/sh
# pebble's ACME API is HTTPS only: a CA of this start signs its certificate (for the name
# "pebble", its service name), and the CA is left in /pebble-tls/ca.pem for the ACME client to
# trust. Challenges are validated at port 8080 (httpPort in the config): nginx's plain HTTP.
set -eu
tls=/pebble-tls
work=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=pebble test TLS CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=pebble" \
  -keyout "$tls/key.pem" -out "$work/pebble.csr" 2>/dev/null
printf 'subjectAltName=DNS:pebble,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$work/ext.cnf"
openssl x509 -req -in "$work/pebble.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 2 -extfile "$work/ext.cnf" -out "$tls/cert.pem" 2>/dev/null
cp "$work/ca.pem" "$tls/ca.pem.new"
mv "$tls/ca.pem.new" "$tls/ca.pem"
rm -rf "$work"
exec pebble -config /etc/pebble/config.json
