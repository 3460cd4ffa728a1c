#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (libFuzzer + ASan/UBSan) in build/fuzz/ and runs each for
# $FUZZ_SECONDS (default 60), $JOBS (2) at a time, on a copy of its committed seed corpus. The
# build is unoptimized (Debug, asserts on): it compiles in less than half the time of -O2, which
# the few minutes of a CI smoke run would not win back in runs.
#   frame_decoder_fuzz    the frame decoder (common/fuzz/corpus)
#   token_fuzz            the token parser (common/fuzz/token_corpus)
#   request_handler_fuzz  every logic request handler, in-memory backends
#                         (tests/fuzz/corpus/request_handler)
#   config_fuzz           the config loader as the three binaries read it (tests/fuzz/corpus/config,
#                         plus the configs under deploy/)
#   websocket_fuzz        the gateway's WebSocket handshake and frame reading
#                         (tests/fuzz/corpus/websocket)
#   admin_api_fuzz        the admin REST API: routing, path decoding, JSON bodies, operations
#                         (tests/fuzz/corpus/admin_api)
# Exits non-zero if a build fails or a fuzzer finds a crash, a sanitizer report, a leak or a
# timeout; the input that caused it is left in build/fuzz/fuzz-artifacts/<target>/.
# Usage: FUZZ_SECONDS=300 FUZZ_TARGETS="token_fuzz config_fuzz" scripts/fuzz-smoke.sh
#        FUZZ_STEP=build or FUZZ_STEP=run: only that half (scripts/test.sh builds while its tests
#        run, then fuzzes)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/fuzz}"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
JOBS="${JOBS:-2}"
FUZZ_STEP="${FUZZ_STEP:-all}"
FUZZ_TARGETS="${FUZZ_TARGETS:-frame_decoder_fuzz token_fuzz request_handler_fuzz config_fuzz websocket_fuzz admin_api_fuzz}"

# Where each target is built, and its seeds (directories and files, relative to the root).
target_dir() {
  case "$1" in
    frame_decoder_fuzz | token_fuzz) echo common/fuzz ;;
    request_handler_fuzz | config_fuzz | websocket_fuzz | admin_api_fuzz) echo tests/fuzz ;;
    *) echo "fuzz-smoke: unknown target $1" >&2; exit 2 ;;
  esac
}
target_seeds() {
  case "$1" in
    frame_decoder_fuzz) echo common/fuzz/corpus ;;
    token_fuzz) echo common/fuzz/token_corpus ;;
    request_handler_fuzz) echo tests/fuzz/corpus/request_handler ;;
    config_fuzz) echo tests/fuzz/corpus/config deploy/local/*.yaml deploy/k8s/base/config/*.yaml ;;
    websocket_fuzz) echo tests/fuzz/corpus/websocket ;;
    admin_api_fuzz) echo tests/fuzz/corpus/admin_api ;;
  esac
}

if [ "$FUZZ_STEP" != run ]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DIM_BUILD_FUZZ=ON -DIM_BUILD_TESTS=OFF -DIM_BUILD_BENCH=OFF \
    -DIM_SANITIZE=address,undefined
  # shellcheck disable=SC2086  # a list of targets
  ninja -C "$BUILD_DIR" -j"$JOBS" $FUZZ_TARGETS
fi
[ "$FUZZ_STEP" != build ] || exit 0

# Fuzzes one target for $FUZZ_SECONDS on a copy of its seeds; its output goes to its fuzz.log.
fuzz_target() {
  local target="$1" work_dir="$BUILD_DIR/fuzz-run/$1" artifacts="$BUILD_DIR/fuzz-artifacts/$1"
  # The fuzzer adds what it finds to its corpus directory; keep the committed seeds untouched.
  rm -rf "$work_dir" "$artifacts"
  mkdir -p "$work_dir/corpus" "$artifacts"
  (cd "$ROOT" && for seeds in $(target_seeds "$target"); do
    if [ -d "$seeds" ]; then cp "$seeds"/* "$work_dir/corpus/"; else cp "$seeds" "$work_dir/corpus/"; fi
  done)
  # -timeout: one input may take up to the request handler's own bound (twice the 5 s deadline).
  "$BUILD_DIR/$(target_dir "$target")/$target" \
    -max_total_time="$FUZZ_SECONDS" \
    -timeout=30 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    -artifact_prefix="$artifacts/" \
    "$work_dir/corpus" >"$work_dir/fuzz.log" 2>&1
}

# Each target fuzzes on one core, $JOBS at a time, each for its whole $FUZZ_SECONDS.
declare -A pids
running=0
for target in $FUZZ_TARGETS; do
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  echo "fuzz-smoke: running $target for ${FUZZ_SECONDS}s"
  fuzz_target "$target" &
  pids[$target]=$!
  running=$((running + 1))
done

failed=0
for target in $FUZZ_TARGETS; do
  status=0
  wait "${pids[$target]}" || status=$?
  work_dir="$BUILD_DIR/fuzz-run/$target"
  artifacts="$BUILD_DIR/fuzz-artifacts/$target"
  echo "== $target"
  tail -n 25 "$work_dir/fuzz.log"
  if [ "$status" -ne 0 ]; then
    failed=1
    echo "fuzz-smoke: $target FAILED (exit $status); reproduce with:" >&2
    for f in "$artifacts"/*; do
      [ -e "$f" ] && echo "  $BUILD_DIR/$(target_dir "$target")/$target $f" >&2
    done
    continue
  fi
  echo "fuzz-smoke: $target OK ($(grep -Eo 'stat::number_of_executed_units: [0-9]+' \
    "$work_dir/fuzz.log" | awk '{print $2}') runs in ${FUZZ_SECONDS}s)"
done
exit "$failed"
