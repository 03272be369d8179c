//! `audit`: one row per event of every type, from the envelope alone (who, what,
//! which target, when, under which command and correlation). Payloads are not read,
//! so this projection never stops on an event another projection cannot decode.

use precinct_eventlog::{Actor, RecordedEvent};
use sqlx::PgConnection;

use crate::checkpoint::to_i64;
use crate::error::ProjectionError;
use crate::projection::Projection;

/// The `audit` read model.
#[derive(Debug, Default, Clone, Copy)]
pub struct Audit;

impl Projection for Audit {
    const NAME: &'static str = "audit";

    fn tables() -> &'static [&'static str] {
        &["audit"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let env = &event.envelope;
        let kind = match env.actor {
            Actor::User { .. } => "USER",
            Actor::Anonymous => "ANONYMOUS",
            Actor::System => "SYSTEM",
        };
        sqlx::query(
            "INSERT INTO audit (position, at, actor_kind, actor_id, actor_role, action,
                target_type, target_id, correlation_id, command_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(to_i64(event.position()))
        .bind(env.occurred_at)
        .bind(kind)
        .bind(env.actor.id())
        .bind(env.actor.role())
        .bind(&env.event_type)
        .bind(&env.aggregate_type)
        .bind(env.aggregate_id)
        .bind(env.correlation_id)
        .bind(env.command_id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
