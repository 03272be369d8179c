#!/usr/bin/env bash
# A local 3-node NATS JetStream cluster on loopback, for running the suites with
# replicated streams (make test-cluster) and for failure drills. See docs/operations.md.
#
#   cluster.sh up                start (or reuse) nodes n1..n3, wait for a JetStream
#                                meta leader, write .data/cluster/env, print the env line(s)
#   cluster.sh down [--purge]    stop the nodes this script started (--purge: delete their stores)
#   cluster.sh env               print the env line(s) written by the last `up`
#   cluster.sh kill-node N       SIGKILL node N (a crash); waits until the others elect a meta leader
#   cluster.sh stop-node N       SIGTERM node N (a clean shutdown)
#   cluster.sh start-node N      start node N again (same store) and wait until it is current
#   cluster.sh status            say what runs, who leads (on stderr)
#
# Only env lines go to stdout; all chatter goes to stderr. Safe to run repeatedly:
# everything is checked before it is (re)done, and invocations are serialised with
# flock on .data/cluster/.lock (separate from stack.sh's lock: both may run at once).
#
# Ports (node N = 1..3 listens on BASE+N, loopback only):
#   PRECINCT_CLUSTER_CLIENT_BASE   14300  client ports 14301-14303
#   PRECINCT_CLUSTER_ROUTE_BASE    16300  cluster (route) ports 16301-16303
#   PRECINCT_CLUSTER_MONITOR_BASE  18300  HTTP monitoring 18301-18303 (/healthz, /jsz, /varz)
#   PRECINCT_CLUSTER_WAIT_SECS     30     how long to wait for health / a meta leader
#   PRECINCT_CLUSTER_URL_LIST      0      1: NATS_URL lists all three nodes, comma-separated.
#                                         Needs EventLog::connect to split on ',' (async-nats
#                                         0.51 parses a &str as ONE url); until then NATS_URL
#                                         names node 1 and the client learns the other nodes
#                                         from the server's INFO (connect_urls) once connected.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
DATA="$ROOT/.data"
CDIR="$DATA/cluster"
ENV_FILE="$CDIR/env"
PORTS_FILE="$CDIR/ports"
LOCK_FILE="$CDIR/.lock"
TEMPLATE="$ROOT/deploy/local/cluster-node.conf"
STACK="$ROOT/deploy/local/stack.sh"
NATS_VERSION="2.15.1"
NODES=(1 2 3)
CLUSTER_NAME="precinct-local"

WAIT_SECS="${PRECINCT_CLUSTER_WAIT_SECS:-30}"
URL_LIST="${PRECINCT_CLUSTER_URL_LIST:-0}"

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '5,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

take_lock() {
  mkdir -p "$CDIR"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK_FILE"
    flock -w 300 9 || die "timed out waiting for $LOCK_FILE (another cluster.sh running?)"
  fi
}

# --- ports -------------------------------------------------------------------
# A running cluster keeps the ports it was started with (recorded in $PORTS_FILE)
# unless the caller names bases explicitly.
CLIENT_BASE=""
ROUTE_BASE=""
MONITOR_BASE=""
load_ports() {
  local c="" r="" m=""
  if [[ -f $PORTS_FILE ]] && any_node_running; then
    # shellcheck disable=SC1090
    read -r c r m <"$PORTS_FILE" || true
  fi
  CLIENT_BASE="${PRECINCT_CLUSTER_CLIENT_BASE:-${c:-14300}}"
  ROUTE_BASE="${PRECINCT_CLUSTER_ROUTE_BASE:-${r:-16300}}"
  MONITOR_BASE="${PRECINCT_CLUSTER_MONITOR_BASE:-${m:-18300}}"
  local v
  for v in CLIENT_BASE ROUTE_BASE MONITOR_BASE; do
    [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} + 3 < 65536)) || die "$v must be a port number, got '${!v}'"
  done
}
client_port() { echo $((CLIENT_BASE + $1)); }
route_port() { echo $((ROUTE_BASE + $1)); }
monitor_port() { echo $((MONITOR_BASE + $1)); }

node_dir() { echo "$CDIR/n$1"; }
node_conf() { echo "$CDIR/n$1/nats.conf"; }
node_pidfile() { echo "$CDIR/n$1/nats.pid"; }
node_log() { echo "$CDIR/n$1/nats.log"; }

