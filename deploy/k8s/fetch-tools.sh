#!/usr/bin/env bash
# Installs the tools the deployment checks (tests/deploy) and an operator rendering the manifests
# use, pinned, into one directory:
#   bin/kustomize  sigs.k8s.io/kustomize/kustomize/v5, built with `go install` from the Go module
#                  proxy (Debian 12 packages no kustomize; ~1.5 min on 2 cores the first time)
#   venv/          a Python venv with deploy/k8s/tools-requirements.txt from PyPI (~15 s):
#                  kubernetes-validate, promql-parser, prometheus_client, PyYAML
# A stamp holding the sha256 of this script and of the requirements makes later runs return at
# once; changing a pin installs again.
#
# Usage: deploy/k8s/fetch-tools.sh
# Environment (defaults in brackets):
#   IM_DEPLOY_TOOLS  where the tools go  [<repo>/.cache/deploy-tools]
#   GO               the Go toolchain    [go]; 1.21 or newer (it fetches the 1.24 toolchain
#                    kustomize asks for through the module proxy when older than that)
set -euo pipefail

KUSTOMIZE_VERSION=v5.8.1

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TOOLS="${IM_DEPLOY_TOOLS:-$ROOT/.cache/deploy-tools}"
REQUIREMENTS="$ROOT/deploy/k8s/tools-requirements.txt"
STAMP="$TOOLS/.stamp"
GO="${GO:-go}"

log() { printf 'fetch-tools: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

want="$(cat "$0" "$REQUIREMENTS" | sha256sum | cut -d' ' -f1)"
fresh() { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; }
fresh && exit 0

mkdir -p "$TOOLS"
# One install at a time (several test runs may start together); whoever waited finds it done.
exec 9>"$TOOLS.lock"
flock 9
fresh && exit 0
started=$SECONDS

command -v "$GO" >/dev/null ||
  die "'$GO' not found: kustomize is built from the Go module proxy; install Go 1.21+ (go.dev/dl)"
go_minor="$("$GO" env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
[ -n "$go_minor" ] && [ "$go_minor" -ge 21 ] ||
  die "$("$GO" env GOVERSION) is too old to fetch the toolchain kustomize needs: install Go 1.21+"
if [ "$("$TOOLS/bin/kustomize" version 2>/dev/null)" != "$KUSTOMIZE_VERSION" ]; then
  log "building kustomize $KUSTOMIZE_VERSION into $TOOLS/bin (Go module proxy)"
  # Module mode whatever the caller's GOFLAGS say (a -mod=vendor would find no vendor tree), and
  # GOTOOLCHAIN=auto even where a distribution's go.env says local, so that a Go older than the
  # 1.24 kustomize asks for fetches that toolchain (a module) instead of failing.
  GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod GOTOOLCHAIN=auto "$GO" install \
    "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" ||
    die "go install sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION failed (output above)"
fi

# Debian's python3 (its python3-venv package provides ensurepip) unless another is asked for.
PYTHON="${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}"
log "making $TOOLS/venv with $PYTHON and deploy/k8s/tools-requirements.txt (PyPI)"
rm -rf "$TOOLS/venv"
"$PYTHON" -m venv "$TOOLS/venv" ||
  die "$PYTHON -m venv failed (Debian: apt-get install python3-venv)"
"$TOOLS/venv/bin/pip" install -q --disable-pip-version-check --no-deps -r "$REQUIREMENTS" ||
  die "pip install -r $REQUIREMENTS failed (output above)"
"$TOOLS/venv/bin/python" -c 'import kubernetes_validate, promql_parser, prometheus_client, yaml' ||
  die "the venv's tools do not import (output above)"

echo "$want" >"$STAMP"
log "kustomize $KUSTOMIZE_VERSION and the Python tools ready in $TOOLS ($((SECONDS - started))s)"
