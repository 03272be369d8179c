# shellcheck shell=bash
# Sourced, not run: one real `precinct serve` for a script that tests it from outside
# (client-contract.sh, browser-tests.sh, schemathesis.sh). A FRESH database on the
# DATABASE_URL server, a fresh stream prefix on NATS_URL, a free loopback port and a
# generated ADMIN; at exit the server is stopped and the database and streams dropped
# (unless the caller's keep flag is 1).
#
# The caller sets ROOT, PY (the stack's venv python), NATS_URL, DATABASE_URL,
# PRECINCT_BIN, and defines log and die. Then:
#   test_server_init <name> <out_dir> <keep>  sets run_id, db_name, server_log, db_url,
#                                             port, base, admin_email, admin_password;
#                                             installs the EXIT trap
#   test_server_start [NAME=value ...]        creates the database, starts the server
#                                             with these extra variables, waits until
#                                             /health/ready answers

test_server_init() {
  local name=$1
  out_dir=$2
  test_server_keep=$3
  run_id="$name$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"
  db_name="precinct_$run_id"
  rm -rf "$out_dir"
  mkdir -p "$out_dir"
  server_log="$out_dir/server.log"
  # DATABASE_URL with its database name replaced.
  db_url="$("$PY" - "$DATABASE_URL" "$db_name" <<'PYEOF'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))
PYEOF
)"
  port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  base="http://127.0.0.1:$port"
  admin_email="admin@$run_id.test"
  admin_password="$name-$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')"
  server_pid=""
  trap test_server_cleanup EXIT
  trap 'exit 130' INT TERM
}

test_server_cleanup() {
  local rc=$?
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 ]]; then
    log "server log and output: $out_dir"
  fi
  if [[ $test_server_keep != 1 ]]; then
    psql "$DATABASE_URL" -XqAt -c "drop database if exists \"$db_name\" with (force)" >/dev/null 2>&1 ||
      log "warning: could not drop database $db_name"
    # The streams of this run (JetStream API over the plain NATS protocol).
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

test_server_start() {
  psql "$DATABASE_URL" -XqAt -v ON_ERROR_STOP=1 -c "create database \"$db_name\"" >/dev/null
  (
    export PRECINCT_HTTP_ADDR="127.0.0.1:$port"
    export DATABASE_URL="$db_url" NATS_URL
    export PRECINCT_STREAM_PREFIX="$run_id"
    export PRECINCT_JWT_SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
    export PRECINCT_MASTER_KEY="test:$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
    export PRECINCT_ADMIN_EMAIL="$admin_email" PRECINCT_ADMIN_PASSWORD="$admin_password"
    # Web Push on, as a production server has it (ADR 0032): a fresh VAPID key a run
    # (32 random bytes are a P-256 private key but with probability ~2^-32).
    export PRECINCT_VAPID_PRIVATE_KEY="$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode())')"
    export PRECINCT_VAPID_SUBJECT="mailto:ops@precinct.test"
    export RUST_LOG="${RUST_LOG:-warn}"
    [[ $# -eq 0 ]] || export "$@"
    exec "$PRECINCT_BIN" serve
  ) </dev/null >"$server_log" 2>&1 &
  server_pid=$!
  for _ in $(seq 600); do
    if "$PY" - "$base" <<'PYEOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/health/ready", timeout=2).read()
PYEOF
    kill -0 "$server_pid" 2>/dev/null || { tail -n 30 "$server_log" >&2; die "precinct serve exited"; }
    sleep 0.2
  done
  tail -n 30 "$server_log" >&2
  die "precinct did not become ready"
}