check_node_arg() {
  [[ ${1:-} =~ ^[123]$ ]] || die "node must be 1, 2 or 3, got '${1:-}'"
}

# --- processes -----------------------------------------------------------------

close_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd="${fd##*/}"
    if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then
      eval "exec $fd>&-" 2>/dev/null || true
    fi
  done
}

port_open() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# True while pid runs (a zombie awaiting its reaper does not count).
alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state="$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ $state != Z && $state != X ]]
}

# Pid of node N if it is alive and is OUR nats-server (its command line names
# the node's config file): guards against recycled pids.
node_pid() {
  local pidfile pid conf a
  pidfile="$(node_pidfile "$1")"
  conf="$(node_conf "$1")"
  [[ -f $pidfile ]] || return 1
  pid="$(tr -dc '0-9' <"$pidfile" 2>/dev/null)" || return 1
  [[ -n $pid ]] && alive "$pid" || return 1
  local -a args=()
  mapfile -d '' -t args <"/proc/$pid/cmdline" 2>/dev/null || return 1
  for a in "${args[@]}"; do
    if [[ $a == "$conf" ]]; then
      printf '%s\n' "$pid"
      return 0
    fi
  done
  return 1
}

any_node_running() {
  local n
  for n in "${NODES[@]}"; do
    node_pid "$n" >/dev/null && return 0
  done
  return 1
}

NATS_BIN=""
ensure_bin() {
  # stack.sh installs the pinned nats-server into .data/venv when missing.
  NATS_BIN="$(bash "$STACK" nats-bin)" || die "cannot get nats-server from stack.sh"
  [[ "$("$NATS_BIN" --version 2>/dev/null)" == "nats-server: v$NATS_VERSION" ]] ||
    die "$NATS_BIN is not v$NATS_VERSION"
}

PY=""
find_py() {
  if [[ -x $DATA/venv/bin/python ]]; then PY="$DATA/venv/bin/python"; else PY="$(command -v python3)"; fi
  [[ -n $PY ]] || die "python3 is needed to read the monitoring JSON"
}

# The meta leader's name as node N sees it ("" when none or unreachable).
meta_leader() {
  local jsz
  jsz="$(curl -sf --max-time 2 "http://127.0.0.1:$(monitor_port "$1")/jsz" 2>/dev/null)" || return 0
  "$PY" -c 'import json,sys
try:
    m = json.load(sys.stdin).get("meta_cluster") or {}
    print(m.get("leader", "") if m.get("cluster_size", 0) >= 1 else "")
except Exception:
    print("")' <<<"$jsz"
}

# Node N is healthy: pinned version, sync_always, JetStream current with a meta
# leader (/healthz is 503 until then), client port greets with INFO.
node_healthy() {
  local n="$1" mp varz
  mp="$(monitor_port "$n")"
  curl -sf --max-time 2 "http://127.0.0.1:$mp/healthz" >/dev/null || return 1
  varz="$(curl -sf --max-time 2 "http://127.0.0.1:$mp/varz")" || return 1
  grep -Eq "\"port\": *$(client_port "$n")," <<<"$varz" || return 1
  grep -Eq "\"version\": *\"$NATS_VERSION\"" <<<"$varz" || return 1
  grep -Eq '"sync_always": *true' <<<"$varz" || return 1
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && IFS= read -r -t 2 line <&3 && [[ $line == INFO* ]]' \
    _ "$(client_port "$n")" 2>/dev/null
}

# Waits until every node in "$@" is healthy and the first names a meta leader
# (other than $NOT_LEADER, when set: a node that was just killed).
NOT_LEADER=""
wait_healthy() {
  local deadline=$((SECONDS + WAIT_SECS)) n ok leader
  while ((SECONDS < deadline)); do
    ok=1
    for n in "$@"; do
      node_healthy "$n" || { ok=0; break; }
    done
    if ((ok)); then
      leader="$(meta_leader "$1")"
      if [[ -n $leader && $leader != "$NOT_LEADER" ]]; then
        LEADER="$leader"
        return 0
      fi
    fi
    sleep 0.3
  done
  return 1
}
LEADER=""

