#!/usr/bin/env bash
# deploy/local/cluster up and down take a lock: while another up (here: a flock held by this test)
# holds it, a second up waits IM_CLUSTER_LOCK_TIMEOUT_SEC and then fails, naming the lock, without
# starting anything; once the lock is free, up goes on (here it stops at once, at its check that the
# binaries exist, as IM_BUILD_DIR points at an empty directory).
# Usage: tests/deploy/cluster_lock_test.sh WORK_DIR
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="$1"
rm -rf "$WORK"
mkdir -p "$WORK/var" "$WORK/no-build"
export IM_VAR_DIR="$WORK/var" IM_BUILD_DIR="$WORK/no-build" IM_CLUSTER_LOCK_TIMEOUT_SEC=1
fail() { echo "cluster_lock_test: FAIL: $*" >&2; exit 1; }

# -o: flock itself holds the lock (its sleep does not), so stopping flock frees it.
flock -o "$WORK/var/cluster.lock" sleep 30 &
holder=$!
release() { pkill -P "$holder" 2>/dev/null || true; kill "$holder" 2>/dev/null || true; }
trap release EXIT
for _ in $(seq 50); do  # until the holder has the lock
  if ! flock -n "$WORK/var/cluster.lock" true; then break; fi
  sleep 0.1
done

if "$ROOT/deploy/local/cluster" up >"$WORK/held.log" 2>&1; then
  fail "up ran while another up held the lock"
fi
grep -q "still holds $WORK/var/cluster.lock after 1s" "$WORK/held.log" ||
  fail "up did not name the lock it waited for: $(cat "$WORK/held.log")"
[ ! -e "$WORK/var/cluster" ] || fail "up started something while it did not hold the lock"

release
wait "$holder" 2>/dev/null || true
if "$ROOT/deploy/local/cluster" up >"$WORK/free.log" 2>&1; then
  fail "up succeeded without binaries"
fi
grep -q "not built in $WORK/no-build" "$WORK/free.log" ||
  fail "with the lock free, up did not go on to its own checks: $(cat "$WORK/free.log")"
echo "cluster_lock_test: ok"
