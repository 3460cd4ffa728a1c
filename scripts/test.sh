#!/usr/bin/env bash
# Sets up and runs every test: installs the Debian packages, builds with ASan+UBSan and -Werror,
# runs the ctest suites (building the fuzz targets meanwhile), checks formatting, and fuzzes each
# fuzz target for a fixed time.
# Usage: scripts/test.sh            (FUZZ_SECONDS=60, BUILD_DIR=build/test, JOBS=2 to adjust)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/test}"
JOBS="${JOBS:-$(nproc)}"
export FUZZ_SECONDS="${FUZZ_SECONDS:-60}"

"$ROOT/scripts/install-deps.sh"

echo "== format"
"$ROOT/scripts/check-format.sh"

echo "== build (ASan+UBSan, -Werror) in $BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DIM_SANITIZE=address,undefined -DIM_WERROR=ON -DIM_BUILD_TESTS=ON -DIM_BUILD_BENCH=ON
ninja -C "$BUILD_DIR" -j"$JOBS"

echo "== services (Redis, MariaDB, Kafka) for the integration and contract tests"
# Ports of their own, so a local cluster (deploy/local) can keep running beside the tests.
export IM_VAR_DIR="$BUILD_DIR/var" IM_LOCAL_REDIS_PORT="${IM_TEST_REDIS_PORT:-26379}"
export IM_MYSQL_PORT="${IM_TEST_MYSQL_PORT:-23306}"
export IM_LOCAL_KAFKA_PORT="${IM_TEST_KAFKA_PORT:-29092}"
export IM_LOCAL_KAFKA_CONTROLLER_PORT="${IM_TEST_KAFKA_CONTROLLER_PORT:-29093}"
# Redis requires a login (an ACL user), so every test that reaches it exercises AUTH.
export IM_LOCAL_REDIS_USER="${IM_TEST_REDIS_USERNAME:-im}"
export IM_LOCAL_REDIS_PASSWORD="${IM_TEST_REDIS_PASSWORD:-im-test-redis}"
# So does Kafka (SASL over TLS, with the development CA's certificate), for the test broker and
# the brokers tests start of their own (OwnKafka, which inherits these).
export IM_LOCAL_KAFKA_USER="${IM_TEST_KAFKA_USERNAME:-im}"
export IM_LOCAL_KAFKA_PASSWORD="${IM_TEST_KAFKA_PASSWORD:-im-test-kafka}"
export IM_LOCAL_KAFKA_TLS_DIR="$IM_VAR_DIR/tls"
mkdir -p "$IM_VAR_DIR"
# The trap stops the services; should this script be SIGKILLed (a CI timeout), when no trap runs,
# the watcher does, within a few seconds.
setsid "$ROOT/scripts/stop-when-gone.sh" $$ -- "$ROOT/deploy/local/services.sh" stop </dev/null \
  >>"$IM_VAR_DIR/stop-when-gone.log" 2>&1 &
watcher=$!
fuzz_build=""  # the background fuzz build's process group, once started (below)
trap '[ -z "$fuzz_build" ] || kill -- "-$fuzz_build" 2>/dev/null || true
"$ROOT/deploy/local/services.sh" stop; kill "$watcher" 2>/dev/null || true' EXIT
# The test broker starts empty: topics left by an earlier run only slow it down.
"$ROOT/deploy/local/services.sh" stop kafka
rm -rf "$IM_VAR_DIR/kafka"
"$ROOT/deploy/local/services.sh" start
export IM_TEST_REDIS="127.0.0.1:$IM_LOCAL_REDIS_PORT" IM_TEST_MYSQL="127.0.0.1:$IM_MYSQL_PORT"
export IM_TEST_KAFKA="127.0.0.1:$IM_LOCAL_KAFKA_PORT"
export IM_TEST_REDIS_USERNAME="$IM_LOCAL_REDIS_USER" IM_TEST_REDIS_PASSWORD="$IM_LOCAL_REDIS_PASSWORD"
# Redis serves TLS too (services.sh, IM_LOCAL_REDIS_PORT + 1): the clusters' logic nodes connect
# there (tests/e2e/local_cluster.cc), the store tests to both.
export IM_TEST_REDIS_TLS="127.0.0.1:$((IM_LOCAL_REDIS_PORT + 1))"
export IM_TEST_REDIS_TLS_CA="$IM_VAR_DIR/tls/ca.pem"
# MariaDB serves TLS with the development CA's certificate (services.sh): the tests connect with it.
export IM_TEST_MYSQL_TLS_CA="$IM_VAR_DIR/tls/ca.pem"
export IM_TEST_KAFKA_USERNAME="$IM_LOCAL_KAFKA_USER" IM_TEST_KAFKA_PASSWORD="$IM_LOCAL_KAFKA_PASSWORD"
export IM_TEST_KAFKA_TLS_CA="$IM_LOCAL_KAFKA_TLS_DIR/ca.pem"

# The fuzz targets build meanwhile, at the lowest priority: they take only the CPU the tests
# leave idle (most of the tests wait on servers and timers), so the build costs the run little
# time and the tests little CPU. It runs in a process group of its own, which the trap ends
# (ninja and its compilers with it) should this script stop early.
FUZZ_BUILD_LOG="$ROOT/build/fuzz-build.log"
mkdir -p "$ROOT/build"
echo "== fuzz build, in the background while the tests run (log: $FUZZ_BUILD_LOG)"
setsid setpriv --pdeathsig KILL nice -n 19 env FUZZ_STEP=build BUILD_DIR="$ROOT/build/fuzz" \
  "$ROOT/scripts/fuzz-smoke.sh" >"$FUZZ_BUILD_LOG" 2>&1 &
fuzz_build=$!

echo "== tests"
# detect_leaks is on by default with ASan on x86_64 Linux; say so for anyone reading CI logs.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# ctest dies with this script, even by SIGKILL: left running, it would go on starting clusters
# against the stopped services.
setpriv --pdeathsig KILL ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 900

echo "== fuzz smoke (${FUZZ_SECONDS}s)"
fuzz_built=0
wait "$fuzz_build" || fuzz_built=$?
fuzz_build=""
if [ "$fuzz_built" -ne 0 ]; then
  tail -n 50 "$FUZZ_BUILD_LOG"
  echo "scripts/test.sh: the fuzz targets did not build (log: $FUZZ_BUILD_LOG)" >&2
  exit 1
fi
FUZZ_STEP=run BUILD_DIR="$ROOT/build/fuzz" "$ROOT/scripts/fuzz-smoke.sh"

echo "scripts/test.sh: all passed"