render_conf() {
  local n="$1" dir routes="" m
  dir="$(node_dir "$n")"
  mkdir -p "$dir/store"
  for m in "${NODES[@]}"; do
    [[ $m == "$n" ]] && continue
    routes+="    nats-route://127.0.0.1:$(route_port "$m")"$'\n'
  done
  routes="${routes%$'\n'}"
  local tmp="$dir/nats.conf.tmp.$$"
  N="n$n" CP="$(client_port "$n")" MP="$(monitor_port "$n")" RP="$(route_port "$n")" \
  SD="$dir/store" PF="$(node_pidfile "$n")" RT="$routes" \
    "$PY" -c 'import os,sys
t = open(sys.argv[1]).read()
for k, v in {"@SERVER_NAME@": "N", "@CLIENT_PORT@": "CP", "@MONITOR_PORT@": "MP",
             "@ROUTE_PORT@": "RP", "@STORE_DIR@": "SD", "@PID_FILE@": "PF", "@ROUTES@": "RT"}.items():
    t = t.replace(k, os.environ[v])
sys.stdout.write(t)' "$TEMPLATE" >"$tmp"
  mv -f "$tmp" "$(node_conf "$n")"
}

# Starts node N unless it runs; does not wait for health.
launch_node() {
  local n="$1" pid p conf
  if pid="$(node_pid "$n")"; then
    log "n$n already running (pid $pid)"
    return 0
  fi
  rm -f "$(node_pidfile "$n")"
  render_conf "$n"
  conf="$(node_conf "$n")"
  for p in "$(client_port "$n")" "$(route_port "$n")" "$(monitor_port "$n")"; do
    if port_open "$p"; then
      die "127.0.0.1:$p is in use by a process this script did not start;" \
        "pick other bases with PRECINCT_CLUSTER_{CLIENT,ROUTE,MONITOR}_BASE"
    fi
  done
  "$NATS_BIN" -t -c "$conf" >/dev/null 2>&1 ||
    die "nats-server rejects $conf: $("$NATS_BIN" -t -c "$conf" 2>&1 | tail -n 3)"
  log "starting n$n: client 127.0.0.1:$(client_port "$n"), route $(route_port "$n"), monitor $(monitor_port "$n") (log $(node_log "$n"))"
  (
    close_fds
    cd /
    exec setsid "$NATS_BIN" -c "$conf"
  ) </dev/null >>"$(node_log "$n")" 2>&1 &
  # The pid file is written by the server itself; give it a moment.
  local i
  for ((i = 0; i < 50; i++)); do
    node_pid "$n" >/dev/null && return 0
    sleep 0.1
  done
  tail -n 20 "$(node_log "$n")" >&2 || true
  die "n$n did not start (see $(node_log "$n"))"
}

stop_node() {
  local n="$1" sig="${2:-TERM}" pid i
  if pid="$(node_pid "$n")"; then
    log "stopping n$n (pid $pid) with SIG$sig"
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      log "n$n (pid $pid) still alive after 15s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  else
    log "n$n is not running"
  fi
  # A SIGKILLed server leaves its pid file behind.
  rm -f "$(node_pidfile "$n")"
}

urls() {
  local n out=""
  for n in "${NODES[@]}"; do
    out+="${out:+,}nats://127.0.0.1:$(client_port "$n")"
  done
  printf '%s\n' "$out"
}

write_env() {
  local tmp="$ENV_FILE.tmp.$$" url
  if [[ $URL_LIST == 1 ]]; then url="$(urls)"; else url="nats://127.0.0.1:$(client_port 1)"; fi
  {
    printf 'export NATS_URL=%s\n' "$url"
    printf 'export PRECINCT_CLUSTER_NATS_URLS=%s\n' "$(urls)"
  } >"$tmp"
  mv -f "$tmp" "$ENV_FILE"
  printf '%s %s %s\n' "$CLIENT_BASE" "$ROUTE_BASE" "$MONITOR_BASE" >"$PORTS_FILE"
}

print_env() {
  [[ -f $ENV_FILE ]] || die "$ENV_FILE not found: run 'deploy/local/cluster.sh up' first"
  cat "$ENV_FILE"
}

