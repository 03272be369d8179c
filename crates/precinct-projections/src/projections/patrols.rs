//! `patrols`: the roster (call sign, station, officers, status) and each patrol's
//! workload (open assignments, declines, last assignment), which is what automatic
//! assignment ranks on. The live location columns are not filled from events.

use precinct_domain::patrol::{AssignmentOutcome, PatrolEvent};
use precinct_eventlog::RecordedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::checkpoint::to_i64;
use crate::error::ProjectionError;
use crate::projection::{decode, expect_row, Projection};

/// The `patrols` read model.
#[derive(Debug, Default, Clone, Copy)]
pub struct Patrols;

const TABLE: &str = "patrols";

fn uuids<T: Copy + Into<Uuid>>(ids: &[T]) -> Vec<Uuid> {
    ids.iter().map(|id| (*id).into()).collect()
}

impl Projection for Patrols {
    const NAME: &'static str = precinct_readmodel::names::PATROLS;

    fn tables() -> &'static [&'static str] {
        &[TABLE]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if event.envelope.aggregate_type != "patrol" {
            return Ok(());
        }
        let id = event.envelope.aggregate_id;
        let pos = to_i64(event.position());
        let result = match decode::<PatrolEvent>(event)? {
            PatrolEvent::PatrolRegistered(e) => {
                sqlx::query(
                    "INSERT INTO patrols (id, call_sign, station_id, officer_ids, status,
                        registered_at, updated_at, last_position)
                     VALUES ($1, $2, $3, $4, 'AVAILABLE', $5, $5, $6)",
                )
                .bind(e.patrol_id.as_uuid())
                .bind(&e.call_sign)
                .bind(e.station_id.as_uuid())
                .bind(uuids(&e.officer_ids))
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?;
                return Ok(());
            }
            PatrolEvent::PatrolUpdated(e) => {
                sqlx::query(
                    "UPDATE patrols SET call_sign = COALESCE($2, call_sign),
                        officer_ids = COALESCE($3, officer_ids),
                        updated_at = $4, last_position = $5
                     WHERE id = $1",
                )
                .bind(id)
                .bind(&e.call_sign)
                .bind(e.officer_ids.as_deref().map(uuids))
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            PatrolEvent::PatrolStatusChanged(e) => {
                sqlx::query(
                    "UPDATE patrols SET status = $2, updated_at = $3, last_position = $4
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.status.as_str())
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            PatrolEvent::PatrolAssignmentOpened(e) => {
                sqlx::query(
                    "UPDATE patrols SET open_assignments = open_assignments + 1,
                        last_assigned_at = $2, updated_at = $2, last_position = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
            PatrolEvent::PatrolAssignmentClosed(e) => {
                let declined = i32::from(e.outcome == AssignmentOutcome::Declined);
                sqlx::query(
                    "UPDATE patrols SET open_assignments = open_assignments - 1,
                        declines = declines + $2, updated_at = $3, last_position = $4
                     WHERE id = $1",
                )
                .bind(id)
                .bind(declined)
                .bind(e.at)
                .bind(pos)
                .execute(&mut *conn)
                .await?
            }
        };
        expect_row(result, event, TABLE)
    }
}
