//! `analytics_reports` and `analytics_assignments`: the facts the analytics endpoints
//! aggregate (issue 17 item 2, ADR 0027), from the report events alone.
//!
//! A report row keeps what the report is now (station, priority, status) and when it
//! *first* reached each milestone (assigned, accepted, responding, resolved, closed by
//! a supervisor, withdrawn, rejected, closed as a duplicate), with life-long counts
//! (assignments, declines, rejected closures, SLA breaches). An assignment row is one
//! assignment of the report to a patrol: its station and priority then, when and by
//! whom (the envelope's actor) it was accepted, declined or resolved, and when it
//! ended. Nothing personal is kept: no text, no reporter.
//!
//! Triggers on `analytics_reports` keep its hourly roll-up, `analytics_hourly`, in the
//! same transaction (migration `0036_analytics_hourly.sql`); this code never writes it.

use chrono::{DateTime, Utc};
use precinct_domain::report::ReportEvent;
use precinct_domain::values::SlaKind;
use precinct_eventlog::RecordedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::checkpoint::to_i64;
use crate::error::ProjectionError;
use crate::projection::{decode, expect_row, submitted_runs, Projection, Step};

/// The analytics read model.
#[derive(Debug, Default, Clone, Copy)]
pub struct Analytics;

const REPORTS: &str = "analytics_reports";
const ASSIGNMENTS: &str = "analytics_assignments";
/// Kept by triggers on `analytics_reports` (migration `0036_analytics_hourly.sql`); named
/// here so that a rebuild's TRUNCATE, which fires no row trigger, empties it too.
const HOURLY: &str = "analytics_hourly";

impl Projection for Analytics {
    const NAME: &'static str = precinct_readmodel::names::ANALYTICS;

