# Precinct: local development / CI entry points. See deploy/local/README.md.
#
#   make stack   start (or reuse) NATS JetStream + PostgreSQL; prints the env lines
#   make build   cargo build --workspace --all-targets
#   make test    stack + the whole test suite (nextest; `ci` profile when CI is set),
#                then the OpenAPI lint, the alert-rule tests (promtool), the generated-client
#                journey, the console's browser tests (deploy/local/browser-tests.sh) and the
#                short schemathesis pass (deploy/local/schemathesis.sh), then the short
#                cluster pass (make chaos-cluster-short)
#   make chaos   the long schemathesis pass, then the long fault campaign (single node
#                and 3-node cluster); see the target
#   make bench   the benchmark suite; see the target and docs/performance.md
#   make run     stack + migrate + serve with a demo admin (Ctrl-C stops the server only)
#   make stop    stop what deploy/local/stack.sh started (NATS, local PG cluster)
#   make fmt     cargo fmt --all
#   make lint    cargo clippy --workspace --all-targets -- -D warnings
#   make test-cluster  stack (PostgreSQL) + a local 3-node NATS cluster + the e2e
#                command and query suites with 3-replica streams (see the target)
#   make mutants mutation testing (cargo-mutants, pinned) over the domain, application
#                and projection crates; not part of `make test` (hours on two cores)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
# Each recipe runs in ONE shell with -e: any failing line fails the target.
# (With .ONESHELL the leading '@' on a recipe's first line silences the whole recipe.)
.ONESHELL:
.DEFAULT_GOAL := build

CARGO ?= cargo
STACK := bash deploy/local/stack.sh
# Extra arguments for the test runner, e.g. make test TEST_ARGS='-E "test(login)"'
TEST_ARGS ?=

.PHONY: stack build test run stop fmt lint

stack:
	@$(STACK) up

build:
	$(CARGO) build --workspace --all-targets

test:
	@$(STACK) up
	source .data/env
	export NATS_URL DATABASE_URL
	PRECINCT_NATS_BIN="$$($(STACK) nats-bin)"
	export PRECINCT_NATS_BIN
	# The chaos test runs the real binary as child processes: test builds do not
	# build another package's binary, so build it first.
	$(CARGO) build -p precinct --bin precinct
	# One process per test, never `cargo test` (see deploy/local/nextest.sh).
	if [[ -n "$${CI:-}" ]]; then export NEXTEST_PROFILE=ci; fi
	bash deploy/local/nextest.sh run --workspace --no-fail-fast --no-tests=warn $(TEST_ARGS)
	# The OpenAPI document through two independent linters (pinned; npm ci once).
	bash deploy/local/openapi-lint.sh
	# The Prometheus alert rules: promtool check + unit tests (Debian's promtool, pinned).
	bash deploy/local/promtool.sh
	# A client generated from the served /openapi.json (openapi-python-client, pinned)
	# runs a report from submission to CLOSED through the generated code only.
	PRECINCT_BIN="$${CARGO_TARGET_DIR:-target}/debug/precinct" bash deploy/local/client-contract.sh
	# The console in a real browser (Debian's chromium + pinned playwright-core): a
	# dispatcher and an officer work a report live; screenshots in target/console-screenshots/.
	PRECINCT_BIN="$${CARGO_TARGET_DIR:-target}/debug/precinct" bash deploy/local/browser-tests.sh
	# The short contract-fuzzing pass (schemathesis against /openapi.json as anonymous,
	# citizen, officer, dispatcher and admin); SKIP_FUZZ=1 leaves it out locally.
	if [[ -z "$${SKIP_FUZZ:-}" ]]; then
		bash deploy/local/schemathesis.sh short
	fi
	# The short cluster pass: the fault campaign's workload and checker against a fresh
	# local 3-node cluster (R3 streams), each node killed once; SKIP_CLUSTER=1 leaves it out.
	if [[ -z "$${SKIP_CLUSTER:-}" ]]; then
		$(MAKE) --no-print-directory chaos-cluster-short
	fi

