#!/usr/bin/env bash
# The analytics endpoints' SQL (as written by precinct-readmodel's queries::analytics at
# commit 05385d9, 30 days of one station, partial hours at both ends) timed with pgbench
# over a synthetic station of 1,000,000 reports spread over 365 days — the measurement in
# docs/performance.md "Analytics and CSV export". Loopback only; bounded (10 s a query).
#
#   bash tools/analytics-sql/run.sh [postgres://postgres@127.0.0.1:5432]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
base="${1:-postgres://postgres@127.0.0.1:5432}"
db=precinct_analytics_sql
psql -q "$base/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
for f in "$here"/../../crates/precinct-readmodel/migrations/*.sql; do
  psql -q -v ON_ERROR_STOP=1 "$base/$db" -f "$f" >/dev/null
done
psql -q -v ON_ERROR_STOP=1 "$base/$db" -f "$here/synthetic-station.sql"
psql -q "$base/$db" -c "VACUUM ANALYZE"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"; psql -q "$base/postgres" -c "DROP DATABASE IF EXISTS $db"' EXIT
for q in funnel volume sla; do
  one=$(pgbench -n -c 1 -T 5 -f "$here/$q.sql" "$base/$db" 2>&1 | sed -n 's/^latency average = //p')
  (cd "$tmp" && rm -f pgbench_log.* && pgbench -n -c 8 -j 2 -T 10 -l -f "$here/$q.sql" "$base/$db" >/dev/null 2>&1)
  cat "$tmp"/pgbench_log.* | awk '{print $3/1000}' | sort -n |
    awk -v q="$q" -v one="$one" '{a[NR]=$1} END {printf "%-7s 1 client: %s; 8 clients: n=%d p50=%.1f ms p99=%.1f ms\n", q, one, NR, a[int(NR*0.5)], a[int(NR*0.99)]}'
done
