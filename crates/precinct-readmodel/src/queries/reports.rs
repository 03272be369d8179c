//! Reports: the filtered list (`GET /crimes`, `GET /me/crimes`), one report, the
//! open-report queue of a station, and an officer's inbox.

use chrono::{DateTime, Utc};
use precinct_domain::values::Timestamp;
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{Page, PageRequest};
use crate::error::QueryError;

/// Every column of `reports`, in [`ReportRow`] order, and the status of the primary of a
/// duplicate (every query selects `FROM reports` unaliased).
pub const COLUMNS: &str =
    "id, status, station_id, priority, priority_rank, title, crime_types, crime_type_codes,
    latitude, longitude, public_latitude, public_longitude, city, state, occurred_at,
    media_urls, reporter_id, anonymous, tracking_token_hash, description, street, contact,
    routing_rule, routing, patrol_id, assigned_at, accepted_at, responding_at, resolved_at,
    closed_at, resolution_notes, rejection_justification, withdrawal_reason, declines,
    evidence, notes, sla_accept_breached_at, sla_respond_breached_at, submitted_at,
    updated_at, last_position, personal_erased, public_updates, rejection_public_reason,
    duplicate_of, duplicates, related,
    (SELECT p.status FROM reports p WHERE p.id = reports.duplicate_of) AS primary_status";

/// Statuses still in the queue (everything but `CLOSED`, `REJECTED`, `WITHDRAWN`).
pub const OPEN_STATUSES: &[&str] = &["NEW", "ASSIGNED", "ACCEPTED", "RESPONDING", "RESOLVED"];
/// Statuses in which a report is in its patrol's inbox.
pub const INBOX_STATUSES: &[&str] = &["ASSIGNED", "ACCEPTED", "RESPONDING", "RESOLVED"];

/// A report's full state: the staff / reporter / assigned-patrol view. Contains
/// personal data (`description`, `street`, `contact`); see [`PublicReport`] for the
/// anonymous view.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ReportRow {
    pub id: Uuid,
    pub status: String,
    pub station_id: Uuid,
    pub priority: String,
    /// 0 (`LOW`) to 3 (`CRITICAL`).
    #[serde(skip_serializing)]
    pub priority_rank: i16,
    pub title: String,
    pub crime_types: Vec<String>,
    /// The catalogue codes `crime_types` resolved to (ADR 0026).
    pub crime_type_codes: Vec<String>,
    pub latitude: f64,
    pub longitude: f64,
    /// `latitude` rounded to 3 decimals (about 100 m).
    pub public_latitude: f64,
    pub public_longitude: f64,
    pub city: Option<String>,
    pub state: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub media_urls: Vec<String>,
    /// `None` for an anonymous report.
    pub reporter_id: Option<Uuid>,
    pub anonymous: bool,
    /// SHA-256 hex digest of an anonymous report's tracking token (compare it with
    /// the digest of `X-Tracking-Token`). Never serialised.
    #[serde(skip_serializing)]
    pub tracking_token_hash: Option<String>,
    pub description: String,
    pub street: Option<String>,
    pub contact: Option<String>,
    /// `DIVISION_KEYWORD`, `PRECINCT_AREA` or `NEAREST_PRECINCT`.
    pub routing_rule: String,
    /// The whole routing decision (`station_id`, `rule`, `matched_keyword`, `distance_m`).
    pub routing: serde_json::Value,
    pub patrol_id: Option<Uuid>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub responding_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub resolution_notes: Option<String>,
    pub rejection_justification: Option<String>,
    pub withdrawal_reason: Option<String>,
    /// How many times the report was declined.
    pub declines: i32,
    /// `EvidenceAttached` payloads, oldest first.
    pub evidence: serde_json::Value,
    /// `NoteAdded` payloads, oldest first.
    pub notes: serde_json::Value,
    /// When an ACCEPT breach was recorded for the current assignment.
    pub sla_accept_breached_at: Option<DateTime<Utc>>,
    pub sla_respond_breached_at: Option<DateTime<Utc>>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Position of the last event applied to this report.
    pub last_position: i64,
    /// The reporter (data subject) was erased: description, street and contact are gone.
    pub personal_erased: bool,
    /// `PublicUpdatePosted` payloads (written for the reporter), oldest first.
    pub public_updates: serde_json::Value,
    /// What the reporter was told about a rejection (None: not rejected, or the neutral
    /// default).
    pub rejection_public_reason: Option<String>,
    /// The primary this report was closed into as a duplicate.
    pub duplicate_of: Option<Uuid>,
    /// Reports closed into this one as duplicates, in the order they were attached.
    pub duplicates: Vec<Uuid>,
    /// Reports linked to this one as `RELATED`.
    pub related: Vec<Uuid>,
    /// The status of `duplicate_of` now (what its reporter follows); not a column.
    pub primary_status: Option<String>,
}

