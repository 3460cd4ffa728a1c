#!/usr/bin/env bash
# One reconnect storm per (build, flags): cluster up from BUILD, im-bench from HEAD, cluster down.
set -euo pipefail
# Usage: presence-bench.sh BEFORE_TREE   (a checkout of the build to compare with, built in
# BEFORE_TREE/build/release; this tree's build/release is the "after")
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
BEFORE="${1:?usage: presence-bench.sh BEFORE_TREE}"
BENCH=$ROOT/build/release/bench/im-bench
OUT=$ROOT/bench/results/issue20
export IM_VAR_DIR=$ROOT/var/local
run() {  # NAME REPO [FLAGS...]: the cluster of REPO (its config and its build/release)
  local name="$1" repo="$2" rc=0; shift 2
  IM_BUILD_DIR="$repo/build/release" "$repo/deploy/local/cluster" up >/dev/null
  local v="$IM_VAR_DIR"
  local pids="logic=$(cat $v/cluster/logic.pid),redis=$(cat $v/redis/redis.pid),gw-1=$(cat $v/cluster/gw-1.pid),gw-2=$(cat $v/cluster/gw-2.pid)"
  "$BENCH" reconnect --gateways 127.0.0.1:7000 --connections 10000 --procs 2 \
    --sources 127.0.0.2,127.0.0.3 --fraction 1 --storm-at 3 --rate 200 --duration 15 --drain 30 \
    --setup-timeout 60 --server-pids "$pids" --no-progress --json "$OUT/$name.json" "$@" \
    > "$OUT/$name.txt" 2>&1 || rc=$?
  "$repo/deploy/local/cluster" down >/dev/null
  # 1: a correctness problem, reported in the table and the JSON (as bench/run-local.sh takes it);
  # more: the run could not be carried out.
  if [ "${rc:-0}" -gt 1 ]; then echo "$name: im-bench exited with $rc; see $OUT/$name.txt" >&2; exit 1; fi
}
run storm-before "$BEFORE"
run storm-after "$ROOT"
run storm-after-watching "$ROOT" --watch-presence
