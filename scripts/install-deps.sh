#!/usr/bin/env bash
# Installs every Debian 12 package the project needs to build, test and run, then the jars of the
# Kafka broker the tests and the local cluster run (from Maven Central, cached in ~/.m2 and
# .cache/kafka-libs: deploy/kafka/fetch-jars.sh).
# Idempotent: when everything is present it only checks and returns.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

BUILD_PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config clang clang-format libclang-rt-14-dev
  # libraries
  libuv1-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libabsl-dev libssl-dev libhiredis-dev librdkafka-dev libmysqlcppconn-dev
  prometheus-cpp-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  nlohmann-json3-dev libcpp-httplib-dev libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev libjemalloc-dev libwslay-dev libhttp-parser-dev libcurl4-openssl-dev
)
TOOL_PACKAGES=(
  # servers and tools used by the local cluster and the integration tests
  redis-server mariadb-server mariadb-client maven openjdk-17-jre-headless
  # scripts/embedded-to-cluster.sh reads the embedded node's SQLite database
  sqlite3
  procps iproute2 python3
  # the metrics test parses /metrics with the reference Prometheus parser
  python3-prometheus-client
  # the outside referee of the gateway's TLS port (tests/tls)
  testssl.sh
  # deploy/k8s/fetch-tools.sh puts the deployment tests' Python tools in a venv
  python3-venv
  # the browser test drives Debian's chromium (tests/browser); the deployment tests use curl
  chromium curl
)
# IM_DEPS=build (the image's build stage, deploy/docker/Dockerfile): toolchain and libraries only;
# no servers, test tools, Kafka jars or deployment tools.
IM_DEPS="${IM_DEPS:-all}"
PACKAGES=("${BUILD_PACKAGES[@]}")
if [ "$IM_DEPS" != build ]; then PACKAGES+=("${TOOL_PACKAGES[@]}"); fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  # Servers must not start themselves through systemd/init: the project starts them on private
  # ports.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ "$IM_DEPS" = build ]; then exit 0; fi

# Node.js for the web SDK and the browser test: the machine's own when it has one, else Debian's.
if ! command -v npm >/dev/null; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "install-deps: Node.js $(node --version) is older than 20, which sdk/web needs" >&2
  exit 1
fi
# The web SDK's packages and the browser test's playwright-core from the npm registry, as their
# package-lock.json files pin them.
for dir in sdk/web tests/browser; do
  (cd "$ROOT/$dir" && npm ci --no-audit --no-fund --loglevel=error)
done

# As the user running this (not root through sudo): the jars land in their ~/.m2. Returns at once
# when .cache/kafka-libs already holds the jars of deploy/kafka/pom.xml.
"$ROOT/deploy/kafka/fetch-jars.sh"
# kustomize (Go module proxy) and the manifest/PromQL checkers (PyPI) for tests/deploy, pinned, in
# .cache/deploy-tools; returns at once when they are there.
"$ROOT/deploy/k8s/fetch-tools.sh"
# Schemathesis, openapi-spec-validator and pytest (PyPI) for tests/admin_api, pinned, in
# .cache/admin-api-venv; returns at once when they are there.
"$ROOT/tests/admin_api/setup-venv.sh"