/// The columns of [`PublicReport`], in its order: the public list reads these alone, so
/// no personal or internal column of a report leaves PostgreSQL for an anonymous caller
/// (and the page is a fraction of the full row's bytes to fetch, decode and drop).
pub const PUBLIC_COLUMNS: &str = "id, crime_types, crime_type_codes, status, \
    public_latitude AS latitude, public_longitude AS longitude, city, state, occurred_at, \
    submitted_at, updated_at";

/// What anyone may see of a report: types, status, coarse location, times. No
/// personal data, no title, no reporter.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct PublicReport {
    pub id: Uuid,
    pub crime_types: Vec<String>,
    /// The catalogue codes `crime_types` resolved to (ADR 0026).
    pub crime_type_codes: Vec<String>,
    pub status: String,
    /// Rounded to 3 decimals (about 100 m).
    pub latitude: f64,
    pub longitude: f64,
    pub city: Option<String>,
    pub state: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which coordinates a `near` filter compares with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Coordinates {
    /// The exact location (staff views).
    #[default]
    Exact,
    /// The coarse public location, so that small radii cannot pinpoint a report
    /// (anonymous views).
    Public,
}

/// Reports within `radius_m` metres (great-circle) of a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    pub latitude: f64,
    pub longitude: f64,
    pub radius_m: f64,
    pub coordinates: Coordinates,
}

impl Near {
    pub fn new(latitude: f64, longitude: f64, radius_m: f64) -> Self {
        Self {
            latitude,
            longitude,
            radius_m,
            coordinates: Coordinates::Exact,
        }
    }

