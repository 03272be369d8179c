#!/usr/bin/env bash
# The generated-client contract test (issue 20): generates a Python client from the
# OpenAPI document the server SERVES (GET /openapi.json) with openapi-python-client
# (PyPI, pinned below, in the stack's virtualenv .data/venv), then runs a journey through
# the generated code only (tools/client-contract/journey.py): register and log in,
# create a station and its staff, submit a report (signed in and anonymously), read it,
# dispatch, accept, respond, resolve, approve → CLOSED. Fails when the document and the
# server disagree or when the document makes the generated code unusable.
#
# Starts `precinct serve` on a free loopback port against a FRESH database on the
# DATABASE_URL server and a fresh stream prefix on NATS_URL (both from the environment,
# else from `stack.sh up`); stops it and drops the database and streams at the end.
# Knobs: PRECINCT_BIN (skip the build), CONTRACT_KEEP=1 (keep db, streams and output).
# Output: target/client-contract/ (the generated client, the server log).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
GENERATOR_VERSION="0.29.1"   # exact pin: the generated code's shape changes between versions
VENV="$ROOT/.data/venv"
PY="$VENV/bin/python"
GEN="$VENV/bin/openapi-python-client"

log() { printf 'client-contract: %s\n' "$*" >&2; }
die() { printf 'client-contract: error: %s\n' "$*" >&2; exit 1; }

# --- tools ----------------------------------------------------------------------------
bash "$ROOT/deploy/local/stack.sh" nats-bin >/dev/null   # makes the venv
if [[ "$("$GEN" --version 2>/dev/null || true)" != "openapi-python-client version: $GENERATOR_VERSION" ]]; then
  log "installing openapi-python-client==$GENERATOR_VERSION (PyPI) into $VENV"
  "$PY" -m pip install --disable-pip-version-check --no-input --quiet \
    "openapi-python-client==$GENERATOR_VERSION" >&2
fi
[[ "$("$GEN" --version)" == "openapi-python-client version: $GENERATOR_VERSION" ]] ||
  die "openapi-python-client does not report $GENERATOR_VERSION after install"

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
run_id="contract$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"
db_name="precinct_$run_id"
out_dir="$target_dir/client-contract"
rm -rf "$out_dir"
mkdir -p "$out_dir"
server_log="$out_dir/server.log"
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
    log "server log: $server_log"
  fi
  if [[ ${CONTRACT_KEEP:-0} != 1 ]]; then
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
admin_password="contract-$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')"
(
  export PRECINCT_HTTP_ADDR="127.0.0.1:$port"
  export DATABASE_URL="$db_url" NATS_URL
  export PRECINCT_STREAM_PREFIX="$run_id"
  export PRECINCT_JWT_SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
  export PRECINCT_MASTER_KEY="contract:$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
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

# --- generate from the served document, then the journey --------------------------------
"$PY" - "$base/openapi.json" "$out_dir/openapi.json" <<'PYEOF'
import sys, urllib.request
open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1], timeout=10).read())
PYEOF
# --fail-on-warning: a schema the generator cannot use (and would silently drop) fails.
(cd "$out_dir" && "$GEN" generate --path openapi.json --meta none \
  --config "$ROOT/tools/client-contract/generator.yaml" --output-path precinct_client --fail-on-warning >generate.log 2>&1) ||
  { cat "$out_dir/generate.log" >&2; die "openapi-python-client refused the served document"; }
PYTHONPATH="$out_dir" "$PY" "$ROOT/tools/client-contract/journey.py" "$base" "$admin_email" "$admin_password"
