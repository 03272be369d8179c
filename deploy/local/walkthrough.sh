#!/usr/bin/env bash
# The README's walkthrough, step by step, against a running server: an ADMIN sets up a
# precinct and its staff, a citizen reports anonymously, a dispatcher dispatches, the
# officer accepts, responds and resolves, a supervisor approves closure, and the
# citizen follows it with the tracking token. Fails on the first unexpected answer.
#
#   deploy/local/walkthrough.sh [BASE_URL] [ADMIN_EMAIL] [ADMIN_PASSWORD]
#
# Needs curl and python3 (for reading JSON; `jq -r .field` does the same by hand).
# Run by the e2e test `docs::the_readme_walkthrough_reaches_a_closed_report`.
set -euo pipefail
BASE="${1:-http://127.0.0.1:8080}"
ADMIN_EMAIL="${2:-admin@precinct.local}"
ADMIN_PASSWORD="${3:-$(cat .data/demo-admin-password 2>/dev/null || true)}"
RUN="$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"   # unique e-mails per run

# call METHOD PATH TOKEN [BODY]: prints the body; fails unless the status is 2xx.
call() {
  local method=$1 path=$2 token=$3 body=${4:-}
  local args=(-sS -o /tmp/precinct-walk.$$ -w '%{http_code}' -X "$method" "$BASE$path")
  [[ -n "$token" ]] && args+=(-H "authorization: Bearer $token")
  [[ -n "$body" ]] && args+=(-H 'content-type: application/json' -d "$body")
  local status
  status=$(curl "${args[@]}")
  if [[ "$status" != 2* ]]; then
    echo "walkthrough: $method $path answered $status: $(cat /tmp/precinct-walk.$$)" >&2
    exit 1
  fi
  cat /tmp/precinct-walk.$$
  rm -f /tmp/precinct-walk.$$
}
# field NAME: reads one top-level field of the JSON on stdin.
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
login() { call POST /users/login "" "{\"email\":\"$1\",\"password\":\"$2\"}" | field access_token; }
staff() { # staff ROLE: registers a staff account of the precinct and prints its id
  # (roles: DISPATCHER, SUPERVISOR, PATROL = a patrol officer)
  call POST /users/register "$ADMIN" \
    "{\"email\":\"$1-$RUN@precinct.local\",\"password\":\"walkthrough-$RUN\",\"name\":\"$1\",\"role\":\"$1\",\"station_id\":\"$STATION\"}" |
    field id
}
step() { echo "== $*"; }

step "the ADMIN signs in"
ADMIN=$(login "$ADMIN_EMAIL" "$ADMIN_PASSWORD")

step "a precinct covering the city centre (a square of ±0.05° around its point)"
STATION=$(call POST /stations "$ADMIN" \
  '{"name":"Central","kind":"PRECINCT","latitude":7.07,"longitude":125.61}' | field id)

step "its dispatcher, supervisor and officer"
staff DISPATCHER >/dev/null
staff SUPERVISOR >/dev/null
OFFICER_ID=$(staff PATROL)
DISPATCHER=$(login "DISPATCHER-$RUN@precinct.local" "walkthrough-$RUN")
SUPERVISOR=$(login "SUPERVISOR-$RUN@precinct.local" "walkthrough-$RUN")
OFFICER=$(login "PATROL-$RUN@precinct.local" "walkthrough-$RUN")

step "the dispatcher registers a patrol with the officer; the officer goes on duty"
PATROL=$(call POST /patrols/register "$DISPATCHER" \
  "{\"call_sign\":\"Alpha-$RUN\",\"station_id\":\"$STATION\",\"officer_ids\":[\"$OFFICER_ID\"]}" | field id)
call PUT "/patrols/$PATROL/status" "$OFFICER" '{"status":"AVAILABLE"}' >/dev/null

step "a citizen reports a stolen bike, anonymously (routed to Central by its location)"
SUBMITTED=$(call POST /crimes "" '{"title":"Bike stolen","description":"Blue bike taken from the rack",
  "crime_types":["Theft"],"location":{"latitude":7.07,"longitude":125.61}}')
CRIME=$(echo "$SUBMITTED" | field id)
TRACKING=$(echo "$SUBMITTED" | field tracking_token)

step "the dispatcher dispatches it automatically (the least busy available patrol)"
call POST /dispatch "$DISPATCHER" "{\"crime_id\":\"$CRIME\"}" | field patrol_id

step "the officer accepts, responds and resolves"
call POST "/crimes/$CRIME/accept" "$OFFICER" | field status
call POST "/crimes/$CRIME/respond" "$OFFICER" | field status
call POST "/crimes/$CRIME/resolve" "$OFFICER" '{"resolution_notes":"Bike found and returned"}' | field status

step "the supervisor approves closure"
call POST "/crimes/$CRIME/closure/approve" "$SUPERVISOR" | field status

step "the citizen follows it with the tracking token"
STATUS=$(curl -sS "$BASE/crimes/$CRIME" -H "x-tracking-token: $TRACKING" | field status)
echo "$STATUS"
[[ "$STATUS" == CLOSED ]] || { echo "walkthrough: expected CLOSED, got $STATUS" >&2; exit 1; }

step "its history, event by event (staff view)"
curl -sS "$BASE/crimes/$CRIME/history" -H "authorization: Bearer $SUPERVISOR" |
  python3 -c 'import json,sys; [print(e["position"], e["type"]) for e in json.load(sys.stdin)["items"]]'
echo "walkthrough: report $CRIME is CLOSED"
