#!/usr/bin/env bash
# One reconnect storm per (build, flags): cluster up from BUILD, im-bench from HEAD, cluster down.
set -euo pipefail
ROOT=/work/main
BENCH=$ROOT/build/release/bench/im-bench
OUT=$ROOT/bench/results/issue20
export IM_VAR_DIR=$ROOT/var/local
run() {  # NAME REPO [FLAGS...]: the cluster of REPO (its config and its build/release)
  local name="$1" repo="$2"; shift 2
  IM_BUILD_DIR="$repo/build/release" "$repo/deploy/local/cluster" up >/dev/null
  local v="$IM_VAR_DIR"
  local pids="logic=$(cat $v/cluster/logic.pid),redis=$(cat $v/redis/redis.pid),gw-1=$(cat $v/cluster/gw-1.pid),gw-2=$(cat $v/cluster/gw-2.pid)"
  "$BENCH" reconnect --gateways 127.0.0.1:7000 --connections 10000 --procs 2 \
    --sources 127.0.0.2,127.0.0.3 --fraction 1 --storm-at 3 --rate 200 --duration 15 --drain 30 \
    --setup-timeout 60 --server-pids "$pids" --no-progress --json "$OUT/$name.json" "$@" \
    > "$OUT/$name.txt" 2>&1 || true
  "$repo/deploy/local/cluster" down >/dev/null
}
run storm-before /work/before
run storm-after /work/main
run storm-after-watching /work/main --watch-presence
