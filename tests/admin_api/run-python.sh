#!/usr/bin/env bash
# Runs an admin API test with the Python of its venv (tests/admin_api/setup-venv.sh), refusing a
# venv that is missing or older than requirements.txt. No bytecode is written into the source tree.
# Usage: tests/admin_api/run-python.sh SCRIPT.py ARGS...   (or -m MODULE ARGS...)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${IM_ADMIN_API_VENV:-$(cd "$HERE/../.." && pwd)/.cache/admin-api-venv}"
"$HERE/setup-venv.sh" --check
PYTHONDONTWRITEBYTECODE=1 exec "$VENV/bin/python" "$@"
