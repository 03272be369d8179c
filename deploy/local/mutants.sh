#!/usr/bin/env bash
# Mutation testing with cargo-mutants (crates.io), pinned, installed once into the
# checkout (.data/tools), over the domain, application and projection crates.
#
#   mutants.sh [crate ...]   default: precinct-domain precinct-app precinct-projections
#
# Each crate is mutated on its own and tested with its own tests; the projections, whose
# tests are the end-to-end suite, with the e2e tests that exercise them
# (MUTANTS_E2E_FILTER: `projections:: model poison:: queries:: live::` by default).
# Results: target/mutants/<crate>/mutants.out (caught.txt, missed.txt, timeout.txt,
# unviable.txt). Knobs: MUTANTS_JOBS (parallel builds, default 1), MUTANTS_TIMEOUT
# (seconds per test run), MUTANTS_ARGS (extra arguments, split on spaces, e.g.
# "--file crates/precinct-domain/src/report/*.rs"), MUTANTS_RE (one regex passed whole as
# `--re`: only the mutants whose names match, e.g. to re-test last run's missed ones).
# cargo-mutants builds in the target directory cargo would use (CARGO_TARGET_DIR when
# set): build nothing else of the same crates into it while a run is going, or a test
# can run against another build's library (cargo's fingerprints track the workspace-
# relative paths, which the scratch copy shares with the checkout).
# Not part of `make test`: a full run takes hours on two cores (docs/reliability.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
VERSION="27.1.0"                       # exact pin
TOOLS="$ROOT/.data/tools"
BIN="$TOOLS/bin/cargo-mutants"

log() { printf 'mutants: %s\n' "$*" >&2; }

if [[ "$("$BIN" mutants --version 2>/dev/null || true)" != "cargo-mutants $VERSION" ]]; then
  log "installing cargo-mutants $VERSION into $TOOLS"
  cargo install --locked --quiet --version "$VERSION" --root "$TOOLS" cargo-mutants
fi
[[ "$("$BIN" mutants --version)" == "cargo-mutants $VERSION" ]] ||
  { log "cargo-mutants does not report $VERSION"; exit 1; }

crates=("$@")
((${#crates[@]})) || crates=(precinct-domain precinct-app precinct-projections)
status=0
for crate in "${crates[@]}"; do
  out="$ROOT/target/mutants/$crate"
  mkdir -p "$out"
  extra=()
  select=(--package "$crate")
  test_args=(--lib --tests)
  if [[ $crate == precinct-projections ]]; then
    # The projections are tested end to end: their mutants need the stack and e2e
    # tests. Two quirks of cargo-mutants 27.1 shape this: with `--package`, a
    # `--test-package` outside it is not found (the mutants would run the crate's own,
    # empty, tests), so the crate is named by its files; and the baseline always runs
    # the mutated package's tests, whatever `--test-package` says (and fails: no `e2e`
    # target there), so it is skipped — with a fixed timeout instead of one derived
    # from it.
    select=(--file 'crates/precinct-projections/**')
    # The e2e tests run one process each, as in `make test` (deploy/local/nextest.sh:
    # under `cargo test` the tests reading /metrics count each other's streams).
    bash "$ROOT/deploy/local/nextest.sh" --ensure
    extra=(--test-package precinct-tests --baseline skip --test-tool nextest)
    [[ -n ${MUTANTS_TIMEOUT:-} ]] || extra+=(--timeout 300)
    read -r -a filter <<<"${MUTANTS_E2E_FILTER:-projections:: model poison:: queries:: live::}"
    test_args=(--test e2e "${filter[@]}")
    # Our own baseline instead: the unmutated tree must pass these tests, or every
    # mutant would count as caught (a stopped stack, a test failing already).
    if [[ " ${MUTANTS_ARGS:-} " != *" --list "* ]]; then
      log "baseline: cargo nextest run -p precinct-tests ${test_args[*]}"
      (cd "$ROOT" && PATH="$TOOLS/bin:$PATH" bash deploy/local/nextest.sh run \
        -p precinct-tests "${test_args[@]}") ||
        { log "the e2e tests fail on the unmutated tree; no mutants tested"; exit 1; }
    fi
  fi
  log "$crate -> $out"
  jobs="${MUTANTS_JOBS:-1}"
  env_args=()
  if ((jobs > 1)); then
    # Parallel jobs must not share one target directory: two scratch copies building
    # into it at once leave cargo "Fresh" on a mutant it never compiled (seen on
    # 2026-11-30: every mutant then ran against another one's library). Each job gets
    # its own copy of the target directory instead.
    env_args=(-u CARGO_TARGET_DIR)
    extra+=(--copy-target true)
  fi
  # The crate's own tests and the e2e ones, not its doctests (examples, not checks).
  # shellcheck disable=SC2086
  if ! (cd "$ROOT" && env "${env_args[@]}" PATH="$TOOLS/bin:$PATH" cargo mutants "${select[@]}" \
      "${extra[@]}" --jobs "$jobs" --output "$out" \
      ${MUTANTS_TIMEOUT:+--timeout "$MUTANTS_TIMEOUT"} ${MUTANTS_RE:+--re "$MUTANTS_RE"} \
      --no-shuffle ${MUTANTS_ARGS:-} -- "${test_args[@]}"); then
    status=1
  fi
  for f in caught missed timeout unviable; do
    printf '%s %s: %s\n' "$crate" "$f" "$(wc -l <"$out/mutants.out/$f.txt" 2>/dev/null || echo 0)"
  done
done
exit "$status"