run:
	@$(STACK) up
	source .data/env
	export NATS_URL DATABASE_URL
	# Demo admin and JWT secret: generated once per checkout and kept in .data/, so
	# re-runs match the stored admin and issued tokens survive a restart.
	if [[ ! -s .data/demo-admin-password ]]; then
		( umask 077; echo "demo-$$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')" >.data/demo-admin-password )
	fi
	if [[ ! -s .data/jwt-secret ]]; then
		( umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >.data/jwt-secret )
	fi
	export PRECINCT_ADMIN_EMAIL="$${PRECINCT_ADMIN_EMAIL:-admin@precinct.local}"
	export PRECINCT_ADMIN_PASSWORD="$${PRECINCT_ADMIN_PASSWORD:-$$(cat .data/demo-admin-password)}"
	export PRECINCT_JWT_SECRET="$${PRECINCT_JWT_SECRET:-$$(cat .data/jwt-secret)}"
	# Master key that wraps the per-subject keys of personal data: losing it loses
	# every sealed field, so it is kept with the data, generated once.
	if [[ ! -s .data/master-key ]]; then
		( umask 077; echo "dev1:$$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" >.data/master-key )
	fi
	export PRECINCT_MASTER_KEY="$${PRECINCT_MASTER_KEY:-$$(cat .data/master-key)}"
	$(CARGO) build --release -p precinct
	$(CARGO) run --release -q -p precinct -- migrate
	echo "================================================================"
	echo " Precinct on http://$${PRECINCT_HTTP_ADDR:-127.0.0.1:8080}"
	echo " console:   http://$${PRECINCT_HTTP_ADDR:-127.0.0.1:8080}/console"
	echo " admin (created by serve if missing): $$PRECINCT_ADMIN_EMAIL / $$PRECINCT_ADMIN_PASSWORD"
	echo " Ctrl-C stops the server; 'make stop' stops NATS and PostgreSQL."
	echo "================================================================"
	exec $(CARGO) run --release -q -p precinct -- serve

stop:
	$(STACK) down

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# ---------------------------------------------------------------------------
# make test-cluster   the end-to-end command and query suites against a local
#                     3-node NATS JetStream cluster (deploy/local/cluster.sh), every
#                     stream created with 3 replicas; PostgreSQL from the local stack.
#                     Starts a fresh cluster and stops it (deleting its stores) at the
#                     end, pass or fail; KEEP_CLUSTER=1 leaves it running.
#                     Example: make test-cluster CLUSTER_FILTER='test(/^commands::idempotent/)'
CLUSTER := bash deploy/local/cluster.sh
CLUSTER_FILTER ?= binary(e2e) & test(/^(commands|queries)::/)
KEEP_CLUSTER ?=

.PHONY: test-cluster
test-cluster:
	@$(STACK) up >/dev/null
	source .data/env
	export DATABASE_URL
	PRECINCT_NATS_BIN="$$($(STACK) nats-bin)"
	export PRECINCT_NATS_BIN
	if [[ -z "$(KEEP_CLUSTER)" ]]; then
		trap 'rc=$$?; $(CLUSTER) down --purge || true; exit $$rc' EXIT
	fi
	cluster_env="$$($(CLUSTER) up)"
	eval "$$cluster_env"
	export NATS_URL
	export PRECINCT_TEST_NATS_REPLICAS=3
	echo "test-cluster: NATS_URL=$$NATS_URL (3 nodes), DATABASE_URL=$$DATABASE_URL, replicas 3" >&2
	if [[ -n "$${CI:-}" ]]; then export NEXTEST_PROFILE=ci; fi
	bash deploy/local/nextest.sh run -p precinct-tests --no-fail-fast -E '$(CLUSTER_FILTER)' $(TEST_ARGS)

# ---------------------------------------------------------------------------
# make bench   the benchmark suite (crates/precinct-bench; results and analysis in
#              docs/performance.md): stack up (or reused), release build of `precinct`
#              and `precinct-bench`, then ONE bounded run (hard limit BENCH_BUDGET_SECS,
#              default 660 s) that measures the raw ceilings, starts `precinct serve` as
#              a child on a fresh database and stream prefix, runs every workload, kills
#              the server, prints one table and the self-checks, writes
#              target/bench/results.json, and fails (non-zero exit) when any workload's
#              self-check fails (lost/doubled, rebuilt = live, fan-out, near). Loopback only. Knobs: BENCH_* (crates/precinct-bench/src/config.rs), e.g.
#              make bench BENCH_REBUILD_EVENTS=1000000 BENCH_BUDGET_SECS=900
.PHONY: bench
bench:
	@$(STACK) up >/dev/null
	source .data/env
	export NATS_URL DATABASE_URL
	# The private no-fsync nats-server of ceilings a′/b′ is the same pinned binary.
	BENCH_NATS_BIN="$${BENCH_NATS_BIN:-$$($(STACK) nats-bin)}"
	export BENCH_NATS_BIN
	$(CARGO) build --release -p precinct -p precinct-bench
	bench_target="$${CARGO_TARGET_DIR:-target}"
	export PRECINCT_BIN="$${PRECINCT_BIN:-$$bench_target/release/precinct}"
	export BENCH_OUT="$${BENCH_OUT:-target/bench}"
	"$$bench_target/release/precinct-bench"

