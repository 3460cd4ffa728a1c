#!/usr/bin/env bash
# Builds the frame decoder fuzz target with clang (libFuzzer + ASan/UBSan) in build-fuzz/ and runs
# it for $FUZZ_SECONDS (default 60) on a copy of the committed seed corpus. Exits non-zero if the
# build fails or the fuzzer finds a crash, a sanitizer report, a leak or a timeout; the input that
# caused it is left in build-fuzz/fuzz-artifacts/.
# Usage: FUZZ_SECONDS=300 scripts/fuzz-smoke.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/fuzz}"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
JOBS="${JOBS:-2}"
TARGET=frame_decoder_fuzz

cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DIM_BUILD_FUZZ=ON -DIM_BUILD_TESTS=OFF -DIM_BUILD_BENCH=OFF \
  -DIM_SANITIZE=address,undefined
ninja -C "$BUILD_DIR" -j"$JOBS" "$TARGET"

# The fuzzer adds what it finds to its corpus directory; keep the committed seeds untouched.
WORK_DIR="$BUILD_DIR/fuzz-run"
ARTIFACTS="$BUILD_DIR/fuzz-artifacts"
rm -rf "$WORK_DIR" "$ARTIFACTS"
mkdir -p "$WORK_DIR/corpus" "$ARTIFACTS"
cp "$ROOT/common/fuzz/corpus/"* "$WORK_DIR/corpus/"

echo "fuzz-smoke: running $TARGET for ${FUZZ_SECONDS}s"
status=0
"$BUILD_DIR/common/fuzz/$TARGET" \
  -max_total_time="$FUZZ_SECONDS" \
  -timeout=10 \
  -rss_limit_mb=2048 \
  -print_final_stats=1 \
  -artifact_prefix="$ARTIFACTS/" \
  "$WORK_DIR/corpus" 2>&1 | tee "$WORK_DIR/fuzz.log" || status=$?

if [ "$status" -ne 0 ]; then
  echo "fuzz-smoke: FAILED (exit $status); reproduce with:" >&2
  for f in "$ARTIFACTS"/*; do
    [ -e "$f" ] && echo "  $BUILD_DIR/common/fuzz/$TARGET $f" >&2
  done
  exit 1
fi
echo "fuzz-smoke: OK ($(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$WORK_DIR/fuzz.log" |
  awk '{print $2}') runs in ${FUZZ_SECONDS}s)"
