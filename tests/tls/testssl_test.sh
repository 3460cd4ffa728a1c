#!/usr/bin/env bash
# The outside referee of the gateway's TLS port: testssl.sh (Debian's package) scans a real
# im-gateway serving a certificate of deploy/local/dev-tls.sh's development CA, and
# check_testssl.py holds its findings to the policy (protocols, suites, forward secrecy, session
# tickets, known vulnerabilities). The findings stay in WORK_DIR/testssl.json.
# Usage: tests/tls/testssl_test.sh IM_GATEWAY_BINARY WORK_DIR
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
GATEWAY="$1"
WORK="$2"
rm -rf "$WORK"
mkdir -p "$WORK"
fail() {
  echo "testssl_test: FAIL: $*" >&2
  tail -n 20 "$WORK/gateway.log" >&2 2>/dev/null || true
  exit 1
}
command -v testssl >/dev/null || fail "testssl.sh is not installed (apt-get install testssl.sh)"

"$ROOT/deploy/local/dev-tls.sh" "$WORK/tls"
# shellcheck source=tests/tls/tls_gateway.sh
. "$ROOT/tests/tls/tls_gateway.sh"
trap kill_tls_gateway EXIT INT TERM
start_tls_gateway "$WORK/tls/server.pem" "$WORK/tls/server.key"

# Protocols, standard cipher categories, forward secrecy, server defaults (tickets, resumption)
# and the vulnerability checks.
scan() {
  rm -f "$WORK/testssl.json"
  testssl --quiet --color 0 --warnings off --add-ca "$WORK/tls/ca.pem" -p -s -f -S -U \
    --jsonfile "$WORK/testssl.json" "127.0.0.1:$port" >"$WORK/testssl.txt" 2>&1 ||
    true  # its exit status counts findings; the checker judges them
  [ -s "$WORK/testssl.json" ] ||
    fail "testssl.sh wrote no findings: $(tail -n 20 "$WORK/testssl.txt")"
  python3 "$ROOT/tests/tls/check_testssl.py" "$WORK/testssl.json" >"$WORK/check.txt" 2>&1
}
# testssl.sh's ticket probe races: its first `openssl s_client </dev/null` quits at stdin's EOF,
# and keeps the TLS 1.3 ticket only if the ticket (sent after the client's Finished) came first;
# else its second connection has no session to offer, reported as "connect problem" (about one
# probe in two against this ASan build, also with the old close handling). Only that finding gets
# another scan, three in all: tickets that never come fail every scan (tls_tests checks
# resumption itself, deterministically).
for attempt in 1 2 3; do
  if scan; then break; fi
  cat "$WORK/check.txt" >&2
  other_findings="$(grep '^check_testssl: ' "$WORK/check.txt" | grep -v '^check_testssl: ok ' |
    grep -v "sessionresumption_ticket: 'check failed because of connect problem'" || true)"
  if [ "$attempt" = 3 ] || [ -n "$other_findings" ]; then
    fail "the TLS port breaks the policy (testssl.sh's report: $WORK/testssl.txt)"
  fi
  echo "testssl_test: only the ticket probe's race failed (scan $attempt); scanning again" >&2
done
cat "$WORK/check.txt"

stop_tls_gateway
echo "testssl_test: ok"