    fn check(&self) -> Result<(), QueryError> {
        let bad = |field, reason: &str| {
            Err(QueryError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        if !(self.latitude.is_finite() && (-90.0..=90.0).contains(&self.latitude)) {
            return bad("near", "latitude must be between -90 and 90");
        }
        if !(self.longitude.is_finite() && (-180.0..=180.0).contains(&self.longitude)) {
            return bad("near", "longitude must be between -180 and 180");
        }
        if !(self.radius_m.is_finite() && self.radius_m > 0.0) {
            return bad("radius_m", "must be a positive number of metres");
        }
        Ok(())
    }
}

/// Filters of [`list_reports`]; all optional and combined with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportFilter {
    pub station_id: Option<Uuid>,
    /// Any of these statuses.
    pub status: Option<Vec<String>>,
    pub priority: Option<String>,
    pub near: Option<Near>,
    pub reporter_id: Option<Uuid>,
    /// Assigned to any of these patrols.
    pub patrol_ids: Option<Vec<Uuid>>,
    /// Any of these reports (Open311 `service_request_id`).
    pub ids: Option<Vec<Uuid>>,
    /// Resolved to any of these catalogue codes (Open311 `service_code`).
    pub crime_type_codes: Option<Vec<String>>,
    /// Submitted at or after this time.
    pub submitted_from: Option<DateTime<Utc>>,
    /// Submitted at or before this time.
    pub submitted_to: Option<DateTime<Utc>>,
}

/// Mean Earth radius in metres (as the domain's great-circle distance).
const EARTH_RADIUS_M: f64 = precinct_domain::values::place::EARTH_RADIUS_M;

/// Appends a bounding-box prefilter (index-friendly) and the exact haversine test.
pub(super) fn push_near(qb: &mut QueryBuilder<'_, Postgres>, near: &Near) {
    push_near_box(qb, near);
    push_haversine(qb, near);
}

/// The coordinate columns a `near` filter compares.
fn near_columns(near: &Near) -> (&'static str, &'static str) {
    match near.coordinates {
        Coordinates::Exact => ("latitude", "longitude"),
        Coordinates::Public => ("public_latitude", "public_longitude"),
    }
}

/// The bounding-box prefilter of [`push_near`]. Not in the per-cell branches of
/// [`list_reports`]: the cells bound the search already, and with the box's bounds as
/// parameters PostgreSQL's generic plan walked the coordinates' index instead of the
/// cell's (seconds per query).
fn push_near_box(qb: &mut QueryBuilder<'_, Postgres>, near: &Near) {
    let (lat_col, lon_col) = near_columns(near);
    let ((lat_min, lat_max), lon) = near_box(near);
    qb.push(format!(" AND {lat_col} BETWEEN "))
        .push_bind(lat_min)
        .push(" AND ")
        .push_bind(lat_max);
    if let Some((lon_min, lon_max)) = lon {
        if lon_min < -180.0 {
            qb.push(format!(" AND ({lon_col} >= "))
                .push_bind(lon_min + 360.0)
                .push(format!(" OR {lon_col} <= "))
                .push_bind(lon_max)
                .push(")");
        } else if lon_max > 180.0 {
            qb.push(format!(" AND ({lon_col} >= "))
                .push_bind(lon_min)
                .push(format!(" OR {lon_col} <= "))
                .push_bind(lon_max - 360.0)
                .push(")");
        } else {
            qb.push(format!(" AND {lon_col} BETWEEN "))
                .push_bind(lon_min)
                .push(" AND ")
                .push_bind(lon_max);
        }
    }
}

/// The exact great-circle test of [`push_near`].
fn push_haversine(qb: &mut QueryBuilder<'_, Postgres>, near: &Near) {
    let (lat_col, lon_col) = near_columns(near);
    qb.push(" AND 2 * ")
        .push_bind(EARTH_RADIUS_M)
        .push(format!(
            " * asin(least(1.0, sqrt(power(sin(radians({lat_col} - "
        ))
        .push_bind(near.latitude)
        .push(") / 2), 2) + cos(radians(")
        .push_bind(near.latitude)
        .push(format!(
            ")) * cos(radians({lat_col})) * power(sin(radians({lon_col} - "
        ))
        .push_bind(near.longitude)
        .push(") / 2), 2)))) <= ")
        .push_bind(near.radius_m);
}

/// Cells per degree of the `near` grid (migration `0022_reports_geo_cell.sql`).
const CELLS_PER_DEGREE: f64 = 400.0;
/// Longitude cells in a row of the grid: `floor(lon × 400)` lies in [-72000, 72000].
const LON_CELLS: i64 = 144_001;
/// Beyond this many cells (a radius over about 1.2 km in exact coordinates, 2.7 km in
/// public ones) `near` reads the bounding box through the coordinates' own indexes
/// instead.
pub const NEAR_MAX_CELLS: usize = 100;

/// The grid cell of a location, exactly as the `geo_cell` column computes it.
pub fn geo_cell(latitude: f64, longitude: f64) -> i64 {
    (latitude * CELLS_PER_DEGREE).floor() as i64 * LON_CELLS
        + (longitude * CELLS_PER_DEGREE).floor() as i64
}

pub(super) fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let h = ((p2 - p1) / 2.0).sin().powi(2)
        + p1.cos() * p2.cos() * ((lon2 - lon1).to_radians() / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// The bounding box of a `near` circle, `None` when it reaches a pole or crosses the
/// antimeridian: ((lat_min, lat_max), Some((lon_min, lon_max)) or None for every
/// longitude).
type NearBox = ((f64, f64), Option<(f64, f64)>);

fn near_box(near: &Near) -> NearBox {
    let angular = near.radius_m / EARTH_RADIUS_M; // radians
                                                  // A little slack so float rounding never drops a row the exact test would keep.
    let slack = 1.0001;
    let dlat = angular.to_degrees() * slack;
    let lat = (near.latitude - dlat, near.latitude + dlat);
    // The longitude span, unless the circle reaches a pole (then every longitude).
    let ratio = angular.sin() / near.latitude.to_radians().cos();
    if lat.0 > -90.0 && lat.1 < 90.0 && ratio < 1.0 {
        let dlon = ratio.asin().to_degrees() * slack;
        (lat, Some((near.longitude - dlon, near.longitude + dlon)))
    } else {
        (lat, None)
    }
}

/// The grid cells a `near` circle can find reports in, `None` when no grid serves it (a
/// pole, the antimeridian, or more than [`NEAR_MAX_CELLS`] cells). Exact coordinates:
/// `geo_cell` numbers (ADR 0018); public coordinates: `public_cell` numbers (ADR 0037).
pub fn near_cells(near: &Near) -> Option<Vec<i64>> {
    match near.coordinates {
        Coordinates::Exact => exact_cells(near),
        Coordinates::Public => public_cells(near),
    }
}

/// The column [`near_cells`] numbers cells of.
fn near_cell_column(near: &Near) -> &'static str {
    match near.coordinates {
        Coordinates::Exact => "geo_cell",
        Coordinates::Public => "public_cell",
    }
}

/// The `geo_cell`s a circle can find reports in by their exact location (what
/// `geo_cell` is computed from): the cells of its bounding box less those wholly
/// outside the circle.
fn exact_cells(near: &Near) -> Option<Vec<i64>> {
    let ((lat_min, lat_max), lon) = near_box(near);
    let (lon_min, lon_max) = lon?;
    if lon_min < -180.0 || lon_max > 180.0 {
        return None;
    }
    let idx = |v: f64| (v * CELLS_PER_DEGREE).floor() as i64;
    let (i0, i1) = (idx(lat_min), idx(lat_max));
    let (j0, j1) = (idx(lon_min), idx(lon_max));
    let count = usize::try_from((i1 - i0 + 1) * (j1 - j0 + 1)).ok()?;
    if count > NEAR_MAX_CELLS {
        return None;
    }
    // A cell is left out only when its nearest point is clearly beyond the radius (the
    // clamped point is within centimetres of the true nearest one at these sizes).
    let keep_within = near.radius_m + (near.radius_m * 1e-3).max(1.0);
    let step = 1.0 / CELLS_PER_DEGREE;
    let mut cells = Vec::with_capacity(count);
    for i in i0..=i1 {
        for j in j0..=j1 {
            let (lo_lat, hi_lat) = (i as f64 * step, (i + 1) as f64 * step);
            let (lo_lon, hi_lon) = (j as f64 * step, (j + 1) as f64 * step);
            let (clat, clon) = (
                near.latitude.clamp(lo_lat, hi_lat),
                near.longitude.clamp(lo_lon, hi_lon),
            );
            if haversine_m(near.latitude, near.longitude, clat, clon) <= keep_within {
                cells.push(i * LON_CELLS + j);
            }
        }
    }
    Some(cells)
}

/// Public coordinates are whole thousandths of a degree (`round(x, 3)`); a
/// `public_cell` is a square of this many of them a side (0.005°, about 550 m).
const PUBLIC_CELL_STEPS: i64 = 5;
/// `public_cell` = latitude index × this + longitude index (|longitude index| ≤ 36,000).
const PUBLIC_CELL_ROW: i64 = 1_000_000;

/// The `public_cell` of a report, from its public coordinates, exactly as the column
/// computes it (migration `0039_reports_public_cell.sql`): a public coordinate is the
/// double nearest to k / 1000, so `round(x × 1000)` is k exactly.
pub fn public_cell(public_latitude: f64, public_longitude: f64) -> i64 {
    let index = |v: f64| ((v * 1000.0).round() as i64).div_euclid(PUBLIC_CELL_STEPS);
    index(public_latitude) * PUBLIC_CELL_ROW + index(public_longitude)
}

/// The `public_cell`s a circle can find reports in by their public coordinates: the
/// cells of every public point (every whole thousandth of a degree) of its bounding box
/// within the radius, with a centimetre to spare (PostgreSQL computes the distance in a
/// different order of operations; the SQL test still decides each report).
fn public_cells(near: &Near) -> Option<Vec<i64>> {
    let ((lat_min, lat_max), lon) = near_box(near);
    let (lon_min, lon_max) = lon?;
    if lon_min < -180.0 || lon_max > 180.0 {
        return None;
    }
    let (k0, k1) = (
        (lat_min * 1000.0).floor() as i64,
        (lat_max * 1000.0).ceil() as i64,
    );
    let (j0, j1) = (
        (lon_min * 1000.0).floor() as i64,
        (lon_max * 1000.0).ceil() as i64,
    );
    let side =
        |a: i64, b: i64| b.div_euclid(PUBLIC_CELL_STEPS) - a.div_euclid(PUBLIC_CELL_STEPS) + 1;
    // The box's cells bound the circle's (π/4 of them): give up before enumerating
    // the points of a circle that could not be served anyway.
    let boxed = usize::try_from(side(k0, k1) * side(j0, j1)).ok()?;
    if boxed > 2 * NEAR_MAX_CELLS {
        return None;
    }
    let keep_within = near.radius_m + 0.01;
    let mut cells = Vec::with_capacity(boxed);
    for k in k0..=k1 {
        for j in j0..=j1 {
            let (plat, plon) = (k as f64 / 1000.0, j as f64 / 1000.0);
            if haversine_m(near.latitude, near.longitude, plat, plon) <= keep_within {
                cells.push(public_cell(plat, plon));
            }
        }
    }
    cells.sort_unstable();
    cells.dedup();
    (cells.len() <= NEAR_MAX_CELLS).then_some(cells)
}

/// A cell number no report has: pads the cells of a `near` query to a multiple of
/// [`NEAR_BRANCH_STEP`] (its index walk finds nothing).
const NO_CELL: i64 = i64::MIN;
/// The number of per-cell branches of a `near` query is rounded up to a multiple of
/// this, so that a handful of statement texts serve every circle (each is prepared once
/// per connection and runs on PostgreSQL's generic plan).
const NEAR_BRANCH_STEP: usize = 4;

/// Appends every filter but the order and the limit (shared by both plans of
/// [`list_reports`]).
/// `cells`: the statement walks grid cells, so `near` is the haversine test alone.
fn push_filters(
    qb: &mut QueryBuilder<'_, Postgres>,
    filter: &ReportFilter,
    after: Option<(Timestamp, Uuid)>,
    cells: bool,
) {
    if let Some(station) = filter.station_id {
        qb.push(" AND station_id = ").push_bind(station);
    }
    if let Some(status) = &filter.status {
        qb.push(" AND status = ANY(")
            .push_bind(status.clone())
            .push(")");
    }
    if let Some(priority) = &filter.priority {
        qb.push(" AND priority = ").push_bind(priority.clone());
    }
    if let Some(reporter) = filter.reporter_id {
        qb.push(" AND reporter_id = ").push_bind(reporter);
    }
    if let Some(patrols) = &filter.patrol_ids {
        qb.push(" AND patrol_id = ANY(")
            .push_bind(patrols.clone())
            .push(")");
    }
    if let Some(ids) = &filter.ids {
        qb.push(" AND id = ANY(").push_bind(ids.clone()).push(")");
    }
    if let Some(codes) = &filter.crime_type_codes {
        qb.push(" AND crime_type_codes && ")
            .push_bind(codes.clone())
            .push("::text[]");
    }
    if let Some(from) = filter.submitted_from {
        qb.push(" AND submitted_at >= ").push_bind(from);
    }
    if let Some(to) = filter.submitted_to {
        qb.push(" AND submitted_at <= ").push_bind(to);
    }
    if let Some(near) = &filter.near {
        if cells {
            push_haversine(qb, near);
        } else {
            push_near(qb, near);
        }
    }
    if let Some((at, id)) = after {
        qb.push(" AND (submitted_at, id) < (")
            .push_bind(at.get())
            .push(", ")
            .push_bind(id)
            .push(")");
    }
}

/// Reports matching `filter`, newest first (`submitted_at` desc, then `id` desc).
///
/// With `near` (up to [`NEAR_MAX_CELLS`] cells), a grid index answers: for each cell
/// the circle reaches, a walk of that cell's index in list order with every filter,
/// and one merge of those walks in list order that stops at the page (PostgreSQL's
/// Merge Append: about one page of index entries read, not a page per cell) — the same
/// rows, in the same order, as the plain filter would give. The statement's text
/// depends only on the number of cells (rounded up to a multiple of 4), the
/// filters present and the page size (written as a number, not a parameter), so that
/// each connection prepares it once and PostgreSQL keeps one generic plan for it.
#[tracing::instrument(skip(pool))]
pub async fn list_reports(
    pool: &PgPool,
    filter: &ReportFilter,
    page: &PageRequest,
) -> Result<Page<ReportRow>, QueryError> {
    let rows: Vec<ReportRow> = list_query(format!("SELECT {COLUMNS} FROM reports"), filter, page)?
        .build_query_as()
        .fetch_all(pool)
        .await?;
    Ok(Page::from_rows(rows, page, |r| (r.submitted_at, r.id)))
}

/// The public list: what [`list_reports`] finds for `filter`, only the columns anyone
/// may see ([`PUBLIC_COLUMNS`]). The same statement but for its select list (which in
/// [`list_reports`] also holds the duplicate's status sub-select), so the same rows in
/// the same order and the same walks of the cells.
#[tracing::instrument(skip(pool))]
pub async fn list_public_reports(
    pool: &PgPool,
    filter: &ReportFilter,
    page: &PageRequest,
) -> Result<Page<PublicReport>, QueryError> {
    let head = format!("SELECT {PUBLIC_COLUMNS} FROM reports");
    let rows: Vec<PublicReport> = list_query(head, filter, page)?
        .build_query_as()
        .fetch_all(pool)
        .await?;
    Ok(Page::from_rows(rows, page, |r| (r.submitted_at, r.id)))
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the statement [`list_public_reports`] (`public`) or
/// [`list_reports`] sends, with the same parameters (`tools/near-sql`), one line of the
/// plan per item.
pub async fn explain_list_reports(
    pool: &PgPool,
    filter: &ReportFilter,
    page: &PageRequest,
    public: bool,
) -> Result<Vec<String>, QueryError> {
    let columns = if public { PUBLIC_COLUMNS } else { COLUMNS };
    let head = format!("EXPLAIN (ANALYZE, BUFFERS) SELECT {columns} FROM reports");
    Ok(list_query(head, filter, page)?
        .build_query_scalar()
        .fetch_all(pool)
        .await?)
}

/// The statement of [`list_reports`] after `head` (`SELECT … FROM reports`).
fn list_query<'a>(
    head: String,
    filter: &'a ReportFilter,
    page: &PageRequest,
) -> Result<QueryBuilder<'a, Postgres>, QueryError> {
    let after: Option<(Timestamp, Uuid)> = page.key()?;
    if let Some(near) = &filter.near {
        near.check()?;
    }
    let fetch = page.fetch();
    let cells = filter
        .near
        .as_ref()
        .and_then(|near| Some((near_cell_column(near), near_cells(near)?)));
    let mut qb = QueryBuilder::<Postgres>::new(head);
    match cells {
        Some((column, mut cells)) => {
            let branches = cells.len().max(1).div_ceil(NEAR_BRANCH_STEP) * NEAR_BRANCH_STEP;
            cells.resize(branches, NO_CELL);
            // The cells are the statement's first parameter ($1); every branch repeats
            // the first one's filters, parameters and all.
            qb.push(format!(
                " WHERE id IN (SELECT id FROM ((SELECT id, submitted_at FROM reports \
                 WHERE {column} = ("
            ));
            qb.push_bind(cells).push("::bigint[])[1]");
            let from = qb.sql().len();
            push_filters(&mut qb, filter, after, true);
            qb.push(format!(
                " ORDER BY submitted_at DESC, id DESC LIMIT {fetch})"
            ));
            let branch_tail = qb.sql()[from..].to_owned();
            for k in 2..=branches {
                qb.push(format!(
                    " UNION ALL (SELECT id, submitted_at FROM reports \
                     WHERE {column} = ($1::bigint[])[{k}]{branch_tail}"
                ));
            }
            qb.push(format!(
                ") k ORDER BY submitted_at DESC, id DESC LIMIT {fetch}) \
                 ORDER BY submitted_at DESC, id DESC LIMIT {fetch}"
            ));
        }
        None => {
            qb.push(" WHERE true");
            push_filters(&mut qb, filter, after, false);
            qb.push(" ORDER BY submitted_at DESC, id DESC LIMIT ")
                .push_bind(fetch);
        }
    }
    Ok(qb)
}

