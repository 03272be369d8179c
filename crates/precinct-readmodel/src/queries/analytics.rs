//! Analytics (issue 17 item 2, ADR 0027): the funnel, service levels, officer and
//! patrol workload, volume per time bucket and counts per grid cell, aggregated in SQL
//! over `analytics_reports` and `analytics_assignments` (migration `0030_analytics.sql`).
//!
//! Every answer is a list of flat, serializable rows (one CSV row each). The caller has
//! validated and scoped the [`Scope`]: these functions authorise nothing.
//!
//! The cohort of the report metrics (funnel, SLA, volume, heatmap) is the reports
//! *submitted* in `[from, to)`; that of the officer and patrol metrics is the
//! assignments *made* in `[from, to)`. Durations are seconds between the events' own
//! times; percentiles are PostgreSQL's `percentile_cont` (linear interpolation).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::error::QueryError;

/// The geohash precision stored per report; every coarser cell is a prefix of it.
pub const CELL_PRECISION: usize = 8;

/// Most rows of an officer or patrol table.
pub const MAX_WORKLOAD_ROWS: i64 = 1000;

/// The geohash cell (precision [`CELL_PRECISION`]) of a point. A point the geohash
/// crate refuses (out of range: the domain never lets one through) gets the empty cell.
pub fn analytics_cell(latitude: f64, longitude: f64) -> String {
    geohash::encode(
        geohash::Coord {
            x: longitude,
            y: latitude,
        },
        CELL_PRECISION,
    )
    .unwrap_or_default()
}

/// The bounds of a geohash cell as (min lon, min lat, max lon, max lat); `None` for a
/// string that is not a geohash.
pub fn cell_bounds(cell: &str) -> Option<[f64; 4]> {
    let r = geohash::decode_bbox(cell).ok()?;
    Some([r.min().x, r.min().y, r.max().x, r.max().y])
}

/// The size of a geohash cell of `precision` characters, as (degrees of longitude,
/// degrees of latitude).
pub fn cell_size(precision: usize) -> (f64, f64) {
    let bits = 5 * precision as i32;
    let lon_bits = (bits + 1) / 2;
    let lat_bits = bits / 2;
    (360.0 / 2f64.powi(lon_bits), 180.0 / 2f64.powi(lat_bits))
}

/// What to aggregate: a time range and the filters (already validated and scoped).
#[derive(Debug, Clone)]
pub struct Scope {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `None`: every station (ADMIN only).
    pub station_id: Option<Uuid>,
    /// A report matches when it has any of these codes; empty: any type.
    pub types: Vec<String>,
    /// `None`: any priority.
    pub priority: Option<String>,
}

/// Pushes ` WHERE …` for reports aliased `r`, by submission time.
fn where_reports(qb: &mut QueryBuilder<'_, Postgres>, s: &Scope) {
    qb.push(" WHERE r.submitted_at >= ")
        .push_bind(s.from)
        .push(" AND r.submitted_at < ")
        .push_bind(s.to);
    filters(qb, s);
}

/// Pushes ` AND …` for the station, priority and type filters, on a table aliased `r`
/// with the columns `station_id`, `priority` and `crime_type_codes` (`analytics_reports`
/// or `analytics_hourly`).
fn filters(qb: &mut QueryBuilder<'_, Postgres>, s: &Scope) {
    if let Some(station) = s.station_id {
        qb.push(" AND r.station_id = ").push_bind(station);
    }
    if let Some(p) = &s.priority {
        qb.push(" AND r.priority = ").push_bind(p.clone());
    }
    if !s.types.is_empty() {
        qb.push(" AND r.crime_type_codes && ")
            .push_bind(s.types.clone());
    }
}

/// The whole UTC hours `[lo, hi)` inside `[from, to)`, read from the roll-up
/// `analytics_hourly`; the rest of the range, `[from, lo)` and `[hi, to)`, is read
/// from `analytics_reports`. A range inside one hour has none (`lo = hi = to`).
fn whole_hours(from: DateTime<Utc>, to: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    use chrono::{DurationRound as _, TimeDelta};
    let hour = TimeDelta::hours(1);
    let floor = |t: DateTime<Utc>| t.duration_trunc(hour).unwrap_or(t);
    let lo = {
        let f = floor(from);
        if f == from {
            f
        } else {
            f + hour
        }
    };
    let hi = floor(to);
    if lo < hi {
        (lo, hi)
    } else {
        (to, to)
    }
}

