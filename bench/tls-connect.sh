#!/usr/bin/env bash
# What TLS costs a gateway per connection: the local cluster (from a fresh start each time) takes
# N logins over plain TCP, then over TLS with full handshakes (no tickets). For each: the
# logins' latency, the gateways' user-space memory per idle connection (im-bench connect's
# --gateway-pids measure), and the gateways' CPU per connection (utime + stime from /proc over the
# whole run, divided by the logins). docs/benchmarks.md ("TLS") quotes what it prints.
#
# Usage: bench/tls-connect.sh [CONNECTIONS [RATE]]          (defaults: 10000 logins at 1000/s)
# Environment: IM_BUILD_DIR [<repo>/build/release], IM_BENCH_RESULTS [bench/results/tls-connect]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="$(cd "${IM_BUILD_DIR:-$ROOT/build/release}" && pwd)"
BENCH="$BUILD_DIR/bench/im-bench"
OUT="${IM_BENCH_RESULTS:-$ROOT/bench/results/tls-connect}"
CONNECTIONS="${1:-10000}"
RATE="${2:-1000}"
VAR_DIR="${IM_VAR_DIR:-$ROOT/var/local}"
export IM_VAR_DIR="$VAR_DIR" IM_BUILD_DIR="$BUILD_DIR"
CLUSTER="$ROOT/deploy/local/cluster"
mkdir -p "$OUT"
trap '"$CLUSTER" down >/dev/null 2>&1 || true' EXIT

cpu_ticks() {  # utime + stime of the given pids, in clock ticks
  local total=0 pid fields
  for pid in "$@"; do
    read -r -a fields <"/proc/$pid/stat"
    total=$((total + fields[13] + fields[14]))
  done
  echo "$total"
}

run() {  # run NAME [IM-BENCH ARGS...]
  local name="$1"; shift
  "$CLUSTER" down >/dev/null 2>&1 || true
  "$CLUSTER" up >/dev/null
  local gw1 gw2 before after
  gw1="$(cat "$VAR_DIR/cluster/gw-1.pid")"
  gw2="$(cat "$VAR_DIR/cluster/gw-2.pid")"
  before="$(cpu_ticks "$gw1" "$gw2")"
  "$BENCH" "$@" --connections "$CONNECTIONS" --setup-timeout 120 \
    --gateway-pids "$gw1,$gw2" --no-progress --json "$OUT/$name.json" >"$OUT/$name.txt" || true
  after="$(cpu_ticks "$gw1" "$gw2")"
  python3 - "$OUT/$name.json" "$name" "$((after - before))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
path, name, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = json.load(open(path))
c, m = r["counters"], r.get("memory", {})
login = r["latency_ms"].get("login_us", {})
logins = c.get("first_logins", 0)
cpu_us = ticks * 1e6 / hz
print(f"| {name} | {logins} | "
      f"{login.get('p50', 0):.1f} / {login.get('p99', 0):.1f} | "
      f"{m.get('user_bytes_per_connection', float('nan')):.0f} B | "
      f"{cpu_us / max(logins, 1):.0f} us |")
PY
}

echo "| transport | logins | login p50 / p99 ms | gateway user space / idle connection | gateway CPU / login |"
echo "|---|---:|---:|---:|---:|"
run plain connect --rate "$RATE" --duration 10
run tls-full connect --rate "$RATE" --duration 10 \
  --gateways 127.0.0.1:7443,127.0.0.1:7444 --tls-ca "$VAR_DIR/tls/ca.pem" --tls-no-resume
