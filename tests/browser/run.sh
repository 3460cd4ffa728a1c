#!/usr/bin/env bash
# The browser tests: support_desk.test.mjs runs the support-desk demo (sdk/web/demo) in Debian's
# chromium, driven by playwright-core, against an im-server and the dev web server
# (deploy/local/dev-web) it starts on free ports; dev_web.test.mjs checks that server's guards,
# tokens and files. This script installs nothing; once per machine (network: Debian and npm):
#
#   apt-get install -y chromium
#   (cd sdk/web && npm ci) && (cd tests/browser && npm ci)
#
# and im-server built (ninja -C build/test im-server, or IM_SERVER_BINARY). It builds the web SDK
# and the demo (npm run build: local, no network), then runs the tests; exit status non-zero when
# one fails. Screenshots and logs: IM_BROWSER_ARTIFACTS [build/test/browser-artifacts].
# IM_CHROMIUM names another chromium [/usr/bin/chromium].
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CHROMIUM="${IM_CHROMIUM:-/usr/bin/chromium}"
SERVER="${IM_SERVER_BINARY:-$ROOT/build/test/server/im-server}"

die() { printf 'tests/browser: %s\n' "$*" >&2; exit 2; }

[ -d "$ROOT/sdk/web/node_modules" ] || die "sdk/web not installed: (cd sdk/web && npm ci)"
[ -d "$ROOT/tests/browser/node_modules/playwright-core" ] ||
  die "playwright-core not installed: (cd tests/browser && npm ci)"
[ -x "$CHROMIUM" ] || die "no chromium at $CHROMIUM: apt-get install -y chromium (or IM_CHROMIUM)"
[ -x "$SERVER" ] || die "no im-server at $SERVER: ninja -C build/test im-server (IM_SERVER_BINARY)"

(cd "$ROOT/sdk/web" && npm run --silent build && npm --prefix demo run --silent build)
exec node --test --test-timeout=110000 "$ROOT/tests/browser/dev_web.test.mjs" \
  "$ROOT/tests/browser/support_desk.test.mjs"
