#!/usr/bin/env bash
# Certificate reload on SIGHUP, judged by `openssl s_client`: a real im-gateway serves a
# certificate of one development CA (deploy/local/dev-tls.sh); its files are replaced by one of
# another CA and the gateway gets SIGHUP. Then:
#   - new handshakes get the new certificate (its fingerprint; it verifies with the new CA only);
#   - a TLS connection opened before the reload is still open (reload drops no connection);
#   - files that do not load (a broken PEM) leave the certificate in use: handshakes still get it.
# Usage: tests/tls/reload_test.sh IM_GATEWAY_BINARY WORK_DIR
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
GATEWAY="$1"
WORK="$2"
rm -rf "$WORK"
mkdir -p "$WORK/served"
fail() {
  echo "reload_test: FAIL: $*" >&2
  tail -n 20 "$WORK/gateway.log" >&2 2>/dev/null || true
  exit 1
}

"$ROOT/deploy/local/dev-tls.sh" "$WORK/first"
"$ROOT/deploy/local/dev-tls.sh" "$WORK/second"
serve() { cp "$WORK/$1/server.pem" "$WORK/$1/server.key" "$WORK/served/"; }
serve first

# shellcheck source=tests/tls/tls_gateway.sh
. "$ROOT/tests/tls/tls_gateway.sh"
held_pid=""
cleanup() {
  if [ -n "$held_pid" ]; then kill "$held_pid" 2>/dev/null || true; fi
  kill_tls_gateway
}
trap cleanup EXIT INT TERM
# The connections never log in: the login timeout is long enough for the held one to outlive the
# reload.
start_tls_gateway "$WORK/served/server.pem" "$WORK/served/server.key" \
  IM_GATEWAY_LOGIN_TIMEOUT_MS=60000

# One handshake trusting CA $1: prints the served certificate's SHA-256 fingerprint, then
# "verify=<code>" (0: the chain verified).
handshake() {
  local out
  out="$(openssl s_client -connect "127.0.0.1:$port" -servername localhost \
    -CAfile "$WORK/$1/ca.pem" </dev/null 2>/dev/null || true)"
  printf '%s\n' "$out" | openssl x509 -noout -fingerprint -sha256 2>/dev/null || echo "no certificate"
  echo "verify=$(printf '%s\n' "$out" | sed -n 's/^ *Verify return code: \([0-9]*\).*/\1/p' | head -1)"
}
fingerprint_of() { openssl x509 -in "$WORK/$1/server.pem" -noout -fingerprint -sha256; }

first_fp="$(fingerprint_of first)"
second_fp="$(fingerprint_of second)"
[ "$(handshake first)" = "$first_fp"$'\n'"verify=0" ] ||
  fail "before the reload: expected the first certificate, verified; got: $(handshake first)"

# A connection held open across the reload: s_client stays while the server keeps it and its
# stdin (a FIFO this script holds open) has no EOF.
mkfifo "$WORK/held.in"
exec 3<>"$WORK/held.in"
openssl s_client -connect "127.0.0.1:$port" -servername localhost \
  -CAfile "$WORK/first/ca.pem" <&3 >"$WORK/held.log" 2>&1 &
held_pid=$!
for _ in $(seq 1 50); do
  grep -q "Verify return code: 0" "$WORK/held.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "Verify return code: 0" "$WORK/held.log" || fail "the held connection did not handshake"

serve second
kill -HUP "$gateway_pid"
reloaded=""
for _ in $(seq 1 50); do
  if [ "$(handshake second)" = "$second_fp"$'\n'"verify=0" ]; then reloaded=1; break; fi
  sleep 0.1
done
[ -n "$reloaded" ] || fail "after SIGHUP: the second certificate was not served: $(handshake second)"
case "$(handshake first)" in
  *verify=0) fail "the second certificate verified with the first CA" ;;
esac
sleep 1
kill -0 "$held_pid" 2>/dev/null || fail "the connection opened before the reload was closed"
grep -q "closed" "$WORK/held.log" && fail "the held connection was closed: $(tail -3 "$WORK/held.log")"

# A reload whose files do not load keeps the certificate in use.
echo "not a certificate" >"$WORK/served/server.pem"
kill -HUP "$gateway_pid"
for _ in $(seq 1 50); do
  grep -q "TLS certificate reload failed" "$WORK/gateway.log" && break
  sleep 0.1
done
grep -q "TLS certificate reload failed" "$WORK/gateway.log" || fail "no error logged for a bad reload"
[ "$(handshake second)" = "$second_fp"$'\n'"verify=0" ] ||
  fail "after a failed reload: the certificate in use changed: $(handshake second)"
kill -0 "$gateway_pid" 2>/dev/null || fail "im-gateway died on a bad reload"

kill "$held_pid" 2>/dev/null || true
held_pid=""
stop_tls_gateway
echo "reload_test: ok (served $first_fp, then $second_fp; a held connection kept; a bad reload refused)"
