#!/usr/bin/env bash
# Before and after, back to back on one machine: runs the same im-bench chat runs against the
# local cluster started from each Release build in turn, with the CPU of every server process
# (logic, both gateways, Redis, MariaDB, Kafka) measured per delivered message (--server-pids),
# and prints one table. The im-bench of the last build drives every run, so both builds are
# measured by the same tool. A build named embedded:BUILD_DIR runs the embedded node of that build
# instead (deploy/local/cluster up --embedded: one im-server, its CPU the server's); tls:BUILD_DIR
# runs its cluster with im-bench's devices on the gateways' TLS ports (7443, 7444), trusting the
# local cluster's development CA.
#
# Usage: bench/compare-builds.sh BUILD_DIR... [-- RATE...]       (rates default: 1000 2000 3000)
#   e.g. bench/compare-builds.sh /work/before/build/release build/release -- 1000 2000 4000
#        bench/compare-builds.sh build/release embedded:build/release -- 2000 4000
#        bench/compare-builds.sh build/release tls:build/release -- 1000 2000
# Environment: IM_BENCH_RESULTS (where the JSON reports go) [<repo>/bench/results/compare],
#   IM_BENCH_KIND [chat] (or group: groups of IM_BENCH_GROUP_SIZE [1000] members, all online,
#   4 senders; a rate is then group messages/s), IM_BENCH_CONNECTIONS [2000; 1000 for group],
#   IM_BENCH_DURATION [15] seconds per run, IM_BENCH (the im-bench binary that drives every run)
#   [the last build's].
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${IM_BENCH_RESULTS:-$ROOT/bench/results/compare}"
KIND="${IM_BENCH_KIND:-chat}"
case "$KIND" in
  chat) CONNECTIONS="${IM_BENCH_CONNECTIONS:-2000}"; KIND_ARGS=() ;;
  group)
    CONNECTIONS="${IM_BENCH_CONNECTIONS:-1000}"
    KIND_ARGS=(--group-size "${IM_BENCH_GROUP_SIZE:-1000}" --senders 4) ;;
  *) echo "compare-builds: IM_BENCH_KIND must be chat or group" >&2; exit 2 ;;
esac
DURATION="${IM_BENCH_DURATION:-15}"
VAR_DIR="${IM_VAR_DIR:-$ROOT/var/local}"