/// The hours `[lo, hi)` to read from the roll-up for `s`: its whole hours
/// ([`whole_hours`]), widened by a partial hour at either end when no report of the
/// scope lies in that hour outside the range — then the hour's roll-up rows count
/// exactly the reports inside it, instead of reading them one by one (a busy current
/// hour held most of a 30-day range's reports in the bench). Run in the snapshot of the
/// query that reads the roll-up ([`snapshot`]): a report submitted in between would
/// otherwise be counted.
async fn rolled_up_hours(
    conn: &mut PgConnection,
    s: &Scope,
) -> Result<(DateTime<Utc>, DateTime<Utc>), QueryError> {
    let hour = chrono::TimeDelta::hours(1);
    let (lo, hi) = whole_hours(s.from, s.to);
    let (head, tail) = (lo < hi && s.from < lo, lo < hi && hi < s.to);
    if !head && !tail {
        return Ok((lo, hi));
    }
    let mut qb = QueryBuilder::<Postgres>::new("SELECT ");
    let none_in = |qb: &mut QueryBuilder<'_, Postgres>, partial: bool, a, b| {
        if !partial {
            qb.push("false");
            return;
        }
        qb.push("NOT EXISTS (SELECT 1 FROM analytics_reports r WHERE r.submitted_at >= ")
            .push_bind(a)
            .push(" AND r.submitted_at < ")
            .push_bind(b);
        filters(qb, s);
        qb.push(")");
    };
    none_in(&mut qb, head, lo - hour, s.from);
    qb.push(", ");
    none_in(&mut qb, tail, s.to, hi + hour);
    let (head_clear, tail_clear): (bool, bool) = qb.build_query_as().fetch_one(conn).await?;
    Ok((
        if head_clear { lo - hour } else { lo },
        if tail_clear { hi + hour } else { hi },
    ))
}

/// A read-only transaction in one snapshot (`REPEATABLE READ`): the statements of one
/// answer see the same reports.
async fn snapshot(pool: &PgPool) -> Result<sqlx::Transaction<'static, Postgres>, QueryError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Pushes the rows of the cohort as groups: `SELECT <hourly>` over the hours `[lo, hi)`
/// ([`rolled_up_hours`]) from `analytics_hourly` (aliased `r`), `UNION ALL`, `SELECT
/// <single>` over the rest of the range from `analytics_reports` (aliased `r`), both
/// filtered.
fn hourly_union(
    qb: &mut QueryBuilder<'_, Postgres>,
    s: &Scope,
    (lo, hi): (DateTime<Utc>, DateTime<Utc>),
    hourly: &str,
    single: &str,
) {
    qb.push(format!(
        "SELECT {hourly} FROM analytics_hourly r WHERE r.hour >= "
    ))
    .push_bind(lo)
    .push(" AND r.hour < ")
    .push_bind(hi);
    filters(qb, s);
    qb.push(format!(
        " UNION ALL SELECT {single} FROM analytics_reports r WHERE ((r.submitted_at >= "
    ))
    .push_bind(s.from)
    .push(" AND r.submitted_at < ")
    .push_bind(lo)
    .push(") OR (r.submitted_at >= ")
    .push_bind(hi)
    .push(" AND r.submitted_at < ")
    .push_bind(s.to)
    .push("))");
    filters(qb, s);
}

/// Pushes ` WHERE …` for assignments aliased `a` (joined with their report `r`), by
/// the time they were made, their station and priority then, and the report's types.
fn where_assignments(qb: &mut QueryBuilder<'_, Postgres>, s: &Scope) {
    qb.push(" WHERE a.assigned_at >= ")
        .push_bind(s.from)
        .push(" AND a.assigned_at < ")
        .push_bind(s.to);
    if let Some(station) = s.station_id {
        qb.push(" AND a.station_id = ").push_bind(station);
    }
    if let Some(p) = &s.priority {
        qb.push(" AND a.priority = ").push_bind(p.clone());
    }
    if !s.types.is_empty() {
        qb.push(" AND r.crime_type_codes && ")
            .push_bind(s.types.clone());
    }
}

