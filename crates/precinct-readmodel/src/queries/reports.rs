//! Reports: the filtered list (`GET /crimes`, `GET /me/crimes`), one report, the
//! open-report queue of a station, and an officer's inbox.

use chrono::{DateTime, Utc};
use precinct_domain::values::Timestamp;
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{Page, PageRequest};
use crate::error::QueryError;

/// Every column of `reports`, in [`ReportRow`] order.
const COLUMNS: &str = "id, status, station_id, priority, priority_rank, title, crime_types,
    latitude, longitude, public_latitude, public_longitude, city, state, occurred_at,
    media_urls, reporter_id, anonymous, tracking_token_hash, description, street, contact,
    routing_rule, routing, patrol_id, assigned_at, accepted_at, responding_at, resolved_at,
    closed_at, resolution_notes, rejection_justification, withdrawal_reason, declines,
    evidence, notes, sla_accept_breached_at, sla_respond_breached_at, submitted_at,
    updated_at, last_position, personal_erased, public_updates, rejection_public_reason";

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
}

/// What anyone may see of a report: types, status, coarse location, times. No
/// personal data, no title, no reporter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicReport {
    pub id: Uuid,
    pub crime_types: Vec<String>,
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

impl ReportRow {
    pub fn public(&self) -> PublicReport {
        PublicReport {
            id: self.id,
            crime_types: self.crime_types.clone(),
            status: self.status.clone(),
            latitude: self.public_latitude,
            longitude: self.public_longitude,
            city: self.city.clone(),
            state: self.state.clone(),
            occurred_at: self.occurred_at,
            submitted_at: self.submitted_at,
            updated_at: self.updated_at,
        }
    }
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
}

/// Mean Earth radius in metres (as the domain's great-circle distance).
const EARTH_RADIUS_M: f64 = precinct_domain::values::place::EARTH_RADIUS_M;

/// Appends a bounding-box prefilter (index-friendly) and the exact haversine test.
fn push_near(qb: &mut QueryBuilder<'_, Postgres>, near: &Near) {
    let (lat_col, lon_col) = match near.coordinates {
        Coordinates::Exact => ("latitude", "longitude"),
        Coordinates::Public => ("public_latitude", "public_longitude"),
    };
    let angular = near.radius_m / EARTH_RADIUS_M; // radians
                                                  // A little slack so float rounding never drops a row the exact test would keep.
    let slack = 1.0001;
    let dlat = angular.to_degrees() * slack;
    let (lat_min, lat_max) = (near.latitude - dlat, near.latitude + dlat);
    qb.push(format!(" AND {lat_col} BETWEEN "))
        .push_bind(lat_min)
        .push(" AND ")
        .push_bind(lat_max);
    // The longitude span, unless the circle reaches a pole (then every longitude).
    let ratio = angular.sin() / near.latitude.to_radians().cos();
    if lat_min > -90.0 && lat_max < 90.0 && ratio < 1.0 {
        let dlon = ratio.asin().to_degrees() * slack;
        let (lon_min, lon_max) = (near.longitude - dlon, near.longitude + dlon);
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

/// Reports matching `filter`, newest first (`submitted_at` desc, then `id` desc).
#[tracing::instrument(skip(pool))]
pub async fn list_reports(
    pool: &PgPool,
    filter: &ReportFilter,
    page: &PageRequest,
) -> Result<Page<ReportRow>, QueryError> {
    let after: Option<(Timestamp, Uuid)> = page.key()?;
    let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM reports WHERE true"));
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
    if let Some(near) = &filter.near {
        near.check()?;
        push_near(&mut qb, near);
    }
    if let Some((at, id)) = after {
        qb.push(" AND (submitted_at, id) < (")
            .push_bind(at.get())
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    qb.push(" ORDER BY submitted_at DESC, id DESC LIMIT ")
        .push_bind(page.fetch());
    let rows: Vec<ReportRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, page, |r| (r.submitted_at, r.id)))
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
