//! `stations`: precincts and divisions, with the data routing decides on (point,
//! GeoJSON area, division keywords), their contact number and whether they take new
//! reports, and its SLA policy (ADR 0035).

use precinct_domain::station::StationEvent;
use precinct_eventlog::RecordedEvent;
use sqlx::PgConnection;

use crate::error::ProjectionError;
use crate::projection::{decode, Projection};

/// The `stations` read model.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stations;

impl Projection for Stations {
    const NAME: &'static str = precinct_readmodel::names::STATIONS;

    fn tables() -> &'static [&'static str] {
        &["stations"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if event.envelope.aggregate_type != "station" {
            return Ok(());
        }
        match decode::<StationEvent>(event)? {
            StationEvent::StationCreated(e) => {
                sqlx::query(
                    "INSERT INTO stations (id, name, kind, latitude, longitude, area,
                        crime_types, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                )
                .bind(e.station_id.as_uuid())
                .bind(&e.name)
                .bind(e.kind.as_str())
                .bind(e.latitude.map(|l| l.value()))
                .bind(e.longitude.map(|l| l.value()))
                .bind(e.area.as_ref().map(|a| a.to_geojson()))
                .bind(&e.crime_types)
                .bind(e.at)
                .execute(&mut *conn)
                .await?;
            }
            StationEvent::StationUpdated(e) => {
                sqlx::query(
                    "UPDATE stations SET name = $2, latitude = $3, longitude = $4, area = $5,
                        crime_types = $6, contact_phone = $7, updated_at = $8
                     WHERE id = $1",
                )
                .bind(e.station_id.as_uuid())
                .bind(&e.name)
                .bind(e.latitude.map(|l| l.value()))
                .bind(e.longitude.map(|l| l.value()))
                .bind(e.area.as_ref().map(|a| a.to_geojson()))
                .bind(&e.crime_types)
                .bind(e.contact_phone.as_ref().map(|p| p.as_str()))
                .bind(e.at)
                .execute(&mut *conn)
                .await?;
            }
            StationEvent::StationDeactivated(e) => {
                set_active(conn, e.station_id.as_uuid(), false, e.at).await?;
            }
            StationEvent::StationReactivated(e) => {
                set_active(conn, e.station_id.as_uuid(), true, e.at).await?;
            }
            StationEvent::StationSlaPolicySet(e) => {
                sqlx::query("UPDATE stations SET sla_policy = $2, updated_at = $3 WHERE id = $1")
                    .bind(e.station_id.as_uuid())
                    .bind(sqlx::types::Json(&e.policy))
                    .bind(e.at)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }
}

async fn set_active(
    conn: &mut PgConnection,
    id: uuid::Uuid,
    active: bool,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), ProjectionError> {
    sqlx::query("UPDATE stations SET active = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(active)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
