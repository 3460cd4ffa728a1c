#!/usr/bin/env bash
# The standard im-bench suite against the local cluster (deploy/local/cluster), all on this
# machine, writing one JSON report per run and the charts and tables under bench/results/.
# docs/benchmarks.md ("im-bench") quotes what it writes. Takes about 10 minutes (619 s on the
# quiet 2-core machine).
#
# Usage: bench/run-local.sh [PART...]     PART: tool connect chat group reconnect (default: all)
#   tool       im-bench against its own echo peer: what the tool itself costs per message
#   connect    100,000 idle connections over six gateways (four started here besides the
#              cluster's two), from six im-bench processes on six source addresses; memory per
#              connection (gateway RSS, kernel slab and TCP buffers)
#   chat       single chat at offered rates from 500 to 10,000 messages/s
#   group      groups of 100, 1,000 and 10,000 members (all online)
#   logins     60,000 logins offered at 10,000/s over six gateways (issue 15's login target)
#   memory     (not in the default run) 100,000 logins at 10,000/s over six gateways, held, closed:
#              every server process's RSS before, at its peak and after
#   connect-200k  (not in the default run) 200,000 idle connections over eleven gateways
#   reconnect  a storm (every connection of one gateway dropped at once) and a steady trickle
# Environment (defaults in brackets):
#   IM_BUILD_DIR          Release binaries: im-logic, im-gateway, im-bench  [<repo>/build/release]
#   IM_BENCH              the im-bench binary                      [$IM_BUILD_DIR/bench/im-bench]
#   IM_BENCH_RESULTS      where reports, charts and tables go                 [<repo>/bench/results]
#   IM_BENCH_CONNECTIONS  connections of the connect part                             [100000]
#   IM_BENCH_QUIET_FILE   a file that exists while the suite measures (others on a shared machine
#                         wait while it exists); removed at exit, also on failure      [none]
#   IM_BENCH_KEEP_CLUSTER=1  do not restart the cluster first (memory figures then include what
#                         earlier runs left in the gateways' heaps)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${IM_BUILD_DIR:-$ROOT/build/release}"
BENCH="${IM_BENCH:-$BUILD_DIR/bench/im-bench}"
GATEWAY_BIN="$BUILD_DIR/gateway/im-gateway"
OUT="${IM_BENCH_RESULTS:-$ROOT/bench/results}"
CONNECTIONS="${IM_BENCH_CONNECTIONS:-100000}"
QUIET_FILE="${IM_BENCH_QUIET_FILE:-}"
CLUSTER="$ROOT/deploy/local/cluster"
VAR_DIR="${IM_VAR_DIR:-$ROOT/var/local}"
RUN_DIR="$VAR_DIR/bench"
# deploy/local/gateway.yaml and logic.yaml
SECRET="dev-secret-change-me"
GATEWAYS="127.0.0.1:7000,127.0.0.1:7001"

say() { printf 'run-local: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

for bin in "$BENCH" "$GATEWAY_BIN" "$BUILD_DIR/logic/im-logic"; do
  [ -x "$bin" ] || die "$bin is missing; build it: cmake -S . -B build/release -G Ninja \
-DCMAKE_BUILD_TYPE=Release && ninja -C build/release im-logic im-gateway im-bench"
done
PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] || PARTS=(tool connect logins chat group reconnect)
for part in "${PARTS[@]}"; do
  case "$part" in tool | connect | logins | memory | connect-200k | chat | group | reconnect) ;; *) die "unknown part '$part'" ;; esac
done
mkdir -p "$OUT" "$RUN_DIR"

