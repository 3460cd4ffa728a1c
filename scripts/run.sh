#!/usr/bin/env bash
# Sets up and runs the system on this machine: installs the Debian packages, builds an optimized
# tree in build/release, and starts an im-gateway in the foreground (Ctrl-C drains and stops it).
# Usage: scripts/run.sh [--config FILE]      (default deploy/local/gateway.yaml)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/release}"
CONFIG="$ROOT/deploy/local/gateway.yaml"
if [ "${1:-}" = "--config" ]; then CONFIG="$2"; fi

"$ROOT/scripts/install-deps.sh"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIM_BUILD_TESTS=ON \
  -DIM_BUILD_BENCH=OFF >/dev/null
ninja -C "$BUILD_DIR" -j"$(nproc)" im-gateway im-connload

echo "starting im-gateway with $CONFIG (clients on port 7000, metrics on http://127.0.0.1:9100/metrics)"
exec "$BUILD_DIR/gateway/im-gateway" --config "$CONFIG"