/// `GET /analytics/funnel`: how many reports of the cohort reached each milestone at
/// least once, and how many dropped out.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct FunnelRow {
    pub submitted: i64,
    pub assigned: i64,
    pub accepted: i64,
    pub responding: i64,
    pub resolved: i64,
    /// Closure approved by a supervisor (a duplicate's closure is `duplicates`).
    pub closed: i64,
    /// Reports declined at least once.
    pub declined: i64,
    /// Declines in all (a report may be declined several times).
    pub declines: i64,
    pub rejected: i64,
    pub withdrawn: i64,
    pub duplicates: i64,
}

#[tracing::instrument(skip(pool))]
pub async fn funnel(pool: &PgPool, scope: &Scope) -> Result<FunnelRow, QueryError> {
    // Whole hours from the roll-up, the partial ones from the reports themselves.
    let mut tx = snapshot(pool).await?;
    let hours = rolled_up_hours(&mut tx, scope).await?;
    let mut qb = QueryBuilder::<Postgres>::new(
        "SELECT COALESCE(sum(submitted), 0)::bigint AS submitted,
            COALESCE(sum(assigned), 0)::bigint AS assigned,
            COALESCE(sum(accepted), 0)::bigint AS accepted,
            COALESCE(sum(responding), 0)::bigint AS responding,
            COALESCE(sum(resolved), 0)::bigint AS resolved,
            COALESCE(sum(closed), 0)::bigint AS closed,
            COALESCE(sum(declined), 0)::bigint AS declined,
            COALESCE(sum(declines), 0)::bigint AS declines,
            COALESCE(sum(rejected), 0)::bigint AS rejected,
            COALESCE(sum(withdrawn), 0)::bigint AS withdrawn,
            COALESCE(sum(duplicates), 0)::bigint AS duplicates
         FROM (",
    );
    hourly_union(
        &mut qb,
        scope,
        hours,
        "r.submitted, r.assigned, r.accepted, r.responding, r.resolved, r.closed,
            r.declined, r.declines, r.rejected, r.withdrawn, r.duplicates",
        "1::bigint, (r.first_assigned_at IS NOT NULL)::int::bigint,
            (r.first_accepted_at IS NOT NULL)::int::bigint,
            (r.first_responding_at IS NOT NULL)::int::bigint,
            (r.first_resolved_at IS NOT NULL)::int::bigint,
            (r.first_closed_at IS NOT NULL)::int::bigint, (r.declines > 0)::int::bigint,
            r.declines::bigint, (r.first_rejected_at IS NOT NULL)::int::bigint,
            (r.first_withdrawn_at IS NOT NULL)::int::bigint,
            (r.first_duplicate_at IS NOT NULL)::int::bigint",
    );
    qb.push(") c");
    let row = qb.build_query_as().fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(row)
}

/// One duration metric of `GET /analytics/sla`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct SlaMetricRow {
    /// `time_to_assign`, `time_to_accept`, `time_to_respond`, `time_to_resolve`,
    /// `time_to_close`.
    pub metric: String,
    /// How many durations were measured.
    pub count: i64,
    pub p50_secs: Option<f64>,
    pub p90_secs: Option<f64>,
    pub p99_secs: Option<f64>,
    /// The configured deadline (accept and respond only).
    pub sla_secs: Option<i64>,
    /// Durations at or under the deadline.
    pub within_sla: Option<i64>,
    /// `within_sla / count` (none when nothing was measured).
    pub within_sla_share: Option<f64>,
    /// Breaches the SLA worker recorded (`SlaBreached`) on the cohort's assignments.
    pub breaches: Option<i64>,
}

/// One of the PRD's success metrics.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct KpiRow {
    /// `assignments_accepted_within_sla`, `resolved_with_complete_closure`,
    /// `assignment_failures`.
    pub kpi: String,
    pub numerator: i64,
    pub denominator: i64,
    /// `numerator / denominator` (none when the denominator is 0).
    pub value: Option<f64>,
    pub target: f64,
    /// `AT_LEAST` or `AT_MOST`.
    pub direction: String,
    /// Whether the value meets the target (none without a value).
    pub met: Option<bool>,
}

