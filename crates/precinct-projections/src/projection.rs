//! The [`Projection`] trait: how one read model folds one event.

use std::future::Future;

use precinct_eventlog::RecordedEvent;
use sqlx::PgConnection;

use crate::error::ProjectionError;
use crate::projections::{
    accounts, analytics, audit, crime_types, patrols, reports, stations, webhooks,
};

/// One read model fed by the event log.
///
/// `apply` runs inside the batch's transaction (`conn` is that transaction), after the
/// checkpoint row was locked and before it is moved: whatever it writes commits or
/// rolls back together with the checkpoint. It must be deterministic in the event
/// alone (no `now()`, no randomness), so that a rebuild gives the same rows. Events it
/// has no interest in are a no-op; an event it cannot decode or apply is an error,
/// which quarantines the event and holds back its aggregate in this projection
/// ([`crate::quarantine`]). The rows of one aggregate must depend on that aggregate's
/// events only (and on erasures, which reach every read through the log), so that a
/// held-back aggregate applied late by a repair ends as it would have in order.
pub trait Projection: Send + Sync + 'static {
    /// The checkpoint row's name; stable forever.
    const NAME: &'static str;

    /// The tables this projection owns (truncated by a rebuild).
    fn tables() -> &'static [&'static str];

    fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send;

    /// Applies a run of events in log order, in the batch's transaction. The default
    /// applies them one by one; a projection overrides it to write many rows per
    /// statement (the catch-up and rebuild paths are bound by round trips). It must
    /// leave exactly the rows that [`Projection::apply`] over the same events would.
    /// When it fails with a non-transient error, the worker rolls the batch back and
    /// replays it event by event to quarantine the poison ones.
    fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send {
        async move {
            for event in events {
                self.apply(conn, event).await?;
            }
            Ok(())
        }
    }
}

/// Every table of the event projections.
pub(crate) fn event_tables() -> Vec<&'static str> {
    [
        reports::Reports::tables(),
        patrols::Patrols::tables(),
        stations::Stations::tables(),
        crime_types::CrimeTypes::tables(),
        webhooks::Webhooks::tables(),
        accounts::Accounts::tables(),
        audit::Audit::tables(),
        analytics::Analytics::tables(),
    ]
    .concat()
}

/// Decodes an event's payload as one aggregate's event enum; a failure is poison.
pub(crate) fn decode<E: precinct_domain::DomainEvent>(
    event: &RecordedEvent,
) -> Result<E, ProjectionError> {
    E::from_parts_ref(&event.envelope.event_type, &event.data).map_err(|e| {
        ProjectionError::Decode {
            position: event.position(),
            event_type: event.envelope.event_type.clone(),
            reason: e.to_string(),
        }
    })
}

