//! `stations`: precincts and divisions, with the data routing decides on (point,
//! GeoJSON area, division keywords).

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
                        crime_types, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
        }
        Ok(())
    }
}
