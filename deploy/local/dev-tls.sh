#!/usr/bin/env bash
# Makes the local cluster's TLS material in DIR when it is not there yet: a development CA
# (ca.pem; its key ca.key never leaves DIR), a certificate it signed for localhost, 127.0.0.1 and
# ::1 (server.pem with the CA after it, server.key), and the session ticket key the gateways share
# (ticket.key, 80 random bytes). Clients trust ca.pem: imcli --tls-ca DIR/ca.pem.
# For development only: a real deployment's certificate comes from its own CA (deploy/k8s).
#
# Usage: deploy/local/dev-tls.sh DIR
set -euo pipefail

DIR="${1:?usage: dev-tls.sh DIR}"
mkdir -p "$DIR"
chmod 700 "$DIR"
cd "$DIR"

if [ ! -s ca.pem ] || [ ! -s ca.key ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
    -subj "/CN=im local development CA" -keyout ca.key -out ca.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    2>/dev/null
  rm -f server.pem server.key
fi
# A certificate that is missing or expires within a week is made again.
if [ ! -s server.pem ] || ! openssl x509 -in server.pem -noout -checkend 604800 >/dev/null; then
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -sha256 \
    -out server.crt -extfile <(printf '%s\n' \
      "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1") \
    2>/dev/null
  cat server.crt ca.pem >server.pem
  rm -f server.csr server.crt ca.srl
fi
[ -s ticket.key ] || openssl rand -out ticket.key 80
chmod 600 ca.key server.key ticket.key