/// One report, whatever its status.
#[tracing::instrument(skip(pool))]
pub async fn get_report(pool: &PgPool, id: Uuid) -> Result<Option<ReportRow>, QueryError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM reports WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// One report as anyone may see it ([`PUBLIC_COLUMNS`]), whatever its status.
#[tracing::instrument(skip(pool))]
pub async fn get_public_report(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<PublicReport>, QueryError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {PUBLIC_COLUMNS} FROM reports WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// The tracking-token hash of a report by the read model: `None` no such report (yet),
/// `Some(None)` a signed-in reporter's. Open311's `tokens/{token}` compares it and reads
/// nothing else of the report.
#[tracing::instrument(skip(pool))]
pub async fn tracking_token_hash_of(
    pool: &PgPool,
    report: Uuid,
) -> Result<Option<Option<String>>, QueryError> {
    Ok(
        sqlx::query_scalar("SELECT tracking_token_hash FROM reports WHERE id = $1")
            .bind(report)
            .fetch_optional(pool)
            .await?,
    )
}

/// The patrol a report is assigned to now (`None`: no such report, or unassigned). The
/// live hub asks it about reports assigned before it started following the log.
#[tracing::instrument(skip(pool))]
pub async fn assigned_patrol(pool: &PgPool, report: Uuid) -> Result<Option<Uuid>, QueryError> {
    let row: Option<Option<Uuid>> =
        sqlx::query_scalar("SELECT patrol_id FROM reports WHERE id = $1")
            .bind(report)
            .fetch_optional(pool)
            .await?;
    Ok(row.flatten())
}

/// The station of a report by the read model (`None`: no such report yet). The live
/// hub asks it about reports it has not seen submitted or transferred.
#[tracing::instrument(skip(pool))]
pub async fn report_station(pool: &PgPool, report: Uuid) -> Result<Option<Uuid>, QueryError> {
    let row: Option<Uuid> = sqlx::query_scalar("SELECT station_id FROM reports WHERE id = $1")
        .bind(report)
        .fetch_optional(pool)
        .await?;
    Ok(row)
}

/// Who submitted a report, by the read model: `Some(Some(account))` a signed-in user,
/// `Some(None)` anonymously, `None` a report the read model does not hold (yet).
pub async fn reporter_of(pool: &PgPool, report: Uuid) -> Result<Option<Option<Uuid>>, QueryError> {
    Ok(
        sqlx::query_scalar("SELECT reporter_id FROM reports WHERE id = $1")
            .bind(report)
            .fetch_optional(pool)
            .await?,
    )
}

/// Filters of [`report_queue`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFilter {
    /// The caller's station (`None`: every station, for `ADMIN`).
    pub station_id: Option<Uuid>,
    /// Narrows the open statuses; a closed status here matches nothing.
    pub status: Option<Vec<String>>,
    pub priority: Option<String>,
}

