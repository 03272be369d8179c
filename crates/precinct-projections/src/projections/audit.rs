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
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// Every event is one row: the whole batch is one `INSERT … SELECT FROM UNNEST`.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let n = events.len();
        let mut position = Vec::with_capacity(n);
        let mut at = Vec::with_capacity(n);
        let mut actor_kind = Vec::with_capacity(n);
        let mut actor_id = Vec::with_capacity(n);
        let mut actor_role = Vec::with_capacity(n);
        let mut action = Vec::with_capacity(n);
        let mut target_type = Vec::with_capacity(n);
        let mut target_id = Vec::with_capacity(n);
        let mut correlation_id = Vec::with_capacity(n);
        let mut command_id = Vec::with_capacity(n);
        for event in events {
            let env = &event.envelope;
            position.push(to_i64(event.position()));
            at.push(env.occurred_at);
            actor_kind.push(match env.actor {
                Actor::User { .. } => "USER",
                Actor::Anonymous => "ANONYMOUS",
                Actor::System => "SYSTEM",
            });
            actor_id.push(env.actor.id());
            actor_role.push(env.actor.role());
            action.push(env.event_type.as_str());
            target_type.push(env.aggregate_type.as_str());
            target_id.push(env.aggregate_id);
            correlation_id.push(env.correlation_id);
            command_id.push(env.command_id);
        }
        sqlx::query(
            "INSERT INTO audit (position, at, actor_kind, actor_id, actor_role, action,
                target_type, target_id, correlation_id, command_id)
             SELECT * FROM UNNEST($1::bigint[], $2::timestamptz[], $3::text[], $4::uuid[],
                $5::text[], $6::text[], $7::text[], $8::uuid[], $9::uuid[], $10::uuid[])",
        )
        .bind(position)
        .bind(at)
        .bind(actor_kind)
        .bind(actor_id)
        .bind(actor_role)
        .bind(action)
        .bind(target_type)
        .bind(target_id)
        .bind(correlation_id)
        .bind(command_id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