/// The configured deadlines, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct SlaDeadlines {
    pub accept_secs: i64,
    pub respond_secs: i64,
}

/// The p50, p90 and p99 of the seconds `$expr` (an interval), over the rows `$when`.
/// `date_part` gives the seconds as a float directly (`extract` computes a numeric).
macro_rules! pct {
    ($expr:literal, $when:literal) => {
        concat!(
            "percentile_cont(ARRAY[0.5, 0.9, 0.99]::float8[]) WITHIN GROUP (ORDER BY date_part('epoch', ",
            $expr,
            ")) FILTER (WHERE ",
            $when,
            ")"
        )
    };
}

/// The one row of the SLA statement: per duration, how many were measured and their
/// percentiles (none when none was); the counts the shares, breaches and KPIs are made
/// of.
#[derive(sqlx::FromRow)]
struct SlaRow {
    assign_n: i64,
    assign_p: Option<Vec<f64>>,
    resolve_n: i64,
    resolve_p: Option<Vec<f64>>,
    close_n: i64,
    close_p: Option<Vec<f64>>,
    /// Reports resolved (`resolve_n`) and closed.
    resolved_closed: i64,
    assignments: i64,
    accept_n: i64,
    accept_p: Option<Vec<f64>>,
    /// Assignments accepted within the accept deadline.
    accepted_within: i64,
    respond_n: i64,
    respond_p: Option<Vec<f64>>,
    respond_within: i64,
    /// Assignments whose accept clock is decided: accepted, ended, or breached.
    accept_decided: i64,
    /// Assignments never accepted and declined or taken back.
    failures: i64,
    accept_breaches: i64,
    respond_breaches: i64,
    resolve_breaches: i64,
}

/// One duration metric from its count, percentiles and, for the two with a deadline,
/// the deadline and how many were within it.
fn metric(
    name: &str,
    count: i64,
    p: Option<Vec<f64>>,
    sla: Option<(i64, i64)>,
    breaches: Option<i64>,
) -> SlaMetricRow {
    let at = |i: usize| p.as_ref().and_then(|p| p.get(i).copied());
    SlaMetricRow {
        metric: name.into(),
        count,
        p50_secs: at(0),
        p90_secs: at(1),
        p99_secs: at(2),
        sla_secs: sla.map(|(secs, _)| secs),
        within_sla: sla.map(|(_, within)| within),
        within_sla_share: sla.and_then(|(_, within)| share(within, count)),
        breaches,
    }
}

