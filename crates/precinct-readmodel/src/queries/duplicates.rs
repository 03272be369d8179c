//! Possible duplicates of a report (issue 16 item 4, ADR 0020): reports that share a
//! crime type with it, lie within a radius of it and happened within a time window of
//! it. The spatial part walks the `near=` grid-cell index (`geo_cell`, migration
//! `0022`, ADR 0018): one index range per cell the circle touches.

use chrono::{DateTime, Duration, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::reports::{haversine_m, near_cells, push_near, COLUMNS};
use super::{Near, ReportRow};
use crate::error::QueryError;

/// Largest radius a search may ask for, in metres: its circle stays within the grid
/// index's cell budget ([`super::NEAR_MAX_CELLS`]).
pub const MAX_RADIUS_M: f64 = 1_000.0;
/// Widest time window a search may ask for, in minutes (one day either side).
pub const MAX_WINDOW_MINUTES: u32 = 24 * 60;
/// Most candidates one search answers.
pub const MAX_CANDIDATES: u32 = 50;

/// What a search looks for around one report.
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateSearch {
    /// The report whose duplicates are looked for (never a candidate itself).
    pub report_id: Uuid,
    /// Candidates of this station only (`None`: every station, for an ADMIN).
    pub station_id: Option<Uuid>,
    /// The report's crime types; a candidate shares at least one, ignoring case.
    pub crime_types: Vec<String>,
    pub latitude: f64,
    pub longitude: f64,
    /// When the report's incident happened (`occurred_at`, else its submission).
    pub at: DateTime<Utc>,
    /// Candidates whose own time is within this much of `at`.
    pub window: Duration,
    /// Metres, in (0, [`MAX_RADIUS_M`]].
    pub radius_m: f64,
    /// Reports already linked to the report (they are no candidates).
    pub linked: Vec<Uuid>,
    /// 1..=[`MAX_CANDIDATES`].
    pub limit: u32,
}

/// One candidate and how far it is from the report, in space and in time.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub report: ReportRow,
    pub distance_m: f64,
    /// Minutes between the candidate's time and the report's (absolute, to the nearest
    /// minute).
    pub minutes_apart: i64,
}

/// The incident time a search compares: when it happened, else when it was reported.
pub fn incident_time(row: &ReportRow) -> DateTime<Utc> {
    row.occurred_at.unwrap_or(row.submitted_at)
}

/// Reports of `search` that may be duplicates of its report: not withdrawn, not
/// themselves closed as a duplicate, not already linked to it; nearest first, then
/// closest in time, then by id.
#[tracing::instrument(skip(pool))]
pub async fn possible_duplicates(
    pool: &PgPool,
    search: &DuplicateSearch,
) -> Result<Vec<Candidate>, QueryError> {
    let invalid = |field: &'static str, reason: String| QueryError::Invalid { field, reason };
    if !(search.radius_m.is_finite() && search.radius_m > 0.0 && search.radius_m <= MAX_RADIUS_M) {
        return Err(invalid(
            "radius_m",
            format!("must be in (0, {MAX_RADIUS_M}]"),
        ));
    }
    if !(1..=MAX_CANDIDATES).contains(&search.limit) {
        return Err(invalid("limit", format!("between 1 and {MAX_CANDIDATES}")));
    }
    let near = Near::new(search.latitude, search.longitude, search.radius_m);
    let types: Vec<String> = search
        .crime_types
        .iter()
        .map(|t| t.to_lowercase())
        .collect();
    let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM reports WHERE "));
    match near_cells(&near) {
        // The grid index: one range of `reports_geo_cell` per cell.
        Some(cells) => {
            qb.push("geo_cell = ANY(")
                .push_bind(cells)
                .push("::bigint[])");
        }
        // A pole or the antimeridian: the bounding box below.
        None => {
            qb.push("true");
        }
    }
    push_near(&mut qb, &near);
    qb.push(" AND id <> ")
        .push_bind(search.report_id)
        .push(" AND NOT (id = ANY(")
        .push_bind(search.linked.clone())
        .push("::uuid[])) AND duplicate_of IS NULL AND status <> 'WITHDRAWN'");
    if let Some(station) = search.station_id {
        qb.push(" AND station_id = ").push_bind(station);
    }
    qb.push(" AND EXISTS (SELECT 1 FROM unnest(crime_types) t WHERE lower(t) = ANY(")
        .push_bind(types)
        .push("::text[])) AND coalesce(occurred_at, submitted_at) BETWEEN ")
        .push_bind(search.at - search.window)
        .push(" AND ")
        .push_bind(search.at + search.window);
    // Nearest first: the squared equirectangular distance orders as the great-circle
    // one does at these radii; ties by time apart, then id.
    qb.push(" ORDER BY power(latitude - ")
        .push_bind(search.latitude)
        .push(", 2) + power((longitude - ")
        .push_bind(search.longitude)
        .push(") * cos(radians(")
        .push_bind(search.latitude)
        .push(")), 2), abs(extract(epoch FROM coalesce(occurred_at, submitted_at) - ")
        .push_bind(search.at)
        .push(")), id LIMIT ")
        .push_bind(i64::from(search.limit));
    let rows: Vec<ReportRow> = qb.build_query_as().fetch_all(pool).await?;
    let mut out: Vec<Candidate> = rows
        .into_iter()
        .map(|r| Candidate {
            distance_m: haversine_m(search.latitude, search.longitude, r.latitude, r.longitude),
            // To the nearest minute (times are to the millisecond).
            minutes_apart: ((incident_time(&r) - search.at).num_seconds().abs() + 30) / 60,
            report: r,
        })
        .collect();
    // The same order on the exact distance (the SQL order is its close approximation).
    out.sort_by(|a, b| {
        a.distance_m
            .total_cmp(&b.distance_m)
            .then(a.minutes_apart.cmp(&b.minutes_apart))
            .then(a.report.id.cmp(&b.report.id))
    });
    Ok(out)
}
