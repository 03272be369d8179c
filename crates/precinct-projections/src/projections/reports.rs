//! `reports`: one row per report with its full current state, mirroring the report
//! aggregate's `apply` (a decline clears the patrol, a rejected closure goes back to
//! `RESPONDING`, a new assignment clears the clocks and recorded SLA breaches; a
//! withdrawal or a reopening puts it back in the queue; a transfer moves it to another
//! station and marks how it arrived there, `arrival`; a duplicate is closed into its
//! primary, `duplicate_of`, which lists it in `duplicates`; `related` lists the reports
//! linked both ways).
//!
//! Personal data (`description`, `street`, `contact`: the events' `personal`
//! sub-object) is kept in its own columns so it can be encrypted or erased alone.

use precinct_domain::report::{ReportEvent, Reporter};
use precinct_domain::values::SlaKind;
use precinct_eventlog::RecordedEvent;
use sqlx::PgConnection;

use crate::checkpoint::to_i64;
use crate::error::ProjectionError;
use crate::projection::{decode, expect_row, submitted_runs, Projection, Step};

/// The `reports` read model.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reports;

const TABLE: &str = "reports";

impl Projection for Reports {
    const NAME: &'static str = precinct_readmodel::names::REPORTS;

    fn tables() -> &'static [&'static str] {
        &[TABLE]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if event.envelope.aggregate_type == "subject"
            && event.envelope.event_type == "DataSubjectErased"
        {
            return erase_subject(conn, event.envelope.aggregate_id).await;
        }
        if event.envelope.aggregate_type != "report" {
            return Ok(());
        }
        let id = event.envelope.aggregate_id;
        let pos = to_i64(event.position());
        let decoded = decode::<ReportEvent>(event)?;
        let result = match decoded {
            ReportEvent::ReportSubmitted(e) => {
                let row = submitted_row(event, &e)?;
                return insert_submitted(conn, vec![row]).await;
            }
            ReportEvent::ReportAmended(e) => {
                let c = &e.changes;
                let personal = e.personal.clone().unwrap_or_default();
                let location = c.location.as_ref();
                sqlx::query(
                    "UPDATE reports SET
                        title = COALESCE($2, title),
                        crime_types = COALESCE($3, crime_types),
                        latitude = CASE WHEN $4 THEN $5 ELSE latitude END,
                        longitude = CASE WHEN $4 THEN $6 ELSE longitude END,
                        city = CASE WHEN $4 THEN $7 ELSE city END,
                        state = CASE WHEN $4 THEN $8 ELSE state END,
                        occurred_at = COALESCE($9, occurred_at),
                        media_urls = COALESCE($10, media_urls),
                        description = COALESCE($11, description),
                        street = COALESCE($12, street),
                        contact = COALESCE($13, contact),
                        updated_at = $14, last_position = $15,
                        crime_type_codes = COALESCE($16, crime_type_codes)
                     WHERE id = $1",
                )
                .bind(id)
                .bind(&c.title)
                .bind(&c.crime_types)
                .bind(location.is_some())
                .bind(location.map(|l| l.latitude.value()))
                .bind(location.map(|l| l.longitude.value()))
                .bind(location.and_then(|l| l.city.clone()))
                .bind(location.and_then(|l| l.state.clone()))
                .bind(c.occurred_at)
                .bind(&c.media_urls)
                .bind(personal.description)
                .bind(personal.street)
                .bind(personal.contact)
                .bind(e.at)
                .bind(pos)
                .bind(e.crime_type_codes.as_ref().map(|codes| {
                    codes
                        .iter()
                        .map(|c| c.as_str().to_string())
                        .collect::<Vec<_>>()
                }))
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportTriaged(e) => {
                sqlx::query(
                    "UPDATE reports SET priority = $2, updated_at = $3, last_position = $4
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.priority.as_str())
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportAssigned(e) => {
                sqlx::query(
                    "UPDATE reports SET status = 'ASSIGNED', patrol_id = $2, assigned_at = $3,
                        accepted_at = NULL, responding_at = NULL, resolved_at = NULL,
                        resolution_notes = NULL,
                        sla_accept_breached_at = NULL, sla_respond_breached_at = NULL,
                        updated_at = $3, last_position = $4
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.patrol_id.as_uuid())
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::AssignmentAccepted(e) => {
                sqlx::query(
                    "UPDATE reports SET status = 'ACCEPTED', accepted_at = $2,
                        updated_at = $2, last_position = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::AssignmentDeclined(e) => {
                sqlx::query(
                    "UPDATE reports SET status = 'NEW', patrol_id = NULL, assigned_at = NULL,
                        sla_accept_breached_at = NULL, sla_respond_breached_at = NULL,
                        declines = declines + 1, updated_at = $2, last_position = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportResponding(e) => {
                sqlx::query(
                    "UPDATE reports SET status = 'RESPONDING', responding_at = $2,
                        updated_at = $2, last_position = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::NoteAdded(e) => {
                let note = serde_json::to_value(&e).map_err(|err| decode_error(event, err))?;
                sqlx::query(
                    "UPDATE reports SET notes = notes || jsonb_build_array($2::jsonb),
                        updated_at = $3, last_position = $4
                     WHERE id = $1",
                )
                .bind(id)
                .bind(note)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::PublicUpdatePosted(e) => {
                let update = serde_json::to_value(&e).map_err(|err| decode_error(event, err))?;
                sqlx::query(
                    "UPDATE reports SET public_updates = public_updates || jsonb_build_array($2::jsonb),
                        updated_at = $3, last_position = $4
                     WHERE id = $1",
                )
                .bind(id)
                .bind(update)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::EvidenceAttached(e) => {
                let evidence = serde_json::to_value(&e).map_err(|err| decode_error(event, err))?;
                sqlx::query(
                    "UPDATE reports SET evidence = evidence || jsonb_build_array($2::jsonb),
                        updated_at = $3, last_position = $4
                     WHERE id = $1",
                )
                .bind(id)
                .bind(evidence)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportResolved(e) => {
                sqlx::query(
                    "UPDATE reports SET status = 'RESOLVED', resolved_at = $2,
                        resolution_notes = $3, updated_at = $2, last_position = $4
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.at)
                .bind(&e.resolution_notes)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ClosureApproved(e) => {
                sqlx::query(
                    "UPDATE reports SET status = 'CLOSED', closed_at = $2,
                        updated_at = $2, last_position = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ClosureRejected(e) => {
                sqlx::query(
                    "UPDATE reports SET status = 'RESPONDING', resolved_at = NULL,
                        resolution_notes = NULL, updated_at = $2, last_position = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportRejected(e) => {
                sqlx::query(
                    "UPDATE reports SET status = 'REJECTED', rejection_justification = $2,
                        rejection_public_reason = $5, updated_at = $3, last_position = $4
                     WHERE id = $1",
                )
                .bind(id)
                .bind(&e.justification)
                .bind(e.at)
                .bind(pos)
                .bind(&e.public_reason)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportWithdrawn(e) => {
                sqlx::query(
                    "UPDATE reports SET status = 'WITHDRAWN', withdrawal_reason = $2,
                        updated_at = $3, last_position = $4
                     WHERE id = $1",
                )
                .bind(id)
                .bind(&e.reason)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            // Facts about the clock, not changes to the report: `updated_at` stays.
            ReportEvent::SlaBreached(e) => {
                sla_mark(conn, id, e.kind, "breached", e.at, pos).await?
            }
            ReportEvent::SlaWarned(e) => sla_mark(conn, id, e.kind, "warned", e.at, pos).await?,
            ReportEvent::AssignmentWithdrawn(e) => {
                // Back in the queue; not the patrol's decline (`declines` stays).
                sqlx::query(
                    "UPDATE reports SET status = 'NEW', patrol_id = NULL, assigned_at = NULL,
                        accepted_at = NULL, responding_at = NULL, resolved_at = NULL,
                        resolution_notes = NULL,
                        sla_accept_breached_at = NULL, sla_respond_breached_at = NULL,
                        updated_at = $2, last_position = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportTransferred(e) => {
                sqlx::query(
                    "UPDATE reports SET station_id = $2, arrival = 'TRANSFERRED',
                        transfers = transfers + 1, transferred_at = $3,
                        updated_at = $3, last_position = $4
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.station_id.as_uuid())
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportReopened(e) => {
                sqlx::query(
                    "UPDATE reports SET status = 'NEW', patrol_id = NULL, assigned_at = NULL,
                        accepted_at = NULL, responding_at = NULL, resolved_at = NULL,
                        closed_at = NULL, resolution_notes = NULL,
                        rejection_justification = NULL, rejection_public_reason = NULL,
                        sla_accept_breached_at = NULL, sla_respond_breached_at = NULL,
                        reopens = reopens + 1, reopened_at = $2,
                        updated_at = $2, last_position = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::ReportMarkedDuplicate(e) => {
                // Any assignment was withdrawn by the event before, in the same append.
                sqlx::query(
                    "UPDATE reports SET status = 'CLOSED', duplicate_of = $2, closed_at = $3,
                        updated_at = $3, last_position = $4
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.primary_id.as_uuid())
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::DuplicateUnmarked(e) => {
                sqlx::query(
                    "UPDATE reports SET status = 'NEW', duplicate_of = NULL, patrol_id = NULL,
                        assigned_at = NULL, accepted_at = NULL, responding_at = NULL,
                        resolved_at = NULL, closed_at = NULL, resolution_notes = NULL,
                        sla_accept_breached_at = NULL, sla_respond_breached_at = NULL,
                        updated_at = $2, last_position = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            ReportEvent::DuplicateAttached(e) => {
                add_link(conn, "duplicates", id, e.duplicate_id.as_uuid(), e.at, pos).await?
            }
            ReportEvent::DuplicateDetached(e) => {
                remove_link(conn, "duplicates", id, e.duplicate_id.as_uuid(), e.at, pos).await?
            }
            ReportEvent::ReportLinked(e) => {
                add_link(conn, "related", id, e.other_id.as_uuid(), e.at, pos).await?
            }
            ReportEvent::ReportUnlinked(e) => {
                remove_link(conn, "related", id, e.other_id.as_uuid(), e.at, pos).await?
            }
            // A request to notify the crew, not a change to the report: `updated_at`
            // stays. An escalation's AssignmentWithdrawn (and ReportAssigned), in the
            // same append, do its work.
            ReportEvent::PatrolNotified(_) | ReportEvent::SlaEscalated(_) => {
                sqlx::query("UPDATE reports SET last_position = $2 WHERE id = $1")
                    .bind(id)
                    .bind(pos)
                    .execute(&mut *conn)
                    .await?
            }
        };
        expect_row(result, event, TABLE)?;
        Ok(())
    }

    /// Runs of `ReportSubmitted` (what intake and catch-up are made of) become one
    /// multi-row insert each; any other event is applied on its own, so the order of
    /// effects is the log's.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for step in submitted_runs(events)? {
            match step {
                Step::Submitted(run) => {
                    let rows = run
                        .iter()
                        .map(|(event, e)| submitted_row(event, e))
                        .collect::<Result<_, _>>()?;
                    insert_submitted(conn, rows).await?;
                }
                Step::Other(event) => self.apply(conn, event).await?,
            }
        }
        Ok(())
    }
}

/// Appends `other` to the list `column` (`duplicates` or `related`) of report `id`,
/// unless it is there already (as the aggregate does).
async fn add_link(
    conn: &mut PgConnection,
    column: &'static str,
    id: uuid::Uuid,
    other: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
    pos: i64,
) -> Result<sqlx::postgres::PgQueryResult, ProjectionError> {
    Ok(sqlx::query(&format!(
        "UPDATE reports SET
            {column} = CASE WHEN $2 = ANY({column}) THEN {column} ELSE {column} || $2::uuid END,
            updated_at = $3, last_position = $4
         WHERE id = $1"
    ))
    .bind(id)
    .bind(other)
    .bind(at)
    .bind(pos)
    .execute(&mut *conn)
    .await?)
}

/// Removes `other` from the list `column` of report `id`.
async fn remove_link(
    conn: &mut PgConnection,
    column: &'static str,
    id: uuid::Uuid,
    other: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
    pos: i64,
) -> Result<sqlx::postgres::PgQueryResult, ProjectionError> {
    Ok(sqlx::query(&format!(
        "UPDATE reports SET {column} = array_remove({column}, $2),
            updated_at = $3, last_position = $4
         WHERE id = $1"
    ))
    .bind(id)
    .bind(other)
    .bind(at)
    .bind(pos)
    .execute(&mut *conn)
    .await?)
}

/// One new row of `reports` as JSON, for [`insert_submitted`]. A report replayed after
/// its subject's erasure arrives with its personal fields erased: the row says so.
fn submitted_row(
    event: &RecordedEvent,
    e: &precinct_domain::report::ReportSubmitted,
) -> Result<serde_json::Value, ProjectionError> {
    let (reporter_id, token_hash) = match &e.reporter {
        Reporter::User { account_id } => (Some(account_id.as_uuid()), None),
        Reporter::Anonymous {
            tracking_token_hash,
        } => (None, Some(tracking_token_hash.as_str().to_owned())),
    };
    let routing = serde_json::to_value(&e.routing).map_err(|err| decode_error(event, err))?;
    let rule = routing
        .get("rule")
        .and_then(|r| r.as_str())
        .unwrap_or_default()
        .to_owned();
    Ok(serde_json::json!({
        "id": e.report_id.as_uuid(),
        "station_id": e.station_id.as_uuid(),
        "priority": e.priority.as_str(),
        "title": e.title,
        "crime_types": e.crime_types,
        "crime_type_codes": e.resolved_codes(),
        "latitude": e.location.latitude.value(),
        "longitude": e.location.longitude.value(),
        "city": e.location.city,
        "state": e.location.state,
        "occurred_at": e.occurred_at.map(as_bound),
        "media_urls": e.media_urls,
        "reporter_id": reporter_id,
        "anonymous": reporter_id.is_none(),
        "tracking_token_hash": token_hash,
        "description": if e.personal.erased { "" } else { e.personal.description.as_str() },
        "street": if e.personal.erased { None } else { e.personal.street.as_deref() },
        "contact": if e.personal.erased { None } else { e.personal.contact.as_deref() },
        "erased": e.personal.erased,
        "routing_rule": rule,
        "routing": routing,
        "at": as_bound(e.at),
        "position": to_i64(event.position()),
    }))
}

/// `t` as PostgreSQL stores it when sqlx binds it, as [`Reports::apply`] does: cut to
/// whole microseconds since 2000-01-01 towards that epoch. The JSON of
/// [`insert_submitted`] carries the time as text, which PostgreSQL would round instead,
/// so the batch and the event-by-event paths would store times a microsecond apart.
fn as_bound(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    let epoch = chrono::DateTime::<chrono::Utc>::from_timestamp(946_684_800, 0)
        .expect("2000-01-01 is a valid time");
    match (t - epoch).num_microseconds() {
        Some(micros) => epoch + chrono::Duration::microseconds(micros),
        // Out of PostgreSQL's range either way; the insert refuses it as sqlx would.
        None => t,
    }
}

/// Inserts new reports, many rows in one statement.
async fn insert_submitted(
    conn: &mut PgConnection,
    rows: Vec<serde_json::Value>,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO reports (
            id, status, station_id, priority, title, crime_types, crime_type_codes,
            latitude, longitude, city, state, occurred_at, media_urls,
            reporter_id, anonymous, tracking_token_hash,
            description, street, contact, personal_erased, routing_rule, routing,
            submitted_at, updated_at, last_position)
         SELECT id, 'NEW', station_id, priority, title, crime_types, crime_type_codes,
            latitude, longitude, city, state, occurred_at, media_urls,
            reporter_id, anonymous, tracking_token_hash,
            description, street, contact, erased, routing_rule, routing,
            at, at, position
         FROM jsonb_to_recordset($1) AS r(
            id uuid, station_id uuid, priority text, title text, crime_types text[],
            crime_type_codes text[],
            latitude double precision, longitude double precision, city text, state text,
            occurred_at timestamptz, media_urls text[], reporter_id uuid, anonymous boolean,
            tracking_token_hash text, description text, street text, contact text,
            erased boolean, routing_rule text, routing jsonb, at timestamptz,
            position bigint)",
    )
    .bind(serde_json::Value::Array(rows))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Blanks every personal field of the subject's reports (an account's reports, or the
/// one anonymous report whose id is the subject).
const ERASE_SQL: &str = "UPDATE reports SET description = '', street = NULL, contact = NULL,
        personal_erased = true,
        evidence = COALESCE((SELECT jsonb_agg(x - 'description') FROM jsonb_array_elements(evidence) x), '[]'::jsonb)
     WHERE reporter_id = $1 OR (anonymous AND id = $1)";

async fn erase_subject(
    conn: &mut PgConnection,
    subject: uuid::Uuid,
) -> Result<(), ProjectionError> {
    sqlx::query(ERASE_SQL)
        .bind(subject)
        .execute(&mut *conn)
        .await?;
    // The snapshots `as_of` starts from are sealed under the destroyed key already
    // (unreadable); delete them too (ADR 0022). After the update above, none is stored
    // again for these reports (`precinct_readmodel::snapshots::save`).
    sqlx::query("DELETE FROM report_snapshots WHERE subject = $1")
        .bind(subject)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn decode_error(event: &RecordedEvent, err: serde_json::Error) -> ProjectionError {
    ProjectionError::Decode {
        position: event.position(),
        event_type: event.envelope.event_type.clone(),
        reason: err.to_string(),
    }
}

/// Records when an SLA warning or breach (`mark`: `warned`, `breached`) of `kind` was
/// recorded: the SLA worker's bookkeeping (ADR 0035).
async fn sla_mark(
    conn: &mut PgConnection,
    id: uuid::Uuid,
    kind: SlaKind,
    mark: &str,
    at: chrono::DateTime<chrono::Utc>,
    pos: i64,
) -> Result<sqlx::postgres::PgQueryResult, ProjectionError> {
    let clock = match kind {
        SlaKind::Accept => "accept",
        SlaKind::Respond => "respond",
        SlaKind::Resolve => "resolve",
    };
    Ok(sqlx::query(&format!(
        "UPDATE reports SET sla_{clock}_{mark}_at = $2, last_position = $3 WHERE id = $1"
    ))
    .bind(id)
    .bind(at)
    .bind(pos)
    .execute(&mut *conn)
    .await?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::as_bound;

    #[test]
    fn a_time_is_cut_to_microseconds_towards_2000_as_sqlx_binds_it() {
        let after = Utc.timestamp_opt(1_767_225_600, 789).unwrap();
        assert_eq!(
            as_bound(after),
            Utc.timestamp_opt(1_767_225_600, 0).unwrap()
        );
        let after = Utc.timestamp_opt(1_767_225_600, 1_999).unwrap();
        assert_eq!(
            as_bound(after),
            Utc.timestamp_opt(1_767_225_600, 1_000).unwrap()
        );
        // Before the epoch, towards it: up.
        let before = Utc.timestamp_opt(915_148_800, 1_999).unwrap();
        assert_eq!(
            as_bound(before),
            Utc.timestamp_opt(915_148_800, 2_000).unwrap()
        );
        let whole = Utc.timestamp_opt(1_767_225_600, 5_000).unwrap();
        assert_eq!(as_bound(whole), whole);
    }
}