# Processes this script started: extra gateways, the echo peer. `setpriv --pdeathsig KILL` makes
# each die with this script even when a SIGKILL leaves no trap to stop it; each is started straight
# from this shell, as a subshell in between would outlive the script and keep them running.
EXTRA_PIDS=()
stop_extra() {
  local pid
  for pid in "${EXTRA_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${EXTRA_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  EXTRA_PIDS=()
}
cleanup() {
  stop_extra
  if [ -n "$QUIET_FILE" ]; then rm -f "$QUIET_FILE"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench() {  # bench NAME ARGS...: one run, its report in $OUT/NAME.json, its table in the log
  local name="$1"
  shift
  say "$name: im-bench $*"
  local rc=0
  "$BENCH" "$@" --no-progress --json "$OUT/$name.json" | tee "$RUN_DIR/$name.txt" || rc=$?
  # 1: a correctness problem, reported in the table and the JSON; the suite goes on.
  [ "$rc" -le 1 ] || die "$name: im-bench exited with $rc"
}

# start_gateway N: gateway gw-N on client port 6999+N, gRPC 7199+N, metrics 9099+N; its pid in
# LAST_PID.
start_gateway() {
  local n="$1" log="$RUN_DIR/gw-$1.log" pid deadline
  IM_GATEWAY_ID="gw-$n" IM_GATEWAY_LISTEN="0.0.0.0:$((6999 + n))" \
    IM_GATEWAY_GRPC_LISTEN="127.0.0.1:$((7199 + n))" \
    IM_GATEWAY_METRICS_LISTEN="0.0.0.0:$((9099 + n))" \
    setpriv --pdeathsig KILL "$GATEWAY_BIN" --config "$ROOT/deploy/local/gateway.yaml" \
    </dev/null >"$log" 2>&1 &
  pid=$!
  EXTRA_PIDS+=("$pid")
  deadline=$((SECONDS + 30))
  until grep -q '^im-gateway ready ' "$log"; do
    kill -0 "$pid" 2>/dev/null || die "gw-$n exited; see $log"
    [ $SECONDS -lt $deadline ] || die "gw-$n not ready after 30 s; see $log"
    sleep 0.2
  done
  LAST_PID="$pid"
}

# start_gateways N: gw-3..gw-N besides the cluster's two. Sets GW_ADDRESSES (all N client
# addresses), GW_PIDS (their pids), GW_SERVERS (logic, Redis and the N gateways as --server-pids)
# and GW_SOURCES (5 N source addresses the connections are spread over: the kernel's search for a
# free ephemeral port grows slow once a source address holds ~14,000 connections, and logins at
# 10,000/s then stalled in im-bench's connect() at 100% system time).
start_gateways() {
  local count="$1" n pid
  GW_PIDS="$(cat "$VAR_DIR/cluster/gw-1.pid"),$(cat "$VAR_DIR/cluster/gw-2.pid")"
  GW_SERVERS="logic=$(cat "$VAR_DIR/cluster/logic.pid"),redis=$(cat "$VAR_DIR/redis/redis.pid")"
  for n in 1 2; do
    GW_SERVERS="$GW_SERVERS,gw-$n=$(cat "$VAR_DIR/cluster/gw-$n.pid")"
  done
  GW_ADDRESSES="$GATEWAYS"
  GW_SOURCES=127.0.0.2
  for n in $(seq 3 "$count"); do
    start_gateway "$n"
    GW_PIDS="$GW_PIDS,$LAST_PID"
    GW_SERVERS="$GW_SERVERS,gw-$n=$LAST_PID"
    GW_ADDRESSES="$GW_ADDRESSES,127.0.0.1:$((6999 + n))"
  done
  for n in $(seq 2 $((5 * count))); do GW_SOURCES="$GW_SOURCES,127.0.0.$((n + 1))"; done
}

# sample_rss FILE: appends "seconds name rss_kib" for logic, Redis and every gateway twice a
# second until killed (the memory part's before / peak / after).
sample_rss() {
  local file="$1" item name pid
  while :; do
    for item in ${GW_SERVERS//,/ }; do
      name="${item%%=*}"
      pid="${item#*=}"
      echo "$SECONDS $name $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)"
    done >>"$file"
    sleep 0.5
  done
}

if [ "${IM_BENCH_KEEP_CLUSTER:-0}" != 1 ]; then
  "$CLUSTER" down >/dev/null 2>&1 || true
fi
"$CLUSTER" up >/dev/null
[ -z "$QUIET_FILE" ] || touch "$QUIET_FILE"
say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), \
$(free -g | awk '/Mem:/ {print $2}') GiB; $(uname -sr)"

for part in "${PARTS[@]}"; do
  case "$part" in
    tool)
      # The echo peer answers every SendReq and pushes it to the peer: per message im-bench
      # encodes a SendReq, decodes a SendResp and a MessagePush and checks them, as against the
      # cluster. Its own CPU is not in tool_cost (a separate process).
      log="$RUN_DIR/echo-peer.log"
      setpriv --pdeathsig KILL "$BENCH" echo-peer --listen 127.0.0.1:0 --secret "$SECRET" \
        >"$log" 2>&1 &
      echo_pid=$!
      EXTRA_PIDS+=("$echo_pid")
      for _ in $(seq 50); do grep -q 'ready port=' "$log" && break; sleep 0.1; done
      port="$(sed -n 's/.*ready port=\([0-9]*\).*/\1/p' "$log")"
      [ -n "$port" ] || die "echo peer did not start; see $log"
      for rate in 20000 40000 80000; do
        bench "tool-echo-$rate" chat --gateways "127.0.0.1:$port" --secret "$SECRET" \
          --connections 2000 --rate "$rate" --duration 10
      done
      stop_extra
      ;;
    connect | logins)
      start_gateways 6
      if [ "$part" = connect ]; then
        bench connect-$CONNECTIONS connect --gateways "$GW_ADDRESSES" --gateway-pids "$GW_PIDS" \
          --connections "$CONNECTIONS" --procs 6 --sources "$GW_SOURCES" \
          --rate 1000 --duration 10 --setup-timeout 200
      else
        bench logins-60000-at-10000 connect --gateways "$GW_ADDRESSES" \
          --gateway-pids "$GW_PIDS" --server-pids "$GW_SERVERS" --connections 60000 \
          --procs 6 --sources "$GW_SOURCES" --rate 10000 --duration 5 --setup-timeout 60
      fi
      stop_extra
      ;;
    memory)
      # 100,000 logins at 10,000/s over six gateways, held 10 s, then all closed: every server
      # process's RSS before, at its peak, and 10 s and 30 s after the connections are gone (the
      # allocator returns idle pages after 10 s: jemalloc's dirty_decay_ms).
      start_gateways 6
      samples="$OUT/memory-100000-rss.txt"
      : >"$samples"
      sample_rss "$samples" &
      sampler=$!
      sleep 2
      bench memory-100000 connect --gateways "$GW_ADDRESSES" --gateway-pids "$GW_PIDS" \
        --server-pids "$GW_SERVERS" --connections 100000 --procs 6 --sources "$GW_SOURCES" \
        --rate 10000 --duration 10 --setup-timeout 120
      sleep 10
      echo "$SECONDS mark 0" >>"$samples"
      sleep 20
      kill "$sampler"
      wait "$sampler" 2>/dev/null || true
      awk '$2 == "mark" { marked = 1; next }
           { if (!($2 in first)) first[$2] = $3; if ($3 > peak[$2]) peak[$2] = $3; last[$2] = $3
             if (!marked) at10[$2] = $3 }
           END { printf "| process | before KiB | peak KiB | 10 s after KiB | 30 s after KiB |\n";
                 printf "|---|---:|---:|---:|---:|\n";
                 for (n in first) printf "| %s | %d | %d | %d | %d |\n", n, first[n], peak[n],
                   at10[n], last[n] }' \
        "$samples" | tee "$OUT/memory-100000.md"
      stop_extra
      ;;
    connect-200k)
      # 200,000 idle connections over eleven gateways (at most 20,000 open files per process
      # here), logged in at 10,000/s from eleven im-bench processes.
      start_gateways 11
      bench connect-200000 connect --gateways "$GW_ADDRESSES" --gateway-pids "$GW_PIDS" \
        --server-pids "$GW_SERVERS" --connections 200000 --procs 11 --sources "$GW_SOURCES" \
        --rate 10000 --duration 10 --setup-timeout 200
      stop_extra
      ;;
    chat)
      for rate in 500 1000 1500 2000 3000 5000 10000; do
        bench "chat-$rate" chat --gateways "$GATEWAYS" --connections 2000 --rate "$rate" \
          --duration 15 --drain 10
      done
      python3 "$ROOT/bench/chart.py" --metric delivery --out "$OUT/chat-delivery.svg" \
        --markdown "$OUT/chat.md" \
        --title "Single chat, local cluster on 2 cores: delivery latency and throughput" \
        "$OUT"/chat-*.json
      ;;
    group)
      bench group-100-500 group --gateways "$GATEWAYS" --connections 1000 --group-size 100 \
        --senders 4 --rate 500 --duration 15
      bench group-100-1500 group --gateways "$GATEWAYS" --connections 1000 --group-size 100 \
        --senders 4 --rate 1500 --duration 15
      bench group-1000-100 group --gateways "$GATEWAYS" --connections 1000 --group-size 1000 \
        --senders 4 --rate 100 --duration 15
      bench group-1000-200 group --gateways "$GATEWAYS" --connections 1000 --group-size 1000 \
        --senders 4 --rate 200 --duration 15
      bench group-10000-10 group --gateways "$GATEWAYS" --connections 10000 --group-size 10000 \
        --senders 4 --rate 10 --duration 15 --drain 20
      bench group-10000-20 group --gateways "$GATEWAYS" --connections 10000 --group-size 10000 \
        --senders 4 --rate 20 --duration 15 --drain 20
      python3 "$ROOT/bench/chart.py" --metric last_member --markdown "$OUT/group.md" \
        "$OUT"/group-*.json
      ;;
    reconnect)
      # Every connection of gw-1 dropped at once, 3 s into 15 s of chat traffic among them;
      # 19,000 is about all one gateway holds here (20,000 open files per process), from two
      # im-bench processes.
      for n in 2000 10000 19000; do
        bench reconnect-storm-$n reconnect --gateways 127.0.0.1:7000 --connections $n \
          --procs 2 --sources 127.0.0.2,127.0.0.3 --fraction 1 --storm-at 3 --rate 200 \
          --duration 15 --drain 30 --setup-timeout 60
      done
      bench reconnect-trickle reconnect --gateways "$GATEWAYS" --connections 2000 \
        --fraction 0.5 --reconnect-rate 50 --rate 500 --duration 15
      ;;
  esac
done
say "reports in $OUT"