fn share(numerator: i64, denominator: i64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// A KPI from its counts: `value = numerator / denominator`, met when at least (or at
/// most) `target`.
fn kpi(kpi: &str, numerator: i64, denominator: i64, target: f64, at_least: bool) -> KpiRow {
    let value = share(numerator, denominator);
    KpiRow {
        kpi: kpi.into(),
        numerator,
        denominator,
        value,
        target,
        direction: if at_least { "AT_LEAST" } else { "AT_MOST" }.into(),
        met: value.map(|v| if at_least { v >= target } else { v <= target }),
    }
}

/// `GET /analytics/sla`: the five durations and the KPIs, in one statement of two
/// aggregate passes (every percentile sorts only its own durations): over the cohort's
/// reports (an index-only scan of the covering index `analytics_reports_sla`), and over
/// the cohort's assignments (a range scan of `analytics_assignments_report_submitted`)
/// joined with their reports for the station and filters. The cohort is not
/// materialized for the second pass: writing it to a tuple store cost more than the
/// planner's own choice of a second index-only scan or a primary-key probe per
/// assignment.
#[tracing::instrument(skip(pool))]
pub async fn sla(
    pool: &PgPool,
    scope: &Scope,
    deadlines: SlaDeadlines,
) -> Result<(Vec<SlaMetricRow>, Vec<KpiRow>), QueryError> {
    let mut qb = QueryBuilder::<Postgres>::new(concat!(
        "WITH kr AS (SELECT count(r.first_assigned_at) AS assign_n, ",
        pct!(
            "r.first_assigned_at - r.submitted_at",
            "r.first_assigned_at IS NOT NULL"
        ),
        " AS assign_p, count(r.first_resolved_at) AS resolve_n, ",
        pct!(
            "r.first_resolved_at - r.submitted_at",
            "r.first_resolved_at IS NOT NULL"
        ),
        " AS resolve_p, count(r.first_closed_at) AS close_n, ",
        pct!(
            "r.first_closed_at - r.submitted_at",
            "r.first_closed_at IS NOT NULL"
        ),
        " AS close_p, count(*) FILTER (WHERE r.first_resolved_at IS NOT NULL
                AND r.first_closed_at IS NOT NULL) AS resolved_closed
         FROM analytics_reports r",
    ));
    where_reports(&mut qb, scope);
    qb.push(concat!(
        "), ka AS (SELECT count(*) AS assignments, count(a.accepted_at) AS accept_n, ",
        pct!("a.accepted_at - a.assigned_at", "a.accepted_at IS NOT NULL"),
        " AS accept_p, count(*) FILTER (WHERE a.accepted_at - a.assigned_at
                <= make_interval(secs => "
    ))
    .push_bind(deadlines.accept_secs as f64)
    .push(concat!(
        ")) AS accepted_within,
            count(*) FILTER (WHERE a.responding_at IS NOT NULL AND a.accepted_at IS NOT NULL)
                AS respond_n, ",
        pct!(
            "a.responding_at - a.accepted_at",
            "a.responding_at IS NOT NULL AND a.accepted_at IS NOT NULL"
        ),
        " AS respond_p, count(*) FILTER (WHERE a.responding_at - a.accepted_at
                <= make_interval(secs => "
    ))
    .push_bind(deadlines.respond_secs as f64)
    .push(
        ")) AS respond_within,
            count(*) FILTER (WHERE a.accepted_at IS NOT NULL OR a.ended_at IS NOT NULL
                OR a.sla_accept_breached) AS accept_decided,
            count(*) FILTER (WHERE a.accepted_at IS NULL
                AND (a.declined_at IS NOT NULL OR a.withdrawn_at IS NOT NULL)) AS failures,
            count(*) FILTER (WHERE a.sla_accept_breached) AS accept_breaches,
            count(*) FILTER (WHERE a.sla_respond_breached) AS respond_breaches,
            count(*) FILTER (WHERE a.sla_resolve_breached) AS resolve_breaches
         FROM analytics_assignments a JOIN analytics_reports r
           ON r.report_id = a.report_id AND a.report_submitted_at >= ",
    )
    .push_bind(scope.from)
    .push(" AND a.report_submitted_at < ")
    .push_bind(scope.to);
    where_reports(&mut qb, scope);
    qb.push(") SELECT * FROM kr CROSS JOIN ka");
    let r: SlaRow = qb.build_query_as().fetch_one(pool).await?;
    let items = vec![
        metric("time_to_assign", r.assign_n, r.assign_p, None, None),
        metric(
            "time_to_accept",
            r.accept_n,
            r.accept_p,
            Some((deadlines.accept_secs, r.accepted_within)),
            Some(r.accept_breaches),
        ),
        metric(
            "time_to_respond",
            r.respond_n,
            r.respond_p,
            Some((deadlines.respond_secs, r.respond_within)),
            Some(r.respond_breaches),
        ),
        metric(
            "time_to_resolve",
            r.resolve_n,
            r.resolve_p,
            None,
            Some(r.resolve_breaches),
        ),
        metric("time_to_close", r.close_n, r.close_p, None, None),
    ];
    let kpis = vec![
        kpi(
            "assignments_accepted_within_sla",
            r.accepted_within,
            r.accept_decided,
            0.95,
            true,
        ),
        kpi(
            "resolved_with_complete_closure",
            r.resolved_closed,
            r.resolve_n,
            0.90,
            true,
        ),
        kpi(
            "assignment_failures",
            r.failures,
            r.assignments,
            0.02,
            false,
        ),
    ];
    Ok((items, kpis))
}

/// A row of `GET /analytics/officers` or `GET /analytics/patrols`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WorkloadRow {
    /// The patrol (per patrol) or the officer's account (per officer).
    pub id: Uuid,
    /// Assignments made to the patrol (per officer: that the officer answered).
    pub assignments: i64,
    /// Not yet ended (per officer: accepted by the officer and not ended).
    pub open: i64,
    pub accepted: i64,
    pub declined: i64,
    /// `declined / (accepted + declined)`.
    pub decline_rate: Option<f64>,
    /// Resolved and not sent back by a supervisor since (per officer: by the officer).
    pub resolved: i64,
    /// Median seconds from acceptance to resolution, over `resolved`.
    pub median_resolve_secs: Option<f64>,
    /// Closures a supervisor rejected (per officer: of the officer's resolutions).
    pub closures_rejected: i64,
}

/// Per patrol, over the assignments made in the range.
#[tracing::instrument(skip(pool))]
pub async fn patrol_workload(pool: &PgPool, scope: &Scope) -> Result<Vec<WorkloadRow>, QueryError> {
    let mut qb = QueryBuilder::<Postgres>::new(
        "SELECT a.patrol_id AS id, count(*) AS assignments,
            count(*) FILTER (WHERE a.ended_at IS NULL) AS open,
            count(a.accepted_at) AS accepted,
            count(a.declined_at) AS declined,
            CASE WHEN count(a.accepted_at) + count(a.declined_at) > 0
                THEN count(a.declined_at)::float8 / (count(a.accepted_at) + count(a.declined_at))
            END AS decline_rate,
            count(a.resolved_at) AS resolved,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY
                extract(epoch FROM a.resolved_at - a.accepted_at)::float8)
                FILTER (WHERE a.resolved_at IS NOT NULL) AS median_resolve_secs,
            COALESCE(sum(a.closure_rejections), 0)::bigint AS closures_rejected
         FROM analytics_assignments a JOIN analytics_reports r USING (report_id)",
    );
    where_assignments(&mut qb, scope);
    qb.push(" GROUP BY a.patrol_id ORDER BY a.patrol_id LIMIT ")
        .push_bind(MAX_WORKLOAD_ROWS);
    Ok(qb.build_query_as().fetch_all(pool).await?)
}

