#!/usr/bin/env bash
# The console's real-browser tests (issue 19): Debian's Chromium, headless, driven by
# playwright-core (npm, pinned in tests/browser/package-lock.json; it never downloads a
# browser: the tests launch /usr/bin/chromium). Installs Chromium with apt-get only when
# /usr/bin/chromium is missing, and the npm packages with `npm ci` only when the
# lockfile changed. Then starts `precinct serve` on a free loopback port against a
# FRESH database on the DATABASE_URL server and a fresh stream prefix on NATS_URL (as
# deploy/local/client-contract.sh does), runs tests/browser/console.test.mjs with
# node's test runner, and stops the server and drops its database and streams.
# Knobs: PRECINCT_BIN (skip the build), BROWSER_KEEP=1 (keep db, streams and log).
# Output: target/console-screenshots/ (one screenshot per step), the server log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
TESTS="$ROOT/tests/browser"
VENV="$ROOT/.data/venv"
PY="$VENV/bin/python"

log() { printf 'browser-tests: %s\n' "$*" >&2; }
die() { printf 'browser-tests: error: %s\n' "$*" >&2; exit 1; }

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

# --- a fresh database, prefix and port ------------------------------------------------
run_id="browser$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"
db_name="precinct_$run_id"
shots="$target_dir/console-screenshots"
rm -rf "$shots"
mkdir -p "$shots"
server_log="$shots/server.log"
db_url="$("$PY" - "$DATABASE_URL" "$db_name" <<'PYEOF'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))
PYEOF
)"
port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

server_pid=""
cleanup() {
  local rc=$?
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 ]]; then
    log "server log: $server_log; screenshots: $shots"
  fi
  if [[ ${BROWSER_KEEP:-0} != 1 ]]; then
    psql "$DATABASE_URL" -XqAt -c "drop database if exists \"$db_name\" with (force)" >/dev/null 2>&1 ||
      log "warning: could not drop database $db_name"
    "$PY" - "$NATS_URL" "$run_id" <<'PYEOF' || log "warning: could not delete the streams of $run_id"
import socket, sys, urllib.parse as u
url, prefix = u.urlsplit(sys.argv[1]), sys.argv[2].upper()
s = socket.create_connection((url.hostname or "127.0.0.1", url.port or 4222), timeout=5)
f = s.makefile("rb")
f.readline()  # INFO
s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
for name in (f"{prefix}_EVENTS", f"{prefix}_REQUESTS", f"{prefix}_POSITIONS", f"KV_{prefix}_KEYS"):
    s.sendall(f"PUB $JS.API.STREAM.DELETE.{name} 0\r\n\r\n".encode())
s.sendall(b"PING\r\n")
while not f.readline().startswith(b"PONG"):
    pass
PYEOF
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql "$DATABASE_URL" -XqAt -v ON_ERROR_STOP=1 -c "create database \"$db_name\"" >/dev/null
admin_email="admin@$run_id.test"
admin_password="browser-$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')"
(
  export PRECINCT_HTTP_ADDR="127.0.0.1:$port"
  export DATABASE_URL="$db_url" NATS_URL
  export PRECINCT_STREAM_PREFIX="$run_id"
  export PRECINCT_JWT_SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
  export PRECINCT_MASTER_KEY="browser:$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
  export PRECINCT_ADMIN_EMAIL="$admin_email" PRECINCT_ADMIN_PASSWORD="$admin_password"
  export RUST_LOG="${RUST_LOG:-warn}"
  exec "$PRECINCT_BIN" serve
) </dev/null >"$server_log" 2>&1 &
server_pid=$!

for _ in $(seq 600); do
  if "$PY" - "$base" <<'PYEOF' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/health/ready", timeout=2).read()
PYEOF
  kill -0 "$server_pid" 2>/dev/null || die "the server exited; see $server_log"
  sleep 0.2
done

# --- the tests --------------------------------------------------------------------------
BASE="$base" ADMIN_EMAIL="$admin_email" ADMIN_PASSWORD="$admin_password" SCREENSHOTS="$shots" \
  node --test --test-reporter=spec "$TESTS/console.test.mjs"
