#!/usr/bin/env bash
# `cargo nextest …`, with cargo-nextest installed (pinned, from crates.io, into
# .data/tools) where the machine has none — the CI machine has one.
#
#   nextest.sh run [args]   cargo nextest run [args]
#   nextest.sh --ensure     install if missing, run nothing
#
# The test suites run one process per test, never `cargo test`'s one process for all:
# the metrics recorder is process-wide (crates/precinct-api/src/metrics.rs), so tests
# that read /metrics would count each other's requests and streams.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
VERSION="0.9.143"                      # exact pin, the CI machine's version
TOOLS="$ROOT/.data/tools"

if ! command -v cargo-nextest >/dev/null 2>&1; then
  export PATH="$TOOLS/bin:$PATH"
  if ! command -v cargo-nextest >/dev/null 2>&1; then
    printf 'nextest: installing cargo-nextest %s into %s\n' "$VERSION" "$TOOLS" >&2
    cargo install --locked --quiet --version "$VERSION" --root "$TOOLS" cargo-nextest
  fi
fi
[[ ${1:-} == --ensure ]] && exit 0
exec cargo nextest "$@"
