#!/usr/bin/env bash
# The analytics endpoints' SQL (as written by precinct-readmodel's queries::analytics,
# 30 days of one station, partial hours at both ends) timed with pgbench over a
# synthetic station of 1,000,000 reports spread over 365 days (≈ 83,000 in the range) —
# the measurement in docs/performance.md "Analytics and CSV export". Loopback only;
# bounded (10 s a query).
#
#   bash tools/analytics-sql/run.sh [postgres://postgres@127.0.0.1:5432]
#
# Prints, per query: the seconds the synthetic load took (its INSERTs fire the roll-up
# triggers, so this is their write cost too); 1 client (pgbench, 5 s): mean latency;
# 8 clients on 2 jobs (pgbench, 10 s): p50/p99 of every transaction; and PostgreSQL
# CPU ms per query: the CPU (user + system, /proc/<pid>/stat) of one backend that runs
# the query RUNS times in a row, divided by RUNS — the backend's own work only, so it
# does not move with the machine's other load the way latency does.
# ANALYTICS_SQL_KEEP=1 keeps the database (precinct_analytics_sql) afterwards;
# ANALYTICS_SQL_QUERIES="funnel sla" times only those (default: all five).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
base="${1:-postgres://postgres@127.0.0.1:5432}"
db=precinct_analytics_sql
runs="${ANALYTICS_SQL_RUNS:-20}"
queries="${ANALYTICS_SQL_QUERIES:-funnel volume sla officers patrols}"
psql -q "$base/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
for f in "$here"/../../crates/precinct-readmodel/migrations/*.sql; do
  # ANALYTICS_SQL_MIGRATIONS_UPTO=0036: the schema before a later migration (for the
  # load's CPU before it; the query files are those of the current schema).
  n=$(basename "$f" | cut -d_ -f1)
  if [ -n "${ANALYTICS_SQL_MIGRATIONS_UPTO:-}" ] && [ "$n" \> "$ANALYTICS_SQL_MIGRATIONS_UPTO" ]; then continue; fi
  psql -q -v ON_ERROR_STOP=1 "$base/$db" -f "$f" >/dev/null
done
tmp="$(mktemp -d)"
tck=$(getconf CLK_TCK)
# The synthetic load, with its backend's CPU (the roll-up triggers run in it).
{
  echo 'SELECT pg_backend_pid() AS pid \gset'
  echo '\setenv PGPID :pid'
  echo "\\! awk '{print \$14+\$15}' /proc/\$PGPID/stat > $tmp/cpu0; date +%s%N > $tmp/t0"
  echo "\\i $here/synthetic-station.sql"
  echo "\\! awk '{print \$14+\$15}' /proc/\$PGPID/stat > $tmp/cpu1; date +%s%N > $tmp/t1"
} > "$tmp/load.sql"
psql -q -X -v ON_ERROR_STOP=1 "$base/$db" -f "$tmp/load.sql"
awk -v a="$(cat "$tmp/cpu0")" -v t="$tck" -v w0="$(cat "$tmp/t0")" -v w1="$(cat "$tmp/t1")" \
  '{printf "synthetic load (1,000,000 reports + 900,000 assignments, roll-up triggers included): %.1f s, PostgreSQL CPU %.1f s\n", (w1 - w0) / 1e9, ($1 - a) / t}' "$tmp/cpu1"
psql -q "$base/$db" -c "VACUUM ANALYZE"
if [ "${ANALYTICS_SQL_KEEP:-0}" = 1 ]; then
  trap 'rm -rf "$tmp"' EXIT
else
  trap 'rm -rf "$tmp"; psql -q "$base/postgres" -c "DROP DATABASE IF EXISTS $db"' EXIT
fi
for q in $queries; do
  # PostgreSQL CPU per query: one backend, the query $runs times (after one warm-up).
  {
    echo 'SELECT pg_backend_pid() AS pid \gset'
    echo '\setenv PGPID :pid'
    echo '\o /dev/null'
    echo "\\i $here/$q.sql"
    echo "\\! awk '{print \$14+\$15}' /proc/\$PGPID/stat > $tmp/cpu0; date +%s%N > $tmp/t0"
    for _ in $(seq "$runs"); do echo "\\i $here/$q.sql"; done
    echo "\\! awk '{print \$14+\$15}' /proc/\$PGPID/stat > $tmp/cpu1; date +%s%N > $tmp/t1"
  } > "$tmp/cpu.sql"
  psql -q -X -v ON_ERROR_STOP=1 "$base/$db" -f "$tmp/cpu.sql"
  cpu=$(awk -v a="$(cat "$tmp/cpu0")" -v t="$tck" -v n="$runs" '{printf "%.1f", ($1 - a) * 1000 / t / n}' "$tmp/cpu1")
  one=$(pgbench -n -c 1 -T 5 -f "$here/$q.sql" "$base/$db" 2>&1 | sed -n 's/^latency average = //p')
  (cd "$tmp" && rm -f pgbench_log.* && pgbench -n -c 8 -j 2 -T 10 -l -f "$here/$q.sql" "$base/$db" >/dev/null 2>&1)
  cat "$tmp"/pgbench_log.* | awk '{print $3/1000}' | sort -n |
    awk -v q="$q" -v one="$one" -v cpu="$cpu" '{a[NR]=$1} END {printf "%-8s 1 client: %s; 8 clients: n=%d p50=%.1f ms p99=%.1f ms; PostgreSQL CPU %s ms/query\n", q, one, NR, a[int(NR*0.5)], a[int(NR*0.99)], cpu}'
done
