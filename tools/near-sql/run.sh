#!/usr/bin/env bash
# The public list's `near=` (GET /crimes?near=lat,lon&radius_m=500, anonymous) timed in
# PostgreSQL alone over 1,000,000 synthetic reports spread over the bench's city — the
# measurement in docs/performance.md "`near=` through a grid-cell index (issue 15)".
# Builds a scratch database with the read-model migrations, then runs the example
# `near_sql` of precinct-readmodel: the plan of the public list's statement at one
# point, then three statements from NEAR_CLIENTS connections for NEAR_SECS seconds each
# at random points — the one before the public-cell index (commit dafb9c5), today's with
# every column (`queries::list_reports`) and today's with the public columns the server
# sends anonymous callers (`queries::list_public_reports`) —: queries/s, p50/p99 and the
# PostgreSQL backends' CPU per query from /proc (so PostgreSQL must run on this machine),
# and last a check of the three against a brute-force scan. Loopback only; bounded.
#
#   bash tools/near-sql/run.sh [postgres://postgres@127.0.0.1:5432]
#   NEAR_KEEP=1 keeps the database (and reuses a kept one); NEAR_CLIENTS (2), NEAR_SECS (10)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
base="${1:-postgres://postgres@127.0.0.1:5432}"
db=precinct_near_sql
clients="${NEAR_CLIENTS:-2}"
secs="${NEAR_SECS:-10}"
keep="${NEAR_KEEP:-0}"
if [ "$keep" != 1 ]; then
  trap 'psql -q "$base/postgres" -c "DROP DATABASE IF EXISTS $db"' EXIT
fi
if [ "$keep" = 1 ] && psql -Atq "$base/$db" -c "SELECT 1 FROM reports LIMIT 1" >/dev/null 2>&1; then
  echo "reusing the kept database $db (built from the migrations of its day)"
else
  psql -q "$base/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  for f in "$here"/../../crates/precinct-readmodel/migrations/*.sql; do
    psql -q -v ON_ERROR_STOP=1 "$base/$db" -f "$f" >/dev/null
  done
  # Load without the secondary indexes of `reports` (several times faster), then build them.
  indexes="$(psql -Atq "$base/$db" -c "SELECT indexdef || ';' FROM pg_indexes i WHERE tablename = 'reports'
    AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = format('%I', i.indexname)::regclass)")"
  psql -Atq "$base/$db" -c "SELECT format('DROP INDEX %I;', indexname) FROM pg_indexes i WHERE tablename = 'reports'
    AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = format('%I', i.indexname)::regclass)" |
    psql -q -v ON_ERROR_STOP=1 "$base/$db" >/dev/null
  psql -q -v ON_ERROR_STOP=1 "$base/$db" -f "$here/synthetic-city.sql"
  echo "$indexes" | psql -q -v ON_ERROR_STOP=1 "$base/$db"
  psql -q "$base/$db" -c "VACUUM ANALYZE reports"
fi
cd "$here/../.."
cargo run -q -p precinct-readmodel --example near_sql -- "$base/$db" "$clients" "$secs"