cmd_up() {
  ensure_bin
  local n
  for n in "${NODES[@]}"; do
    launch_node "$n"
  done
  log "waiting (up to ${WAIT_SECS}s) for n1..n3 to be healthy with a JetStream meta leader"
  if ! wait_healthy "${NODES[@]}"; then
    for n in "${NODES[@]}"; do
      log "--- n$n: last log lines"
      tail -n 8 "$(node_log "$n")" >&2 || true
    done
    die "cluster $CLUSTER_NAME did not become healthy (nodes keep running: 'cluster.sh status', 'cluster.sh down')"
  fi
  log "cluster $CLUSTER_NAME up: 3 nodes, meta leader $LEADER, sync_interval always"
  write_env
  print_env
}

cmd_down() {
  local purge=0 n
  case "${1:-}" in
    "") ;;
    --purge) purge=1 ;;
    *) usage ;;
  esac
  for n in "${NODES[@]}"; do
    stop_node "$n" TERM
  done
  rm -f "$ENV_FILE" "$PORTS_FILE"
  if ((purge)); then
    log "deleting the stores in $CDIR/n{1,2,3}"
    for n in "${NODES[@]}"; do
      rm -rf "$(node_dir "$n")"
    done
  fi
}

others() {
  local n
  for n in "${NODES[@]}"; do
    [[ $n == "$1" ]] || printf '%s ' "$n"
  done
}

cmd_kill_node() {
  local n="$1" pid
  pid="$(node_pid "$n")" || die "n$n is not running"
  log "SIGKILL n$n (pid $pid), meta leader before: $(meta_leader "$n")"
  kill -KILL "$pid"
  local i
  for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.05; done
  rm -f "$(node_pidfile "$n")"
  local -a rest
  read -r -a rest <<<"$(others "$n")"
  local live=() m
  for m in "${rest[@]}"; do node_pid "$m" >/dev/null && live+=("$m"); done
  if ((${#live[@]} < 2)); then
    log "only ${#live[@]} node(s) left: no quorum, JetStream is unavailable until a node comes back"
    return 0
  fi
  NOT_LEADER="n$n"
  if wait_healthy "${live[@]}"; then
    log "n$n is down; n${live[0]} and n${live[1]} have meta leader $LEADER"
  else
    log "warning: the remaining nodes report no healthy meta leader after ${WAIT_SECS}s"
  fi
}

cmd_start_node() {
  local n="$1"
  ensure_bin
  launch_node "$n"
  if wait_healthy "$n"; then
    log "n$n is up and current; meta leader $LEADER"
  else
    tail -n 10 "$(node_log "$n")" >&2 || true
    die "n$n did not become current within ${WAIT_SECS}s (it keeps running; see $(node_log "$n"))"
  fi
}

cmd_status() {
  local n pid state
  for n in "${NODES[@]}"; do
    if pid="$(node_pid "$n")"; then
      if node_healthy "$n"; then state="healthy"; else state="NOT healthy"; fi
      log "n$n: running (pid $pid), $state, client 127.0.0.1:$(client_port "$n"), meta leader seen: $(meta_leader "$n")"
    else
      log "n$n: not running"
    fi
  done
  if [[ -f $ENV_FILE ]]; then
    log "env ($ENV_FILE):"
    sed 's/^/cluster:   /' "$ENV_FILE" >&2
  fi
}

# =============================================================================

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  up)
    [[ $# -eq 0 ]] || usage
    take_lock; find_py; load_ports; cmd_up ;;
  down)
    [[ $# -le 1 ]] || usage
    take_lock; load_ports; cmd_down "$@" ;;
  env)
    print_env ;;
  kill-node)
    [[ $# -eq 1 ]] || usage
    check_node_arg "$1"; take_lock; find_py; load_ports; cmd_kill_node "$1" ;;
  stop-node)
    [[ $# -eq 1 ]] || usage
    check_node_arg "$1"; take_lock; load_ports; stop_node "$1" TERM ;;
  start-node)
    [[ $# -eq 1 ]] || usage
    check_node_arg "$1"; take_lock; find_py; load_ports; cmd_start_node "$1" ;;
  status)
    find_py; load_ports; cmd_status ;;
  *)
    usage ;;
esac