type QueueKey = (i16, Timestamp, Uuid);

/// Appends the queue order's keyset condition and `ORDER BY`/`LIMIT`.
fn push_queue_page(
    qb: &mut QueryBuilder<'_, Postgres>,
    page: &PageRequest,
) -> Result<(), QueryError> {
    if let Some((rank, at, id)) = page.key::<QueueKey>()? {
        qb.push(" AND (priority_rank < ")
            .push_bind(rank)
            .push(" OR (priority_rank = ")
            .push_bind(rank)
            .push(" AND (submitted_at, id) > (")
            .push_bind(at.get())
            .push(", ")
            .push_bind(id)
            .push(")))");
    }
    qb.push(" ORDER BY priority_rank DESC, submitted_at ASC, id ASC LIMIT ")
        .push_bind(page.fetch());
    Ok(())
}

fn statuses(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Open reports (`NEW` to `RESOLVED`), highest priority first, then oldest, then id.
#[tracing::instrument(skip(pool))]
pub async fn report_queue(
    pool: &PgPool,
    filter: &QueueFilter,
    page: &PageRequest,
) -> Result<Page<ReportRow>, QueryError> {
    let mut qb = QueryBuilder::<Postgres>::new(format!(
        "SELECT {COLUMNS} FROM reports WHERE status IN \
         ('NEW', 'ASSIGNED', 'ACCEPTED', 'RESPONDING', 'RESOLVED')"
    ));
    if let Some(station) = filter.station_id {
        qb.push(" AND station_id = ").push_bind(station);
    }
    if let Some(status) = &filter.status {
        qb.push(" AND status = ANY(")
            .push_bind(status.clone())
            .push(")");
    }
    if let Some(priority) = &filter.priority {
        qb.push(" AND priority = ").push_bind(priority.clone());
    }
    push_queue_page(&mut qb, page)?;
    let rows: Vec<ReportRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, page, |r| {
        (r.priority_rank, r.submitted_at, r.id)
    }))
}

