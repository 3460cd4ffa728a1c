#!/usr/bin/env bash
# Sets up and runs the system on this machine: installs the Debian packages, builds an optimized
# tree in build/release, and starts a local cluster in the background (deploy/local/cluster up):
# Redis, MariaDB and Kafka on private ports, one im-logic and two im-gateways (clients on 7000 and
# 7001).
# Usage: scripts/run.sh            (BUILD_DIR=DIR: build in and run from DIR, not build/release)
# Then:  deploy/local/cluster demo   two users on the two gateways exchange a message
#        deploy/local/cluster down   stops everything
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/release}"

"$ROOT/scripts/install-deps.sh"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIM_BUILD_TESTS=ON \
  -DIM_BUILD_BENCH=OFF >/dev/null
ninja -C "$BUILD_DIR" -j"$(nproc)" im-logic im-gateway im-chat-demo imcli \
  imctl

export IM_BUILD_DIR="$BUILD_DIR"
# Ends by saying where clients connect, and how to run the demo and to stop the cluster.
"$ROOT/deploy/local/cluster" up
if [ "$(cd "$BUILD_DIR" && pwd)" != "$ROOT/build/release" ]; then
  echo "This cluster runs binaries from $BUILD_DIR: give the cluster commands" \
    "IM_BUILD_DIR=$BUILD_DIR (e.g. IM_BUILD_DIR=$BUILD_DIR deploy/local/cluster demo)."
fi