say() { printf 'compare-builds: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

BUILDS=()
MODES=()  # cluster or embedded, per build
RATES=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  case "$1" in
    embedded:*) MODES+=(embedded); BUILDS+=("$(cd "${1#embedded:}" && pwd)") ;;
    tls:*) MODES+=(tls); BUILDS+=("$(cd "${1#tls:}" && pwd)") ;;
    *) MODES+=(cluster); BUILDS+=("$(cd "$1" && pwd)") ;;
  esac
  shift
done
if [ $# -gt 0 ]; then shift; RATES=("$@"); fi
[ ${#RATES[@]} -gt 0 ] || RATES=(1000 2000 3000)
[ ${#BUILDS[@]} -gt 0 ] || die "usage: $0 BUILD_DIR... [-- RATE...]"
BENCH="${IM_BENCH:-${BUILDS[-1]}/bench/im-bench}"
for index in "${!BUILDS[@]}"; do
  bins=(logic/im-logic gateway/im-gateway)
  [ "${MODES[$index]}" != embedded ] || bins=(server/im-server)
  for bin in "${bins[@]}"; do
    [ -x "${BUILDS[$index]}/$bin" ] ||
      die "${BUILDS[$index]}/$bin is missing (ninja -C ${BUILDS[$index]} $(basename "$bin"))"
  done
done
[ -x "$BENCH" ] || die "$BENCH is missing"
mkdir -p "$OUT"

# Each build runs under the cluster script and configuration of its own source tree (an older
# build refuses settings it does not know), with the same data directory.
export IM_VAR_DIR="$VAR_DIR"
cluster_of() {
  local source
  source="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$1/CMakeCache.txt")"
  echo "${source:-$ROOT}/deploy/local/cluster"
}

pid_file() { cat "$1" 2>/dev/null || true; }
server_pids() {  # server_pids MODE
  local list=() name pid
  if [ "$1" = embedded ]; then
    echo "server=$(pid_file "$VAR_DIR/cluster/server.pid")"
    return
  fi  # cluster or tls
  for name in logic gw-1 gw-2; do
    pid="$(pid_file "$VAR_DIR/cluster/$name.pid")"
    [ -n "$pid" ] && list+=("$name=$pid")
  done
  pid="$(pid_file "$VAR_DIR/redis/redis.pid")" && [ -n "$pid" ] && list+=("redis=$pid")
  pid="$(pid_file "$VAR_DIR/mariadb/mysqld.pid")" && [ -n "$pid" ] && list+=("mariadb=$pid")
  pid="$(pid_file "$VAR_DIR/kafka/kafka.pid")" && [ -n "$pid" ] && list+=("kafka=$pid")
  local IFS=,
  echo "${list[*]}"
}

trap '"$ROOT/deploy/local/cluster" down >/dev/null 2>&1 || true' EXIT
for index in "${!BUILDS[@]}"; do
  build="${BUILDS[$index]}"
  say "build $index: $build (${MODES[$index]})"
  cluster="$(cluster_of "$build")"
  "$ROOT/deploy/local/cluster" down >/dev/null 2>&1 || true
  up_args=()
  [ "${MODES[$index]}" != embedded ] || up_args=(--embedded)
  IM_BUILD_DIR="$build" "$cluster" up "${up_args[@]+"${up_args[@]}"}" >/dev/null
  pids="$(server_pids "${MODES[$index]}")"
  say "server processes: $pids"
  transport_args=()
  if [ "${MODES[$index]}" = tls ]; then
    transport_args=(--gateways 127.0.0.1:7443,127.0.0.1:7444 --tls-ca "$VAR_DIR/tls/ca.pem")
  fi
  for rate in "${RATES[@]}"; do
    json="$OUT/build$index-$KIND-$rate.json"
    # Exit status 1 is a run that found problems (losses under overload): it goes in the table.
    "$BENCH" "$KIND" --connections "$CONNECTIONS" "${KIND_ARGS[@]}" \
      "${transport_args[@]+"${transport_args[@]}"}" --rate "$rate" \
      --duration "$DURATION" --drain 10 --server-pids "$pids" --no-progress --json "$json" \
      >"$OUT/build$index-$KIND-$rate.txt" || true
    say "$(grep -E 'delivered \(msgs/s\)|server cpu' "$OUT/build$index-$KIND-$rate.txt" | tr -s ' ' |
      tr '\n' ';')"
  done
  IM_BUILD_DIR="$build" "$cluster" down >/dev/null
done

python3 - "$OUT" "$KIND" "${#BUILDS[@]}" "${RATES[@]}" <<'EOF'
import json, sys
out, kind, builds, rates = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
# For groups, a delivery is one message reaching one member, and its latency the last member's.
latency = "last_member_us" if kind == "group" else "delivery_us"
digits = 2 if kind == "group" else 0  # a group delivery costs about a microsecond
print(f"| build | offered/s | delivered/s | {latency[:-3]} p50 / p99 ms | errors | refused (p99 ms) "
      "| missing/dup/reordered (overtaken) | server us/delivery | per process us/delivery |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
for b in range(builds):
    for rate in rates:
        try:
            r = json.load(open(f"{out}/build{b}-{kind}-{rate}.json"))
        except (OSError, ValueError):
            print(f"| {b} | {rate} | (no report) | | | | | | |")
            continue
        c, d = r["counters"], r["latency_ms"].get(latency, {})
        refused = r["latency_ms"].get("refused_us", {})
        cpu = r.get("server_cpu", {})
        procs = ", ".join(f'{p["name"]} {p.get("us_per_delivered", 0):.{digits}f}'
                          for p in cpu.get("processes", []))
        print(f'| {b} | {rate} | {r["rates"]["delivered_per_sec"]:.0f} | '
              f'{d.get("p50", 0):.1f} / {d.get("p99", 0):.1f} | {c.get("send_errors", 0)} | '
              f'{c.get("refused_and_resent", 0)} ({refused.get("p99", 0):.1f}) | '
              f'{c.get("missing", 0)}/{c.get("duplicates", 0)}/{c.get("reordered", 0)} '
              f'({c.get("overtaken", 0)}) | '
              f'{cpu.get("us_per_delivered", 0):.{digits}f} | {procs} |')
EOF