/// The reports assigned to any patrol of `station_id` the officer is a member of, while the patrol
/// still has work on them (`ASSIGNED`, `ACCEPTED`, `RESPONDING`, and `RESOLVED`
/// awaiting review); in queue order.
#[tracing::instrument(skip(pool))]
pub async fn officer_inbox(
    pool: &PgPool,
    officer_id: Uuid,
    station_id: Uuid,
    page: &PageRequest,
) -> Result<Page<ReportRow>, QueryError> {
    let mut qb =
        QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM reports WHERE status = ANY("));
    qb.push_bind(statuses(INBOX_STATUSES))
        .push(") AND patrol_id IN (SELECT id FROM patrols WHERE officer_ids @> ARRAY[")
        .push_bind(officer_id)
        .push("]::uuid[] AND station_id = ")
        .push_bind(station_id)
        .push(")");
    push_queue_page(&mut qb, page)?;
    let rows: Vec<ReportRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, page, |r| {
        (r.priority_rank, r.submitted_at, r.id)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_numbered_without_collisions_across_the_longitude_range() {
        assert_eq!(geo_cell(0.0, 0.0), 0);
        assert_eq!(geo_cell(0.0, 180.0), 72_000);
        assert_eq!(geo_cell(0.003, -180.0), LON_CELLS - 72_000);
        assert_ne!(geo_cell(0.0, 180.0), geo_cell(0.003, -180.0));
        assert_eq!(geo_cell(-0.000_001, -0.000_001), -LON_CELLS - 1);
    }

    #[test]
    fn a_circle_keeps_the_cells_it_touches_and_drops_the_corners_it_misses() {
        // 400 m around a point in the middle of a cell: its 3 × 3 block of cells, the
        // block's corners included (a 280 m cell's corner is within 400 m) …
        let centre = (7.07125, 125.61125);
        let near = Near::new(centre.0, centre.1, 400.0);
        let cells = near_cells(&near).expect("served by the index");
        assert!(cells.contains(&geo_cell(centre.0, centre.1)));
        assert!(cells.contains(&geo_cell(centre.0 + 0.0025, centre.1 + 0.0025)));
        // … 560 m: the 5 × 5 block less its four far corners (about 588 m away).
        let near = Near::new(centre.0, centre.1, 560.0);
        let cells = near_cells(&near).expect("served by the index");
        assert_eq!(cells.len(), 21);
        assert!(!cells.contains(&geo_cell(centre.0 + 0.005, centre.1 + 0.005)));
    }

    #[test]
    fn public_cells_are_squares_of_five_by_five_public_points() {
        assert_eq!(public_cell(0.0, 0.0), 0);
        assert_eq!(public_cell(0.004, 0.004), 0);
        assert_eq!(public_cell(0.005, 0.004), PUBLIC_CELL_ROW);
        assert_eq!(public_cell(-0.001, -0.001), -PUBLIC_CELL_ROW - 1);
        assert_eq!(public_cell(7.07, 125.61), 1414 * PUBLIC_CELL_ROW + 25_122);
        assert_eq!(public_cell(7.069, 125.614), 1413 * PUBLIC_CELL_ROW + 25_122);
        assert_eq!(
            public_cell(-90.0, -180.0),
            -18_000 * PUBLIC_CELL_ROW - 36_000
        );
        assert_ne!(public_cell(0.0, 180.0), public_cell(0.005, -180.0));
    }

    #[test]
    fn a_public_circle_keeps_the_cells_of_its_public_points() {
        let public = |lat, lon, r| Near {
            coordinates: Coordinates::Public,
            ..Near::new(lat, lon, r)
        };
        // 20 m around the middle of a cell: no public point (they are 110 m apart).
        assert_eq!(near_cells(&public(7.0725, 125.6125, 20.0)), Some(vec![]));
        // 60 m around a public point on a cell's corner: that point, in its cell only.
        assert_eq!(
            near_cells(&public(7.07, 125.61, 60.0)),
            Some(vec![public_cell(7.07, 125.61)])
        );
        // 120 m: its four neighbours too (110 m), in the three cells around the corner.
        let cells = near_cells(&public(7.07, 125.61, 120.0)).expect("served");
        assert_eq!(cells.len(), 3);
        assert!(cells.contains(&public_cell(7.069, 125.61)));
        assert!(cells.contains(&public_cell(7.07, 125.609)));
        assert!(!cells.contains(&public_cell(7.069, 125.609)));
        // 500 m in a cell's middle: the 3 × 3 block around it but one corner. A cell's
        // public points are x.xx0 to x.xx4 or x.xx5 to x.xx9, so the centre is 0.0035°
        // from the block's lower rows' nearest points and 0.0025° from its upper ones':
        // (7.069, 125.609) is 548 m away, the other corners' within 480 m.
        let cells = near_cells(&public(7.0725, 125.6125, 500.0)).expect("served");
        assert_eq!(cells.len(), 8);
        assert!(!cells.contains(&public_cell(7.069, 125.609)));
        assert!(cells.contains(&public_cell(7.076, 125.616)));
        // About 2.7 km is the last radius the index serves.
        assert!(near_cells(&public(7.0725, 125.6125, 2_500.0)).is_some());
        assert!(near_cells(&public(7.0725, 125.6125, 5_000.0)).is_none());
    }

    #[test]
    fn large_circles_poles_and_the_antimeridian_use_the_bounding_box() {
        assert!(near_cells(&Near::new(7.0, 125.0, 5_000.0)).is_none());
        assert!(near_cells(&Near::new(0.0, 179.9995, 500.0)).is_none());
        assert!(near_cells(&Near::new(89.9999, 0.0, 500.0)).is_none());
        assert!(near_cells(&Near::new(7.0, 125.0, 1_000.0)).is_some());
    }
}