    fn tables() -> &'static [&'static str] {
        &[REPORTS, ASSIGNMENTS, HOURLY]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if event.envelope.aggregate_type != "report" {
            return Ok(());
        }
        let id = event.envelope.aggregate_id;
        let pos = to_i64(event.position());
        let actor = event.envelope.actor.id();
        let done = match decode::<ReportEvent>(event)? {
            ReportEvent::ReportSubmitted(e) => {
                let codes: Vec<String> = e
                    .resolved_codes()
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect();
                let (lat, lon) = (e.location.latitude.value(), e.location.longitude.value());
                sqlx::query(
                    "INSERT INTO analytics_reports (report_id, station_id, priority, status,
                        crime_type_codes, latitude, longitude, cell, submitted_at, last_position)
                     VALUES ($1, $2, $3, 'NEW', $4, $5, $6, $7, $8, $9)",
                )
                .bind(id)
                .bind(e.station_id.as_uuid())
                .bind(e.priority.as_str())
                .bind(codes)
                .bind(lat)
                .bind(lon)
                .bind(precinct_readmodel::queries::analytics_cell(lat, lon))
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportAmended(e) => {
                // A new location moves the report's cell; new crime types, its codes.
                let point = e
                    .changes
                    .location
                    .as_ref()
                    .map(|l| (l.latitude.value(), l.longitude.value()));
                let codes: Option<Vec<String>> = e
                    .crime_type_codes
                    .as_ref()
                    .map(|codes| codes.iter().map(|c| c.as_str().to_owned()).collect());
                sqlx::query(
                    "UPDATE analytics_reports SET
                        latitude = COALESCE($2, latitude), longitude = COALESCE($3, longitude),
                        cell = COALESCE($4, cell),
                        crime_type_codes = COALESCE($5, crime_type_codes),
                        last_position = $6
                     WHERE report_id = $1",
                )
                .bind(id)
                .bind(point.map(|p| p.0))
                .bind(point.map(|p| p.1))
                .bind(point.map(|(lat, lon)| precinct_readmodel::queries::analytics_cell(lat, lon)))
                .bind(codes)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportTriaged(e) => {
                sqlx::query(
                    "UPDATE analytics_reports SET priority = $2, last_position = $3
                     WHERE report_id = $1",
                )
                .bind(id)
                .bind(e.priority.as_str())
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportAssigned(e) => {
                // The new assignment's number is the report's count of assignments + 1.
                let done = sqlx::query(
                    "WITH r AS (
                        UPDATE analytics_reports SET status = 'ASSIGNED',
                            assignments = assignments + 1, current_seq = assignments + 1,
                            first_assigned_at = COALESCE(first_assigned_at, $3),
                            last_position = $5
                        WHERE report_id = $1
                        RETURNING current_seq, station_id, priority, submitted_at)
                     INSERT INTO analytics_assignments (report_id, seq, patrol_id, station_id,
                        priority, assigned_at, auto, report_submitted_at)
                     SELECT $1, current_seq, $2, station_id, priority, $3, $4, submitted_at
                     FROM r",
                )
                .bind(id)
                .bind(e.patrol_id.as_uuid())
                .bind(e.at)
                .bind(e.auto.is_some())
                .bind(pos)
                .execute(&mut *conn)
                .await?;
                return expect_row(done, event, ASSIGNMENTS);
            }
            ReportEvent::AssignmentAccepted(e) => {
                on_current(
                    conn,
                    id,
                    "accepted_at = $2, accepted_by = $3",
                    e.at,
                    actor,
                    event,
                )
                .await?;
                milestone(conn, id, pos, "ACCEPTED", "first_accepted_at", e.at).await?
            }
            ReportEvent::AssignmentDeclined(e) => {
                // Ends the assignment first (the current one is needed), then the report.
                on_current(
                    conn,
                    id,
                    "declined_at = $2, declined_by = $3, ended_at = $2",
                    e.at,
                    actor,
                    event,
                )
                .await?;
                sqlx::query(
                    "UPDATE analytics_reports SET status = 'NEW', current_seq = 0,
                        declines = declines + 1, last_position = $2
                     WHERE report_id = $1",
                )
                .bind(id)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportResponding(e) => {
                on_current(conn, id, "responding_at = $2", e.at, actor, event).await?;
                milestone(conn, id, pos, "RESPONDING", "first_responding_at", e.at).await?
            }
            ReportEvent::ReportResolved(e) => {
                on_current(
                    conn,
                    id,
                    "resolved_at = $2, resolved_by = $3",
                    e.at,
                    actor,
                    event,
                )
                .await?;
                milestone(conn, id, pos, "RESOLVED", "first_resolved_at", e.at).await?
            }
            ReportEvent::ClosureApproved(e) => {
                on_current(
                    conn,
                    id,
                    "closed_at = $2, ended_at = $2",
                    e.at,
                    actor,
                    event,
                )
                .await?;
                milestone(conn, id, pos, "CLOSED", "first_closed_at", e.at).await?
            }
            ReportEvent::ClosureRejected(_) => {
                sqlx::query(
                    "UPDATE analytics_reports SET status = 'RESPONDING',
                        closure_rejections = closure_rejections + 1, last_position = $2
                     WHERE report_id = $1",
                )
                .bind(id)
                .bind(pos)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "UPDATE analytics_assignments a SET closure_rejections =
                        a.closure_rejections + 1, resolved_at = NULL
                     FROM analytics_reports r
                     WHERE r.report_id = $1 AND a.report_id = r.report_id
                       AND a.seq = r.current_seq",
                )
                .bind(id)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportRejected(e) => {
                end_open(conn, id, e.at).await?;
                milestone(conn, id, pos, "REJECTED", "first_rejected_at", e.at).await?
            }
            ReportEvent::ReportWithdrawn(e) => {
                end_open(conn, id, e.at).await?;
                milestone(conn, id, pos, "WITHDRAWN", "first_withdrawn_at", e.at).await?
            }
            ReportEvent::SlaBreached(e) => {
                let (count, flag) = match e.kind {
                    SlaKind::Accept => ("sla_accept_breaches", "sla_accept_breached"),
                    SlaKind::Respond => ("sla_respond_breaches", "sla_respond_breached"),
                    SlaKind::Resolve => ("sla_resolve_breaches", "sla_resolve_breached"),
                };
                on_current(conn, id, &format!("{flag} = true"), e.at, None, event).await?;
                sqlx::query(&format!(
                    "UPDATE analytics_reports SET {count} = {count} + 1, last_position = $2
                     WHERE report_id = $1"
                ))
                .bind(id)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::AssignmentWithdrawn(e) => {
                on_current(
                    conn,
                    id,
                    "withdrawn_at = $2, ended_at = $2",
                    e.at,
                    None,
                    event,
                )
                .await?;
                sqlx::query(
                    "UPDATE analytics_reports SET status = 'NEW', current_seq = 0,
                        last_position = $2
                     WHERE report_id = $1",
                )
                .bind(id)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportTransferred(e) => {
                sqlx::query(
                    "UPDATE analytics_reports SET station_id = $2, last_position = $3
                     WHERE report_id = $1",
                )
                .bind(id)
                .bind(e.station_id.as_uuid())
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportReopened(_) | ReportEvent::DuplicateUnmarked(_) => {
                sqlx::query(
                    "UPDATE analytics_reports SET status = 'NEW', current_seq = 0,
                        last_position = $2
                     WHERE report_id = $1",
                )
                .bind(id)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportMarkedDuplicate(e) => {
                // Any assignment was withdrawn by the event before, in the same append.
                end_open(conn, id, e.at).await?;
                milestone(conn, id, pos, "CLOSED", "first_duplicate_at", e.at).await?
            }
            ReportEvent::NoteAdded(_)
            | ReportEvent::PublicUpdatePosted(_)
            | ReportEvent::EvidenceAttached(_)
            | ReportEvent::DuplicateAttached(_)
            | ReportEvent::DuplicateDetached(_)
            | ReportEvent::ReportLinked(_)
            | ReportEvent::ReportUnlinked(_)
            | ReportEvent::PatrolNotified(_)
            | ReportEvent::SlaWarned(_)
            | ReportEvent::SlaEscalated(_) => touch(conn, id, pos).await?,
        };
        expect_row(done, event, REPORTS)
    }

    /// Runs of `ReportSubmitted` (what intake and catch-up are made of) become one
    /// multi-row insert each, whose hourly shares the statement trigger of migration
    /// `0042_analytics_hourly_statement.sql` adds as one grouped upsert; any other
    /// event is applied on its own, so the order of effects is the log's.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for step in submitted_runs(events)? {
            match step {
                Step::Submitted(run) => {
                    let mut rows = SubmittedRows::default();
                    for (event, e) in &run {
                        rows.push(event, e);
                    }
                    rows.insert(conn).await?;
                }
                Step::Other(event) => self.apply(conn, event).await?,
            }
        }
        Ok(())
    }
}

/// New rows of `analytics_reports`, column by column, for one multi-row insert: the
/// values [`Analytics::apply`] binds for a `ReportSubmitted`, bound the same way (so a
/// time is cut to microseconds as there, not rounded as text would be).
#[derive(Default)]
struct SubmittedRows {
    report_id: Vec<Uuid>,
    station_id: Vec<Uuid>,
    priority: Vec<&'static str>,
    /// Each report's codes joined by `,` (a code is `[A-Z][A-Z0-9_]+`, checked when the
    /// event is decoded, so the join splits back exactly).
    codes: Vec<String>,
    latitude: Vec<f64>,
    longitude: Vec<f64>,
    cell: Vec<String>,
    submitted_at: Vec<DateTime<Utc>>,
    position: Vec<i64>,
}

impl SubmittedRows {
    fn push(&mut self, event: &RecordedEvent, e: &precinct_domain::report::ReportSubmitted) {
        let (lat, lon) = (e.location.latitude.value(), e.location.longitude.value());
        let codes = e.resolved_codes();
        let codes: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        self.report_id.push(event.envelope.aggregate_id);
        self.station_id.push(e.station_id.as_uuid());
        self.priority.push(e.priority.as_str());
        self.codes.push(codes.join(","));
        self.latitude.push(lat);
        self.longitude.push(lon);
        self.cell
            .push(precinct_readmodel::queries::analytics_cell(lat, lon));
        self.submitted_at.push(e.at);
        self.position.push(to_i64(event.position()));
    }

    /// Inserts the rows in one statement.
    async fn insert(self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        sqlx::query(
            "INSERT INTO analytics_reports (report_id, station_id, priority, status,
                crime_type_codes, latitude, longitude, cell, submitted_at, last_position)
             SELECT report_id, station_id, priority, 'NEW', string_to_array(codes, ','),
                latitude, longitude, cell, submitted_at, last_position
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::float8[],
                $6::float8[], $7::text[], $8::timestamptz[], $9::int8[])
                AS r(report_id, station_id, priority, codes, latitude, longitude, cell,
                     submitted_at, last_position)",
        )
        .bind(self.report_id)
        .bind(self.station_id)
        .bind(self.priority)
        .bind(self.codes)
        .bind(self.latitude)
        .bind(self.longitude)
        .bind(self.cell)
        .bind(self.submitted_at)
        .bind(self.position)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Moves the report to `status` and sets `column` (a `first_*_at`) unless it is set.
async fn milestone(
    conn: &mut PgConnection,
    id: Uuid,
    pos: i64,
    status: &'static str,
    column: &'static str,
    at: DateTime<Utc>,
) -> Result<sqlx::postgres::PgQueryResult, ProjectionError> {
    Ok(sqlx::query(&format!(
        "UPDATE analytics_reports SET status = $2, {column} = COALESCE({column}, $3),
            last_position = $4
         WHERE report_id = $1"
    ))
    .bind(id)
    .bind(status)
    .bind(at)
    .bind(pos)
    .execute(&mut *conn)
    .await?)
}

/// Only moves the report's position (an event that changes no analytics fact).
async fn touch(
    conn: &mut PgConnection,
    id: Uuid,
    pos: i64,
) -> Result<sqlx::postgres::PgQueryResult, ProjectionError> {
    Ok(
        sqlx::query("UPDATE analytics_reports SET last_position = $2 WHERE report_id = $1")
            .bind(id)
            .bind(pos)
            .execute(&mut *conn)
            .await?,
    )
}

/// Sets `set` (with `$2` = the event's time, `$3` = its actor) on the report's current
/// assignment, which must exist.
async fn on_current(
    conn: &mut PgConnection,
    id: Uuid,
    set: &str,
    at: DateTime<Utc>,
    actor: Option<Uuid>,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let done = sqlx::query(&format!(
        "UPDATE analytics_assignments a SET {set}
         FROM analytics_reports r
         WHERE r.report_id = $1 AND a.report_id = r.report_id AND a.seq = r.current_seq"
    ))
    .bind(id)
    .bind(at)
    .bind(actor)
    .execute(&mut *conn)
    .await?;
    expect_row(done, event, ASSIGNMENTS)
}

/// Ends the report's open assignment, if any (the report was rejected, withdrawn or
/// closed as a duplicate while a patrol held it).
async fn end_open(
    conn: &mut PgConnection,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "UPDATE analytics_assignments SET ended_at = $2
         WHERE report_id = $1 AND ended_at IS NULL",
    )
    .bind(id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