/// A batch cut for [`Projection::apply_batch`]: runs of consecutive `ReportSubmitted`
/// (what intake and catch-up are made of, written many rows per statement) and the
/// other events one by one, in log order.
pub(crate) enum Step<'a> {
    Submitted(Vec<(&'a RecordedEvent, precinct_domain::report::ReportSubmitted)>),
    Other(&'a RecordedEvent),
}

/// Cuts `events` into [`Step`]s, decoding each `ReportSubmitted` once; a submission
/// that does not decode is an error (the batch is then replayed event by event, which
/// quarantines it).
pub(crate) fn submitted_runs(events: &[RecordedEvent]) -> Result<Vec<Step<'_>>, ProjectionError> {
    use precinct_domain::report::ReportEvent;
    let mut steps = Vec::new();
    let mut run = Vec::new();
    for event in events {
        if event.envelope.aggregate_type == "report"
            && event.envelope.event_type == "ReportSubmitted"
        {
            if let ReportEvent::ReportSubmitted(e) = decode::<ReportEvent>(event)? {
                run.push((event, e));
                continue;
            }
        }
        if !run.is_empty() {
            steps.push(Step::Submitted(std::mem::take(&mut run)));
        }
        steps.push(Step::Other(event));
    }
    if !run.is_empty() {
        steps.push(Step::Submitted(run));
    }
    Ok(steps)
}

/// Fails with [`ProjectionError::MissingRow`] when an update touched no row.
pub(crate) fn expect_row(
    result: sqlx::postgres::PgQueryResult,
    event: &RecordedEvent,
    table: &'static str,
) -> Result<(), ProjectionError> {
    if result.rows_affected() == 0 {
        return Err(ProjectionError::MissingRow {
            position: event.position(),
            event_type: event.envelope.event_type.clone(),
            table,
            id: event.envelope.aggregate_id,
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use precinct_eventlog::{Actor, Envelope};
    use uuid::Uuid;

    /// A recorded event with these parts (for the crate's unit tests).
    pub(crate) fn event(
        position: u64,
        aggregate_type: &str,
        event_type: &str,
        data: serde_json::Value,
    ) -> RecordedEvent {
        RecordedEvent {
            envelope: Envelope {
                event_id: Uuid::new_v4(),
                event_type: event_type.into(),
                schema_version: 1,
                aggregate_type: aggregate_type.into(),
                aggregate_id: Uuid::new_v4(),
                position,
                occurred_at: chrono::Utc::now(),
                actor: Actor::System,
                command_id: Uuid::nil(),
                correlation_id: Uuid::nil(),
                causation_id: None,
                command_size: None,
                request_hash: None,
            },
            data,
        }
    }

    /// A report submission as the log holds it.
    fn submitted(position: u64) -> RecordedEvent {
        use precinct_domain::ids::{ReportId, StationId};
        use precinct_domain::report::{
            PersonalDetails, ReportEvent, ReportLocation, ReportSubmitted, Reporter,
        };
        use precinct_domain::routing::{RoutingDecision, RoutingRule};
        use precinct_domain::values::{GeoPoint, Priority, TokenHash};
        use precinct_domain::DomainEvent;
        let station = StationId::new(Uuid::new_v4());
        let e = ReportEvent::from(ReportSubmitted {
            report_id: ReportId::new(Uuid::new_v4()),
            title: "Bike stolen".into(),
            crime_types: vec!["Theft".into()],
            crime_type_codes: vec![],
            location: ReportLocation::new(
                GeoPoint::parse(7.07, 125.61).expect("point"),
                None,
                None,
            ),
            occurred_at: None,
            media_urls: vec![],
            reporter: Reporter::Anonymous {
                tracking_token_hash: TokenHash::parse(&"ab".repeat(32)).expect("hash"),
            },
            station_id: station,
            routing: RoutingDecision {
                station_id: station,
                rule: RoutingRule::PrecinctArea,
                matched_keyword: None,
                distance_m: None,
            },
            priority: Priority::Medium,
            personal: PersonalDetails {
                description: "Someone took it".into(),
                street: None,
                contact: None,
                erased: false,
            },
            at: chrono::Utc::now(),
        });
        event(position, "report", e.event_type(), e.to_data())
    }

    /// The steps as `S1,2` (a run of submissions at positions 1 and 2) and `O3`.
    fn shape(steps: &[Step<'_>]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Submitted(run) => format!(
                    "S{}",
                    run.iter()
                        .map(|(e, _)| e.position().to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                Step::Other(e) => format!("O{}", e.position()),
            })
            .collect()
    }

    #[test]
    fn consecutive_submissions_are_one_run_and_the_rest_comes_one_by_one_in_order() {
        let other = |p| {
            event(
                p,
                "report",
                "ReportTriaged",
                serde_json::json!({"priority": "HIGH"}),
            )
        };
        let events = [other(1), submitted(2), submitted(3), other(4), submitted(5)];
        let steps = submitted_runs(&events).expect("steps");
        assert_eq!(shape(&steps), ["O1", "S2,3", "O4", "S5"]);
        let events = [submitted(1), other(2)];
        assert_eq!(
            shape(&submitted_runs(&events).expect("steps")),
            ["S1", "O2"]
        );
        assert!(submitted_runs(&[]).expect("steps").is_empty());
    }

    #[test]
    fn only_a_reports_submission_is_decoded_here() {
        // Another aggregate's event of that name is not a report's submission, and an
        // event of a report that is no submission is not decoded (its projection does
        // that, and quarantines it alone if it cannot).
        let events = [
            event(1, "patrol", "ReportSubmitted", serde_json::json!({})),
            event(
                2,
                "report",
                "ReportTriaged",
                serde_json::json!("not an event"),
            ),
        ];
        assert_eq!(
            shape(&submitted_runs(&events).expect("steps")),
            ["O1", "O2"]
        );
        // A report's submission that does not decode fails the batch (which the worker
        // then replays event by event).
        let events = [event(1, "report", "ReportSubmitted", serde_json::json!({}))];
        assert!(matches!(
            submitted_runs(&events),
            Err(ProjectionError::Decode { position: 1, .. })
        ));
    }
}