/// Per officer (the account that accepted, declined or resolved), over the assignments
/// made in the range.
#[tracing::instrument(skip(pool))]
pub async fn officer_workload(
    pool: &PgPool,
    scope: &Scope,
) -> Result<Vec<WorkloadRow>, QueryError> {
    let mut qb = QueryBuilder::<Postgres>::new(
        "WITH a AS (SELECT a.* FROM analytics_assignments a JOIN analytics_reports r USING (report_id)",
    );
    where_assignments(&mut qb, scope);
    qb.push(
        ")
         SELECT o.id, count(*) AS assignments,
            count(*) FILTER (WHERE a.accepted_by = o.id AND a.ended_at IS NULL) AS open,
            count(*) FILTER (WHERE a.accepted_by = o.id) AS accepted,
            count(*) FILTER (WHERE a.declined_by = o.id) AS declined,
            CASE WHEN count(*) FILTER (WHERE a.accepted_by = o.id OR a.declined_by = o.id) > 0
                THEN (count(*) FILTER (WHERE a.declined_by = o.id))::float8
                    / count(*) FILTER (WHERE a.accepted_by = o.id OR a.declined_by = o.id)
            END AS decline_rate,
            count(*) FILTER (WHERE a.resolved_by = o.id AND a.resolved_at IS NOT NULL) AS resolved,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY
                extract(epoch FROM a.resolved_at - a.accepted_at)::float8)
                FILTER (WHERE a.resolved_by = o.id AND a.resolved_at IS NOT NULL)
                AS median_resolve_secs,
            COALESCE(sum(a.closure_rejections) FILTER (WHERE a.resolved_by = o.id), 0)::bigint
                AS closures_rejected
         FROM a CROSS JOIN LATERAL (
            SELECT DISTINCT x FROM unnest(ARRAY[a.accepted_by, a.declined_by, a.resolved_by]) x
            WHERE x IS NOT NULL) o(id)
         GROUP BY o.id ORDER BY o.id LIMIT ",
    )
    .push_bind(MAX_WORKLOAD_ROWS);
    Ok(qb.build_query_as().fetch_all(pool).await?)
}

/// A time bucket of `GET /analytics/volume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
    Week,
    Month,
}

