#!/usr/bin/env bash
# Sets up and runs the service on this machine: installs the Debian packages, builds an optimized
# tree in build/release, and starts it in the background (deploy/local/cluster up).
#
# Usage: scripts/run.sh            the embedded node: one im-server process, gateway and logic
#                                  together, data in SQLite (var/local/server); clients on 7000.
#                                  Needs no Java and no database server: only the build packages
#        scripts/run.sh --cluster  the distributed cluster: Redis, MariaDB and Kafka on private
#                                  ports, one im-logic and two im-gateways (clients on 7000, 7001)
#        (BUILD_DIR=DIR: build in and run from DIR, not build/release)
# Then:  deploy/local/cluster demo   two users exchange a message
#        deploy/local/cluster down   stops everything
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/release}"

mode=embedded
case "${1:-}" in
  --cluster) mode=cluster ;;
  --embedded | "") ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "run.sh: unknown option '$1' (--cluster)" >&2; exit 2 ;;
esac

if [ "$mode" = cluster ]; then
  "$ROOT/scripts/install-deps.sh"
  targets=(im-logic im-gateway)
  up_args=()
else
  IM_DEPS=build "$ROOT/scripts/install-deps.sh"
  targets=(im-server)
  up_args=(--embedded)
fi
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIM_BUILD_TESTS=ON \
  -DIM_BUILD_BENCH=OFF >/dev/null
ninja -C "$BUILD_DIR" -j"$(nproc)" "${targets[@]}" im-chat-demo imcli imctl

export IM_BUILD_DIR="$BUILD_DIR"
# Ends by saying where clients connect, and how to run the demo and to stop it.
"$ROOT/deploy/local/cluster" up "${up_args[@]+"${up_args[@]}"}"
if [ "$(cd "$BUILD_DIR" && pwd)" != "$ROOT/build/release" ]; then
  echo "This runs binaries from $BUILD_DIR: give the cluster commands" \
    "IM_BUILD_DIR=$BUILD_DIR (e.g. IM_BUILD_DIR=$BUILD_DIR deploy/local/cluster demo)."
fi
