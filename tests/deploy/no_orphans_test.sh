#!/usr/bin/env bash
# A test SIGKILLed (a timeout, CI cancelling a job) leaves no server behind (issue 21, item 6):
#  (a) a C++ end-to-end test: its im-logic and im-gateway die with it (PR_SET_PDEATHSIG in
#      tests/support/subprocess.cc);
#  (b) the Python deployment checks (probe_test.py): the same (deploy_harness.Process);
#  (c) a script that started a daemonized redis-server through deploy/local/services.sh, as
#      scripts/test.sh does, and scripts/stop-when-gone.sh to stop it: the redis-server is stopped.
# (a) and (b) use IM_TEST_REDIS, IM_TEST_MYSQL and IM_TEST_KAFKA; (c) a Redis of its own.
# Usage: tests/deploy/no_orphans_test.sh WORK_DIR E2E_TEST_BINARY --gateway BIN --logic BIN
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="$1"
E2E="$(realpath "$2")"  # run from WORK
shift 2
PROBE_ARGS=("$@")
GONE_WITHIN_SEC=5
rm -rf "$WORK"
mkdir -p "$WORK/tmp" "$WORK/var"
fail() { echo "no_orphans_test: FAIL: $*" >&2; exit 1; }
say() { echo "no_orphans_test: $*"; }

# Whatever a failed check leaves running is stopped here.
started=()
cleanup() {
  local pid
  for pid in ${started[@]+"${started[@]}"}; do kill -KILL "$pid" 2>/dev/null || true; done
  if [ -f "$WORK/var/redis/redis.pid" ]; then
    IM_VAR_DIR="$WORK/var" "$ROOT/deploy/local/services.sh" stop redis 2>/dev/null || true
  fi
}
trap cleanup EXIT

# A zombie counts as gone: it has exited, and whoever reaps it may be slow (or never do it).
alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}

descendants() {  # every descendant of $1
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2 }
    END {
      for (p in parent)
        for (q = parent[p]; q > 1; q = parent[q]) if (q == root) { print p; break }
    }'
}

# kill_and_check WHAT PID LOG NAME...: waits (90 s) until PID has a descendant of each NAME,
# SIGKILLs PID, and fails unless all its descendants at that moment are gone within
# GONE_WITHIN_SEC.
kill_and_check() {
  local what="$1" pid="$2" log="$3" name p found procs=() left deadline=$((SECONDS + 90))
  shift 3
  while :; do
    alive "$pid" || fail "$what exited before it had started $*; the end of $log:" \
      "$(tail -n 20 "$log")"
    mapfile -t procs < <(descendants "$pid")
    found=0
    for name in "$@"; do
      for p in ${procs[@]+"${procs[@]}"}; do
        if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$name" ]; then found=$((found + 1)); break; fi
      done
    done
    [ "$found" -lt $# ] || break
    [ $SECONDS -lt $deadline ] || fail "$what did not start $* within 90 s"
    sleep 0.2
  done
  started+=("${procs[@]}")
  say "$what: SIGKILL to $pid, which runs ${#procs[@]} processes:" \
    "$(for p in "${procs[@]}"; do printf '%s(%s) ' "$(cat "/proc/$p/comm" 2>/dev/null)" "$p"; done)"
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  deadline=$((SECONDS + GONE_WITHIN_SEC))
  while :; do
    left=()
    for p in "${procs[@]}"; do
      if alive "$p"; then left+=("$p($(cat "/proc/$p/comm" 2>/dev/null))"); fi
    done
    [ ${#left[@]} -gt 0 ] || break
    [ $SECONDS -lt $deadline ] ||
      fail "$what: still running ${GONE_WITHIN_SEC} s after it was SIGKILLed: ${left[*]}"
    sleep 0.2
  done
  started=()
  say "$what: ok, every one gone"
}

# (a) A long test (a rolling update, 40 s), SIGKILLed once its cluster has started.
(cd "$WORK" && exec env IM_TEST_LOG_DIR="$WORK/e2e-logs" "$E2E" \
  --gtest_filter='RollingUpdateTest.*' >"$WORK/e2e.log" 2>&1) &
started+=("$!")
kill_and_check "C++ end-to-end test" $! "$WORK/e2e.log" im-logic im-gateway

# (b) Its temporary files (the servers' logs and configs) go to WORK.
TMPDIR="$WORK/tmp" "$ROOT/tests/deploy/run-python.sh" "$ROOT/tests/deploy/probe_test.py" \
  "${PROBE_ARGS[@]}" >"$WORK/probe.log" 2>&1 &
started+=("$!")
kill_and_check "probe_test.py" $! "$WORK/probe.log" im-logic

# (c) What scripts/test.sh does around its services, with a Redis on a free port of its own.
redis_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')"
(
  export IM_VAR_DIR="$WORK/var" IM_LOCAL_REDIS_PORT="$redis_port"
  "$ROOT/deploy/local/services.sh" start redis
  self="$BASHPID"  # read here: in the `&` command below it would be the watcher's own
  setsid "$ROOT/scripts/stop-when-gone.sh" "$self" -- "$ROOT/deploy/local/services.sh" stop \
    redis </dev/null >>"$WORK/stop-when-gone.log" 2>&1 &
  echo $! >"$WORK/watcher.pid"
  exec sleep 600
) >"$WORK/services.log" 2>&1 &
parent=$!
started+=("$parent")
deadline=$((SECONDS + 30))
until [ -s "$WORK/watcher.pid" ] && [ -s "$WORK/var/redis/redis.pid" ]; do
  alive "$parent" || fail "starting redis failed: $(cat "$WORK/services.log")"
  [ $SECONDS -lt $deadline ] || fail "redis did not start within 30 s: $(cat "$WORK/services.log")"
  sleep 0.2
done
redis="$(cat "$WORK/var/redis/redis.pid")"
watcher="$(cat "$WORK/watcher.pid")"
started+=("$watcher")
say "services: SIGKILL to $parent, which started redis-server($redis) and a watcher($watcher)"
kill -KILL "$parent"
wait "$parent" 2>/dev/null || true
deadline=$((SECONDS + GONE_WITHIN_SEC))
while alive "$redis"; do
  [ $SECONDS -lt $deadline ] || fail "redis-server($redis) still runs ${GONE_WITHIN_SEC} s" \
    "after the script that started it was SIGKILLed; the watcher's log:" \
    "$(cat "$WORK/stop-when-gone.log")"
  sleep 0.2
done
started=()
say "services: ok, redis-server stopped"
echo "no_orphans_test: ok"