impl Bucket {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "hour" => Bucket::Hour,
            "day" => Bucket::Day,
            "week" => Bucket::Week,
            "month" => Bucket::Month,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
        }
    }

    /// The shortest length of one bucket (a month: 28 days).
    pub fn min_len(self) -> chrono::Duration {
        match self {
            Bucket::Hour => chrono::Duration::hours(1),
            Bucket::Day => chrono::Duration::days(1),
            Bucket::Week => chrono::Duration::weeks(1),
            Bucket::Month => chrono::Duration::days(28),
        }
    }
}

/// A row of `GET /analytics/volume`: how many reports of the bucket have `value` in
/// `dimension`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct VolumeRow {
    /// The bucket's start (UTC; weeks start on Monday).
    pub bucket: DateTime<Utc>,
    /// `type`, `priority`, `station` or `status`.
    pub dimension: String,
    /// A type code, a priority, a station id or a status (now).
    pub value: String,
    pub count: i64,
}

#[tracing::instrument(skip(pool))]
pub async fn volume(
    pool: &PgPool,
    scope: &Scope,
    bucket: Bucket,
) -> Result<Vec<VolumeRow>, QueryError> {
    // Whole hours from the roll-up (a bucket is a whole number of hours), the partial
    // ones from the reports themselves.
    let mut tx = snapshot(pool).await?;
    let hours = rolled_up_hours(&mut tx, scope).await?;
    let mut qb = QueryBuilder::<Postgres>::new("WITH h AS (");
    let b = bucket.as_str();
    hourly_union(
        &mut qb,
        scope,
        hours,
        &format!(
            "date_trunc('{b}', r.hour, 'UTC') AS bucket, r.station_id, r.priority, r.status,
                r.crime_type_codes, r.submitted AS n"
        ),
        &format!(
            "date_trunc('{b}', r.submitted_at, 'UTC'), r.station_id, r.priority, r.status,
                r.crime_type_codes, 1::bigint"
        ),
    );
    qb.push(
        ")
         SELECT bucket, dimension, value, sum(n)::bigint AS count FROM (
            SELECT bucket, 'type' AS dimension, c AS value, n
                FROM h CROSS JOIN LATERAL unnest(h.crime_type_codes) c
            UNION ALL SELECT bucket, 'priority', priority, n FROM h
            UNION ALL SELECT bucket, 'station', station_id::text, n FROM h
            UNION ALL SELECT bucket, 'status', status, n FROM h
         ) v
         GROUP BY bucket, dimension, value ORDER BY bucket, dimension, value",
    );
    let rows = qb.build_query_as().fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// A cell of `GET /analytics/heatmap`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct HeatCellRow {
    /// The geohash of the cell.
    pub cell: String,
    pub count: i64,
}

/// A bounding box in degrees, not crossing the antimeridian.
#[derive(Debug, Clone, Copy)]
pub struct Bbox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl Bbox {
    /// The box grown to the edges of the geohash cells of `precision` characters its
    /// corners fall in: a query of the public heatmap then counts whole cells only, and
    /// moving an edge by less than a cell changes nothing (no bisecting a report's
    /// position out of differences between two answers).
    pub fn snapped(self, precision: usize) -> Bbox {
        let cell = |lon: f64, lat: f64| {
            geohash::encode(geohash::Coord { x: lon, y: lat }, precision)
                .ok()
                .and_then(|h| geohash::decode_bbox(&h).ok())
        };
        match (
            cell(self.min_lon, self.min_lat),
            cell(self.max_lon, self.max_lat),
        ) {
            (Some(sw), Some(ne)) => Bbox {
                min_lon: sw.min().x,
                min_lat: sw.min().y,
                max_lon: ne.max().x,
                max_lat: ne.max().y,
            },
            _ => self,
        }
    }

    /// Whether the cell `hash` lies wholly inside the box.
    pub fn holds_cell(&self, hash: &str) -> bool {
        const EPS: f64 = 1e-9;
        geohash::decode_bbox(hash).is_ok_and(|c| {
            c.min().x >= self.min_lon - EPS
                && c.min().y >= self.min_lat - EPS
                && c.max().x <= self.max_lon + EPS
                && c.max().y <= self.max_lat + EPS
        })
    }
}

