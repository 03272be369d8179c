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

# --- a fresh database, prefix and port; the server -----------------------------------
source "$ROOT/deploy/local/test-server.sh"
test_server_init contract "$target_dir/client-contract" "${CONTRACT_KEEP:-0}"
test_server_start

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
