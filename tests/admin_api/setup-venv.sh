#!/usr/bin/env bash
# Makes the Python venv the admin API tests (tests/admin_api) run in: Debian's python3 with
# tests/admin_api/requirements.txt from PyPI (~20 s): Schemathesis, openapi-spec-validator, pytest,
# standardwebhooks, every dependency pinned there and installed with --no-deps, wheels only. A stamp
# holding the sha256 of this script and of the requirements makes later runs return at once;
# changing a pin installs again.
#
# Usage: tests/admin_api/setup-venv.sh [--check]
#   --check  install nothing: exit 0 when the venv is up to date, else 1 saying so
# Environment (defaults in brackets):
#   IM_ADMIN_API_VENV  where the venv goes       [<repo>/.cache/admin-api-venv]
#   PYTHON             the Python that makes it  [/usr/bin/python3]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${IM_ADMIN_API_VENV:-$ROOT/.cache/admin-api-venv}"
REQUIREMENTS="$ROOT/tests/admin_api/requirements.txt"
STAMP="$VENV/.stamp"

log() { printf 'admin-api venv: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

want="$(cat "$0" "$REQUIREMENTS" | sha256sum | cut -d' ' -f1)"
fresh() { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; }
fresh && exit 0
if [ "${1:-}" = --check ]; then
  die "$VENV is missing or older than tests/admin_api/requirements.txt: run" \
    "scripts/install-deps.sh (or tests/admin_api/setup-venv.sh)"
fi

mkdir -p "$(dirname "$VENV")"
# One install at a time (several test runs may start together); whoever waited finds it done.
exec 9>"$VENV.lock"
flock 9
fresh && exit 0
started=$SECONDS

# It is removed and made again: refuse to remove anything that is not an earlier venv.
if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
  die "$VENV exists and is not a Python venv; remove it or set IM_ADMIN_API_VENV"
fi
# Debian's python3 (its python3-venv package provides ensurepip) unless another is asked for.
PYTHON="${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}"
log "making $VENV with $PYTHON and tests/admin_api/requirements.txt (PyPI)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV" || die "$PYTHON -m venv failed (Debian: apt-get install python3-venv)"
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --only-binary=:all: \
  -r "$REQUIREMENTS" || die "pip install -r $REQUIREMENTS failed (output above)"
conflicts="$("$VENV/bin/pip" check)" || die "the pins of $REQUIREMENTS conflict: $conflicts"
modules=schemathesis,openapi_spec_validator,openapi_schema_validator,pytest,requests,standardwebhooks
"$VENV/bin/python" -c "import $modules, yaml" || die "the venv's tools do not import (output above)"

echo "$want" >"$STAMP"
log "ready in $VENV ($((SECONDS - started))s)"