/// Reports of the cohort located in `bbox`, counted per geohash cell of `precision`
/// characters; cells with fewer than `min_count` reports are left out. `public`: only
/// reports neither rejected nor withdrawn (what the public may count).
#[tracing::instrument(skip(pool))]
pub async fn heatmap(
    pool: &PgPool,
    scope: &Scope,
    bbox: Bbox,
    precision: usize,
    min_count: i64,
    public: bool,
) -> Result<Vec<HeatCellRow>, QueryError> {
    let mut qb = QueryBuilder::<Postgres>::new("SELECT left(r.cell, ");
    qb.push_bind(precision as i32)
        .push(") AS cell, count(*) AS count FROM analytics_reports r");
    where_reports(&mut qb, scope);
    qb.push(" AND r.latitude >= ")
        .push_bind(bbox.min_lat)
        .push(" AND r.latitude <= ")
        .push_bind(bbox.max_lat)
        .push(" AND r.longitude >= ")
        .push_bind(bbox.min_lon)
        .push(" AND r.longitude <= ")
        .push_bind(bbox.max_lon);
    if public {
        qb.push(" AND r.status NOT IN ('REJECTED', 'WITHDRAWN')");
    }
    qb.push(" GROUP BY 1 HAVING count(*) >= ")
        .push_bind(min_count)
        .push(" ORDER BY 1");
    Ok(qb.build_query_as().fetch_all(pool).await?)
}

/// The codes of `codes` that are not in the catalogue (`OTHER` always is).
#[tracing::instrument(skip(pool))]
pub async fn unknown_crime_types(
    pool: &PgPool,
    codes: &[String],
) -> Result<Vec<String>, QueryError> {
    Ok(sqlx::query_scalar(
        "SELECT c FROM unnest($1::text[]) c
         WHERE c <> 'OTHER' AND NOT EXISTS (SELECT 1 FROM crime_types t WHERE t.code = c)
         ORDER BY c",
    )
    .bind(codes)
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::{kpi, whole_hours};
    use chrono::{DateTime, Utc};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    #[test]
    fn a_kpi_is_its_counts_ratio_against_its_target() {
        let k = kpi("assignments_accepted_within_sla", 19, 20, 0.95, true);
        assert_eq!(
            (k.value, k.met, k.direction.as_str()),
            (Some(0.95), Some(true), "AT_LEAST")
        );
        assert_eq!(kpi("x", 18, 20, 0.95, true).met, Some(false));
        let failures = kpi("assignment_failures", 1, 20, 0.02, false);
        assert_eq!((failures.value, failures.met), (Some(0.05), Some(false)));
        assert_eq!(kpi("x", 0, 100, 0.02, false).met, Some(true));
        let none = kpi("x", 0, 0, 0.9, true);
        assert_eq!((none.value, none.met), (None, None));
    }

    #[test]
    fn whole_hours_lie_inside_the_range() {
        // Given a range with partial hours at both ends, then the whole hours between.
        assert_eq!(
            whole_hours(t("2026-11-01T10:15:00Z"), t("2026-11-03T08:45:10Z")),
            (t("2026-11-01T11:00:00Z"), t("2026-11-03T08:00:00Z"))
        );
        // Given ends on the hour, then the range itself.
        assert_eq!(
            whole_hours(t("2026-11-01T10:00:00Z"), t("2026-11-01T12:00:00Z")),
            (t("2026-11-01T10:00:00Z"), t("2026-11-01T12:00:00Z"))
        );
    }

    #[test]
    fn a_range_without_a_whole_hour_reads_only_reports() {
        // Given a range inside one hour, or across one boundary, then no hour at all:
        // an empty roll-up range at `to`, so that [from, to) is read row by row.
        for (from, to) in [
            ("2026-11-01T10:15:00Z", "2026-11-01T10:45:00Z"),
            ("2026-11-01T10:15:00Z", "2026-11-01T11:45:00Z"),
            ("2026-11-01T10:00:00.000001Z", "2026-11-01T11:00:00Z"),
        ] {
            assert_eq!(whole_hours(t(from), t(to)), (t(to), t(to)), "{from}..{to}");
        }
    }
}
