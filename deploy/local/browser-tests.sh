#!/usr/bin/env bash
# The console's real-browser tests (issue 19): Debian's Chromium, headless, driven by
# playwright-core (npm, pinned in tests/browser/package-lock.json; it never downloads a
# browser: the tests launch /usr/bin/chromium). Installs Chromium with apt-get only when
# /usr/bin/chromium is missing, and the npm packages with `npm ci` only when the
# lockfile changed. Then starts `precinct serve` on a free loopback port against a
# FRESH database on the DATABASE_URL server and a fresh stream prefix on NATS_URL (as
# deploy/local/client-contract.sh does), runs tests/browser/console.test.mjs with
# node's test runner, and stops the server and drops its database and streams. First,
# tests/browser/contrast.mjs checks the WCAG AA contrast of the console's colours.
# Knobs: PRECINCT_BIN (skip the build), BROWSER_KEEP=1 (keep db, streams and log).
# Output: target/console-screenshots/ (one screenshot per step), the server log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
TESTS="$ROOT/tests/browser"
VENV="$ROOT/.data/venv"
PY="$VENV/bin/python"

log() { printf 'browser-tests: %s\n' "$*" >&2; }
die() { printf 'browser-tests: error: %s\n' "$*" >&2; exit 1; }

# --- the console's colours: WCAG AA contrast (no browser needed) ---------------------
command -v node >/dev/null 2>&1 || die "node (Node.js >= 20) is needed"
node "$TESTS/contrast.mjs" >/dev/null || die "the console's colours fail WCAG AA (node $TESTS/contrast.mjs)"
# The check can fail: amber text on its amber background must be refused.
bad_css="$(mktemp)"
sed 's/^\.sla-amber { color: #[0-9a-fA-F]*/.sla-amber { color: #f0c060/' \
  "$ROOT/crates/precinct-api/console/console.css" >"$bad_css"
if node "$TESTS/contrast.mjs" "$bad_css" >/dev/null 2>&1; then
  rm -f "$bad_css"; die "the contrast check passed a stylesheet it must refuse"
fi
rm -f "$bad_css"
log "contrast: the console's colour pairs meet WCAG AA"

# --- tools ----------------------------------------------------------------------------
if [[ ! -x /usr/bin/chromium ]]; then
  log "installing Debian's chromium (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
fi
[[ -x /usr/bin/chromium ]] || die "no /usr/bin/chromium after install"
command -v npm >/dev/null 2>&1 || die "npm (Node.js >= 20) is needed"
stamp="$TESTS/node_modules/.installed-lock"
if [[ ! -f "$stamp" ]] || ! cmp -s "$TESTS/package-lock.json" "$stamp"; then
  (cd "$TESTS" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$TESTS/package-lock.json" "$stamp"
fi

bash "$ROOT/deploy/local/stack.sh" nats-bin >/dev/null   # makes the venv
if [[ -z ${NATS_URL:-} || -z ${DATABASE_URL:-} ]]; then
  eval "$(bash "$ROOT/deploy/local/stack.sh" up)"
fi
target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ -z ${PRECINCT_BIN:-} ]]; then
  (cd "$ROOT" && cargo build -q -p precinct)
  PRECINCT_BIN="$target_dir/debug/precinct"
fi
[[ -x $PRECINCT_BIN ]] || die "no precinct binary at $PRECINCT_BIN"

# --- a fresh database, prefix and port; the server -----------------------------------
source "$ROOT/deploy/local/test-server.sh"
test_server_init browser "$target_dir/console-screenshots" "${BROWSER_KEEP:-0}"
shots="$out_dir"
# A short accept deadline: the supervisor view shows a breach within the test. A tile
# layer from a second loopback port, served by the test itself: the only other origin
# the console may load from.
tiles_port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
tiles="http://127.0.0.1:$tiles_port/tiles/{z}/{x}/{y}.png"
test_server_start PRECINCT_SLA_ACCEPT_SECS=10 "PRECINCT_MAP_TILES=$tiles"

# --- the tests --------------------------------------------------------------------------
BASE="$base" ADMIN_EMAIL="$admin_email" ADMIN_PASSWORD="$admin_password" SCREENSHOTS="$shots" \
  TILES_PORT="$tiles_port" \
  node --test --test-reporter=spec "$TESTS/console.test.mjs"
