#!/usr/bin/env bash
# Runs a deployment check with the Python of the pinned tools' venv (deploy/k8s/fetch-tools.sh).
# Usage: tests/deploy/run-python.sh SCRIPT.py ARGS...
set -euo pipefail
TOOLS="${IM_DEPLOY_TOOLS:-$(cd "$(dirname "$0")/../.." && pwd)/.cache/deploy-tools}"
if [ ! -x "$TOOLS/venv/bin/python" ]; then
  echo "no deployment tools in $TOOLS: run scripts/install-deps.sh" \
    "(or deploy/k8s/fetch-tools.sh)" >&2
  exit 1
fi
exec "$TOOLS/venv/bin/python" "$@"
