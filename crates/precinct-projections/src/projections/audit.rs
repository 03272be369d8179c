//! `audit`: one row per event of every type, from the envelope (who, what, which target,
//! when, under which command and correlation), plus the station the target belonged to
//! at that moment. So that a rebuild gives the same rows, the station is learnt from the
//! events this projection sees itself, in log order — never from another read model,
//! which may be ahead or behind: the events that place an aggregate in a station
//! ([`PLACING`]) carry a `station_id`, and its own table `audit_targets` remembers the
//! last one per target. That one field of those few event types is all it reads of
//! payloads, leniently (an unreadable one places nothing), so this projection never
//! stops on an event another projection cannot decode.

use std::collections::HashMap;

use precinct_eventlog::{Actor, RecordedEvent};
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::checkpoint::to_i64;
use crate::error::ProjectionError;
use crate::projection::Projection;

/// The `audit` read model.
#[derive(Debug, Default, Clone, Copy)]
pub struct Audit;

/// The event types that say which station their aggregate belongs to from then on: its
/// creation (a station is its own), a role change (which may take an account to
/// another station, or out of every station), and a report's transfer. Exactly the event types whose payload has
/// a `station_id` (a test holds the schemas to that).
pub const PLACING: &[&str] = &[
    "StationCreated",
    "ReportSubmitted",
    "PatrolRegistered",
    "AccountRegistered",
    "AccountRoleChanged",
    "InviteCreated",
    "ReportTransferred",
    // A station's own events place it in itself, as its creation does.
    "StationUpdated",
    "StationDeactivated",
    "StationReactivated",
    "StationSlaPolicySet",
];

/// The one field of a placing event this projection reads (`null`: no station, e.g. an
/// ADMIN or a CITIZEN).
#[derive(Debug, Deserialize)]
struct Placement {
    station_id: Option<Uuid>,
}

/// The station this event puts its target in, if it is a placing event.
fn placement(event: &RecordedEvent) -> Option<Option<Uuid>> {
    if !PLACING.contains(&event.envelope.event_type.as_str()) {
        return None;
    }
    match Placement::deserialize(&event.data) {
        Ok(p) => Some(p.station_id),
        Err(e) => {
            // Deterministic either way: the same event places nothing on a rebuild too.
            tracing::warn!(position = event.position(), error = %e, "audit: unreadable station_id; target keeps its station");
            None
        }
    }
}

impl Projection for Audit {
    const NAME: &'static str = precinct_readmodel::names::AUDIT;

    fn tables() -> &'static [&'static str] {
        &["audit", "audit_targets"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// Every event is one row: the whole batch is one `INSERT … SELECT FROM UNNEST`,
    /// after one read of the stations its targets had before the batch.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let n = events.len();
        let mut targets: Vec<Uuid> = events.iter().map(|e| e.envelope.aggregate_id).collect();
        targets.sort_unstable();
        targets.dedup();
        let mut stations: HashMap<Uuid, Option<Uuid>> = sqlx::query_as::<_, (Uuid, Option<Uuid>)>(
            "SELECT target_id, station_id FROM audit_targets WHERE target_id = ANY($1)",
        )
        .bind(&targets)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        let mut placed: HashMap<Uuid, Option<Uuid>> = HashMap::new();

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
        let mut station_id = Vec::with_capacity(n);
        for event in events {
            let env = &event.envelope;
            if let Some(station) = placement(event) {
                stations.insert(env.aggregate_id, station);
                placed.insert(env.aggregate_id, station);
            }
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
            station_id.push(stations.get(&env.aggregate_id).copied().flatten());
        }
        sqlx::query(
            "INSERT INTO audit (position, at, actor_kind, actor_id, actor_role, action,
                target_type, target_id, correlation_id, command_id, station_id)
             SELECT * FROM UNNEST($1::bigint[], $2::timestamptz[], $3::text[], $4::uuid[],
                $5::text[], $6::text[], $7::text[], $8::uuid[], $9::uuid[], $10::uuid[],
                $11::uuid[])",
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
        .bind(station_id)
        .execute(&mut *conn)
        .await?;
        if !placed.is_empty() {
            let (ids, places): (Vec<Uuid>, Vec<Option<Uuid>>) = placed.into_iter().unzip();
            sqlx::query(
                "INSERT INTO audit_targets (target_id, station_id)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[])
                 ON CONFLICT (target_id) DO UPDATE SET station_id = EXCLUDED.station_id",
            )
            .bind(ids)
            .bind(places)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The placing event types are exactly those whose schema has a `station_id`: a new
    /// event type that moves an aggregate to a station (a transfer) must be added here.
    #[test]
    fn placing_events_are_the_ones_with_a_station_id() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/events");
        let mut with_station: Vec<String> = std::fs::read_dir(&dir)
            .expect("schemas")
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let schema: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
                schema["properties"].get("station_id")?;
                let name = path.file_name()?.to_str()?.split('.').next()?.to_string();
                Some(name)
            })
            .collect();
        with_station.sort();
        let mut placing: Vec<String> = PLACING.iter().map(|s| s.to_string()).collect();
        placing.sort();
        assert_eq!(with_station, placing);
    }
}
