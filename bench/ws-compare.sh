#!/usr/bin/env bash
# What WebSocket costs against the private protocol (issue 17), on the embedded node: one
# im-server (its gateway serves tcp on 7000 and ws on 7080), driven by im-bench over each
# transport in turn with the same parameters, back to back:
#   connect  CONNECTIONS logins at RATE/s, held 10 s, on a fresh im-server each time: the server's
#            user-space memory per idle connection (im-bench --gateway-pids: RSS growth divided
#            by the connections) and its CPU per login (--server-pids);
#   chat     2,000 devices in pairs, 15 s at each of CHAT_RATES msgs/s, one im-server for all the
#            chat runs of a round: delivery latency and the server's CPU per delivered message.
# Each round runs tcp then ws; ROUNDS > 1 repeats (the even rounds ws first, so that neither
# transport always comes second). Reports (JSON and the printed table) go to IM_BENCH_RESULTS;
# docs/benchmarks.md ("WebSocket transport") quotes the tables this prints.
#
# Usage: bench/ws-compare.sh [ROUNDS]                                       (default: 1)
# Environment: IM_BUILD_DIR [<repo>/build/release], IM_BENCH_RESULTS
#   [bench/results/issue17-websocket], CONNECTIONS [10000; 0: no connect runs], RATE [1000],
#   CHAT_RATES ["1000 2000 4000"]. Ports 7000, 7080 and 9100 must be free (deploy/local/cluster down).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="$(cd "${IM_BUILD_DIR:-$ROOT/build/release}" && pwd)"
BENCH="$BUILD_DIR/bench/im-bench"
SERVER="$BUILD_DIR/server/im-server"
OUT="${IM_BENCH_RESULTS:-$ROOT/bench/results/issue17-websocket}"
ROUNDS="${1:-1}"
CONNECTIONS="${CONNECTIONS:-10000}"
RATE="${RATE:-1000}"
CHAT_RATES="${CHAT_RATES:-1000 2000 4000}"
declare -A PORT_OF=([tcp]=7000 [ws]=7080)
mkdir -p "$OUT"

SERVER_PID=""
DATA_DIR=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  [ -z "$DATA_DIR" ] || rm -rf "$DATA_DIR"
  SERVER_PID="" DATA_DIR=""
}
trap stop_server EXIT

start_server() {  # a fresh im-server on an empty data directory; sets SERVER_PID
  stop_server
  DATA_DIR="$(mktemp -d /tmp/im-ws-compare-XXXXXX)"
  local ready="$DATA_DIR/ready"
  IM_GATEWAY_LISTEN=127.0.0.1:7000 IM_GATEWAY_WS_LISTEN=127.0.0.1:7080 \
    IM_GATEWAY_METRICS_LISTEN=127.0.0.1:9100 IM_GATEWAY_DRAIN_TIMEOUT_MS=2000 IM_LOG_LEVEL=warn \
    "$SERVER" --config "$ROOT/deploy/local/server.yaml" --data "$DATA_DIR" \
    >"$ready" 2>>"$OUT/im-server.log" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    grep -q '^im-server ready' "$ready" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "ws-compare: im-server did not start; see $OUT/im-server.log" >&2
  exit 1
}

row() {  # row JSON: one Markdown row of the report
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p, c = r["params"], r["counters"]
lat, cpu = r["latency_ms"], r.get("server_cpu", {})
us = cpu.get("us_per_delivered", cpu.get("us_per_login", float("nan")))
errors = sum(r["errors"].values()) if r["errors"] else 0
if r["scenario"] == "connect":
    m, login = r.get("memory", {}), lat.get("login_us", {})
    print(f"| {p['transport']} | {c['first_logins']} | {login.get('p50', 0):.1f} / "
          f"{login.get('p99', 0):.1f} | {m.get('gateway_rss_kb_before', 0) / 1024:.1f} MB | "
          f"{m.get('gateway_rss_kb_after', 0) / 1024:.1f} MB | "
          f"{m.get('user_bytes_per_connection', float('nan')):.0f} B | {us:.0f} µs | {errors} |")
else:
    d = lat.get("delivery_us", {})
    print(f"| {p['transport']} | {p['rate']:.0f} | {r['rates'].get('delivered_per_sec', 0):.0f} | "
          f"{d.get('p50', 0):.1f} / {d.get('p99', 0):.1f} | {errors} | "
          f"{c['missing']}/{c['duplicates']}/{c['reordered']} | {us:.0f} µs |")
PY
}

connect_run() {  # connect_run ROUND TRANSPORT
  local name="r$1-connect-$2"
  start_server
  "$BENCH" connect --transport "$2" --gateways "127.0.0.1:${PORT_OF[$2]}" \
    --connections "$CONNECTIONS" --procs 2 --rate "$RATE" --duration 10 --setup-timeout 120 \
    --gateway-pids "$SERVER_PID" --server-pids "server=$SERVER_PID" --no-progress \
    --json "$OUT/$name.json" >"$OUT/$name.txt" || true
  row "$OUT/$name.json" >>"$OUT/connect-table.md"
  echo "$name $(cat /proc/loadavg)" >>"$OUT/loadavg.txt"  # how quiet the machine was
}

chat_run() {  # chat_run ROUND TRANSPORT RATE
  local name="r$1-chat-$2-$3"
  "$BENCH" chat --transport "$2" --gateways "127.0.0.1:${PORT_OF[$2]}" --connections 2000 \
    --rate "$3" --duration 15 --server-pids "server=$SERVER_PID" --no-progress \
    --json "$OUT/$name.json" >"$OUT/$name.txt" || true
  row "$OUT/$name.json" >>"$OUT/chat-table.md"
  echo "$name $(cat /proc/loadavg)" >>"$OUT/loadavg.txt"
}

: >"$OUT/loadavg.txt"
echo "| transport | logins | login p50 / p99 ms | RSS before | after | user space / idle connection | server CPU / login | errors |" >"$OUT/connect-table.md"
echo "|---|---:|---:|---:|---:|---:|---:|---:|" >>"$OUT/connect-table.md"
echo "| transport | offered/s | delivered/s | delivery p50 / p99 ms | errors | missing/dup/reordered | server CPU / delivery |" >"$OUT/chat-table.md"
echo "|---|---:|---:|---:|---:|---:|---:|" >>"$OUT/chat-table.md"
for round in $(seq "$ROUNDS"); do
  order="tcp ws"
  [ $((round % 2)) -eq 1 ] || order="ws tcp"
  if [ "$CONNECTIONS" -gt 0 ]; then
    for transport in $order; do connect_run "$round" "$transport"; done
  fi
  start_server
  for rate in $CHAT_RATES; do
    for transport in $order; do chat_run "$round" "$transport" "$rate"; done
  done
done
stop_server
cat "$OUT/connect-table.md" "$OUT/chat-table.md"
