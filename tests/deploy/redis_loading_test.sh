#!/usr/bin/env bash
# deploy/local/services.sh says Redis is up only once it serves: a Redis restarted on a large data
# set answers every command "-LOADING ..." while it reads its append-only file, and redis-cli exits
# 0 on that reply too, so "ping answered" is not "up". The test fills a private Redis with enough
# keys to take a while to load, restarts it, and expects PONG the moment start returns.
# Usage: tests/deploy/redis_loading_test.sh WORK_DIR
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="$1"
rm -rf "$WORK"
mkdir -p "$WORK/var"
export IM_VAR_DIR="$WORK/var" IM_LOCAL_REDIS_PORT="${IM_TEST_LOADING_REDIS_PORT:-26479}"
fail() { echo "redis_loading_test: FAIL: $*" >&2; exit 1; }
# services.sh's Redis wants its user's login.
rcli() {
  REDISCLI_AUTH="${IM_LOCAL_REDIS_PASSWORD:-im-dev-redis}" redis-cli -p "$IM_LOCAL_REDIS_PORT" \
    --user "${IM_LOCAL_REDIS_USER:-im}" "$@"
}
services() { "$ROOT/deploy/local/services.sh" "$@" redis >>"$WORK/services.log" 2>&1; }
# Stopped at exit; should this test be SIGKILLed (a ctest timeout), the watcher stops it.
setsid "$ROOT/scripts/stop-when-gone.sh" $$ -- "$ROOT/deploy/local/services.sh" stop redis \
  </dev/null >>"$WORK/stop-when-gone.log" 2>&1 &
watcher=$!
trap 'services stop || true; kill "$watcher" 2>/dev/null || true' EXIT

services start || fail "redis did not start: $(cat "$WORK/services.log")"
# 2,000,000 keys: about a second to load from the AOF, written here in a few.
rcli EVAL \
  "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'k' .. i, 'v') end return 1" 0 2000000 \
  >/dev/null
rcli BGREWRITEAOF >/dev/null
for _ in $(seq 300); do  # until the rewrite is done
  [ "$(rcli INFO persistence | tr -d '\r' |
    sed -n 's/^aof_rewrite_in_progress://p')" = 0 ] && break
  sleep 0.1
done
# A script's writes after the rewrite sit in the append-only file as MULTI/EXEC (two writes or
# more), which Redis 7.0 replays as its default user: they must survive the restart.
rcli EVAL "redis.call('SET', 'after-rewrite', 'kept') redis.call('INCR', 'after-rewrite-n') return 1" \
  0 >/dev/null
services stop || fail "redis did not stop"
services start || fail "redis did not start again: $(cat "$WORK/services.log")"
reply="$(rcli ping 2>&1)"
[ "$reply" = PONG ] || fail "start returned while redis answered: $reply"
[ "$(rcli DBSIZE)" = 2000002 ] || fail "the data did not survive"
[ "$(rcli GET after-rewrite)" = kept ] || fail "a script's write after the rewrite was lost"
echo "redis_loading_test: ok"
