#!/usr/bin/env bash
# Lints the committed OpenAPI document (schemas/openapi.json, the bytes GET /openapi.json
# serves; a test keeps them equal) with two independent linters, pinned in
# tools/openapi-lint/package-lock.json: `redocly lint` (recommended rules) and
# `spectral lint` (spectral:oas). Fails on any error; warnings are printed.
# Installs the linters with `npm ci` the first time (and when the lockfile changes).
set -euo pipefail
cd "$(dirname "$0")/../.."
tools=tools/openapi-lint
doc=schemas/openapi.json
if ! command -v npm >/dev/null 2>&1; then
  echo "openapi-lint: npm (Node.js ≥ 20) is needed" >&2
  exit 1
fi
stamp="$tools/node_modules/.installed-lock"
if [[ ! -f "$stamp" ]] || ! cmp -s "$tools/package-lock.json" "$stamp"; then
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$tools/package-lock.json" "$stamp"
fi
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
echo "== redocly lint (recommended)"
"$tools/node_modules/.bin/redocly" lint --config "$tools/redocly.yaml" --format=stylish "$doc"
echo "== spectral lint (spectral:oas)"
"$tools/node_modules/.bin/spectral" lint --ruleset "$tools/.spectral.yaml" --fail-severity=error "$doc"
