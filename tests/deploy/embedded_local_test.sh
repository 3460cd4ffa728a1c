#!/usr/bin/env bash
# scripts/run.sh's path without its build: deploy/local/cluster up --embedded starts im-server
# from a build tree, demo makes two users talk through it (one over TLS), status reports it, a second up starts
# nothing twice, up (the cluster) is refused while it runs, and down drains it and leaves no
# process behind. With the web SDK installed (sdk/web/node_modules), the web demo's dev server
# runs beside it and serves the support-desk pages and tokens. Ports are the system's (0) and data
# lives in WORK_DIR.
# Usage: tests/deploy/embedded_local_test.sh BUILD_DIR WORK_DIR
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$1"
WORK="$2"
rm -rf "$WORK"
mkdir -p "$WORK"
export IM_BUILD_DIR="$BUILD" IM_VAR_DIR="$WORK/var"
export IM_GATEWAY_LISTEN=127.0.0.1:0 IM_GATEWAY_METRICS_LISTEN=127.0.0.1:0
export IM_GATEWAY_TLS_LISTEN=127.0.0.1:0 IM_GATEWAY_WS_LISTEN=127.0.0.1:0
export IM_GATEWAY_WSS_LISTEN=127.0.0.1:0 IM_DEV_WEB_LISTEN=127.0.0.1:0
export IM_SERVER_DATA_DIR="$WORK/data" IM_GATEWAY_DRAIN_TIMEOUT_MS=2000
CLUSTER="$ROOT/deploy/local/cluster"
fail() {
  echo "embedded_local_test: FAIL: $*" >&2
  tail -n 30 "$WORK/var/cluster/server.log" >&2 2>/dev/null || true
  exit 1
}
cleanup() { "$CLUSTER" down >/dev/null 2>&1 || true; }
trap cleanup EXIT

"$CLUSTER" up --embedded >"$WORK/up.log" 2>&1 || fail "up --embedded: $(cat "$WORK/up.log")"
grep -q "The embedded node is up" "$WORK/up.log" || fail "no summary: $(cat "$WORK/up.log")"
pid="$(cat "$WORK/var/cluster/server.pid")"
[ -f "$WORK/data/im.db" ] || fail "no database in $WORK/data"

"$CLUSTER" demo >"$WORK/demo.log" 2>&1 || fail "demo: $(cat "$WORK/demo.log")"
grep -q "^ok: alice and bob exchanged a message each way" "$WORK/demo.log" ||
  fail "demo did not finish: $(cat "$WORK/demo.log")"
# alice came over TLS, trusting the development CA the first up made.
grep -q "alice connected over TLSv1.3" "$WORK/demo.log" ||
  fail "alice did not come over TLS 1.3: $(cat "$WORK/demo.log")"
[ -s "$WORK/var/tls/ca.pem" ] || fail "no development CA in $WORK/var/tls"

web_pid=""
if [ -d "$ROOT/sdk/web/node_modules" ]; then
  url="$(grep -o 'http://127.0.0.1:[0-9]*/user.html' "$WORK/up.log" | head -1)"
  [ -n "$url" ] || fail "no web demo in the summary: $(cat "$WORK/up.log")"
  curl -sf "$url" | grep -q "<html" || fail "the web demo does not serve $url"
  token="$(curl -sf -X POST -H 'Content-Type: application/json' -d '{"uid":"alice"}' \
    "${url%user.html}dev/token")" || fail "no token from the web demo's dev server"
  echo "$token" | grep -q '"wsUrl":"ws://127.0.0.1:' || fail "the token names no WebSocket: $token"
  web_pid="$(cat "$WORK/var/cluster/web.pid")"
fi

"$CLUSTER" status >"$WORK/status.log" 2>&1 || fail "status: $(cat "$WORK/status.log")"
grep -qE "^server +running +pid $pid " "$WORK/status.log" ||
  fail "status does not show the server: $(cat "$WORK/status.log")"

"$CLUSTER" up --embedded >"$WORK/again.log" 2>&1 || fail "second up: $(cat "$WORK/again.log")"
grep -q "server already running (pid $pid)" "$WORK/again.log" ||
  fail "a second up did not find it running: $(cat "$WORK/again.log")"
if "$CLUSTER" up >"$WORK/cluster.log" 2>&1; then fail "the cluster started beside the node"; fi
grep -q "the embedded deployment runs (server, pid $pid)" "$WORK/cluster.log" ||
  fail "up (cluster) did not say why it refused: $(cat "$WORK/cluster.log")"

"$CLUSTER" down >"$WORK/down.log" 2>&1 || fail "down: $(cat "$WORK/down.log")"
# Exited (a zombie until its new parent reaps it counts as exited).
state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
if [ -n "$state" ] && [ "$state" != Z ]; then fail "im-server (pid $pid) still runs after down"; fi
if [ -n "$web_pid" ]; then
  state="$(awk '{print $3}' "/proc/$web_pid/stat" 2>/dev/null || true)"
  if [ -n "$state" ] && [ "$state" != Z ]; then fail "the web demo (pid $web_pid) runs after down"; fi
fi
grep -q "logic logic-1: stopped" "$WORK/var/cluster/server.log" ||
  fail "im-server did not stop cleanly"
echo "embedded_local_test: ok"