# ---------------------------------------------------------------------------
# make chaos   the long schemathesis pass (deploy/local/schemathesis.sh long), then
#              the long fault campaign (tests/src/chaos; docs/reliability.md). Builds
#              `precinct` and `precinct-chaos`, then runs (1) the single-node campaign:
#              a private nats-server (sync_interval: always) and a private PostgreSQL
#              on free loopback ports, three `precinct serve` children (the API with
#              an SLA worker; a projector; a standby projector with a second SLA
#              worker), concurrent HTTP clients, and ≥ 20 seeded random faults of every
#              kind (kill -9 and SIGSTOP/SIGCONT of each process, pg_ctl stop -m
#              immediate); (2) the same workload against a fresh local 3-node cluster
#              (R3 streams), killing one node at a time; the cluster is stopped and
#              purged at the end, pass or fail. The last line is `faults: N,
#              acknowledged: A, lost: L, duplicated: D, read-model mismatches: M,
#              violations: V, result: PASS|FAIL`;
#              the target fails unless L = D = M = 0 and every check passed.
#              Knobs: PRECINCT_CHAOS_SEED (repeat a schedule), PRECINCT_CHAOS_FAULTS,
#              PRECINCT_CHAOS_CAMPAIGNS=single|cluster, PRECINCT_CHAOS_KEEP=1 (keep logs).
.PHONY: chaos
chaos:
	@$(STACK) up >/dev/null
	source .data/env
	export NATS_URL DATABASE_URL
	PRECINCT_NATS_BIN="$$($(STACK) nats-bin)"
	export PRECINCT_NATS_BIN
	# The long contract-fuzzing pass first (the campaign's summary must stay last).
	if [[ -z "$${SKIP_FUZZ:-}" ]]; then
		bash deploy/local/schemathesis.sh long
	fi
	$(CARGO) build -p precinct --bin precinct
	$(CARGO) build -p precinct-tests --bin precinct-chaos
	chaos_target="$${CARGO_TARGET_DIR:-target}/debug"
	export PRECINCT_BIN="$$chaos_target/precinct"
	# Quiet clean-up: the campaign's summary stays the last line.
	trap 'rc=$$?; $(CLUSTER) down --purge >/dev/null 2>&1 || true; exit $$rc' EXIT
	cluster_env="$$($(CLUSTER) up)"
	eval "$$cluster_env"
	export PRECINCT_CHAOS_CLUSTER_URL="$$NATS_URL"
	"$$chaos_target/precinct-chaos"

# ---------------------------------------------------------------------------
# make chaos-cluster-short   the cluster pass of `make test` (about a minute): a fresh
#              local 3-node cluster (deploy/local/cluster.sh, R3 streams), the fault
#              campaign's workload and checker (tests/src/chaos, `Settings::cluster_short`),
#              each node killed with SIGKILL once and restarted; the cluster is stopped and
#              purged at the end, pass or fail. Same last line and exit status as `make chaos`.
.PHONY: chaos-cluster-short
chaos-cluster-short:
	@$(STACK) up >/dev/null
	PRECINCT_NATS_BIN="$$($(STACK) nats-bin)"
	export PRECINCT_NATS_BIN
	$(CARGO) build -q -p precinct --bin precinct
	$(CARGO) build -q -p precinct-tests --bin precinct-chaos
	chaos_target="$${CARGO_TARGET_DIR:-target}/debug"
	export PRECINCT_BIN="$$chaos_target/precinct"
	# A fresh cluster: one left running (e.g. by KEEP_CLUSTER=1) is stopped and purged.
	$(CLUSTER) down --purge >/dev/null 2>&1 || true
	trap 'rc=$$?; $(CLUSTER) down --purge >/dev/null 2>&1 || true; exit $$rc' EXIT
	cluster_env="$$($(CLUSTER) up)"
	eval "$$cluster_env"
	PRECINCT_CHAOS_CLUSTER_URL="$$NATS_URL" PRECINCT_CHAOS_CAMPAIGNS=cluster-short \
		"$$chaos_target/precinct-chaos"

# ---------------------------------------------------------------------------
# make mutants   mutation testing with cargo-mutants (pinned; installed once into
#                .data/tools by deploy/local/mutants.sh) over precinct-domain,
#                precinct-app and precinct-projections (the last one against the e2e
#                suite, so the stack is started). Results in target/mutants/<crate>/;
#                score and surviving mutants in docs/reliability.md. Too slow for
#                `make test` on the two-core CI. Knobs: MUTANTS_CRATES (e.g.
#                "precinct-domain"), MUTANTS_JOBS, MUTANTS_TIMEOUT, MUTANTS_ARGS.
MUTANTS_CRATES ?=
.PHONY: mutants
mutants:
	@$(STACK) up >/dev/null
	source .data/env
	export NATS_URL DATABASE_URL
	PRECINCT_NATS_BIN="$$($(STACK) nats-bin)"
	export PRECINCT_NATS_BIN
	bash deploy/local/mutants.sh $(MUTANTS_CRATES)
