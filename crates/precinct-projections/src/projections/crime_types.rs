//! `crime_types`: the crime-type catalogue (ADR 0026), one row per type created through
//! the log, active or retired. `OTHER` is built in and never stored (the queries add
//! it). Public data only.

use precinct_domain::crime_type::{CrimeType, CrimeTypeEvent};
use precinct_domain::Aggregate;
use precinct_eventlog::RecordedEvent;
use sqlx::PgConnection;

use crate::error::ProjectionError;
use crate::projection::{decode, expect_row, Projection};

/// The `crime_types` read model.
#[derive(Debug, Default, Clone, Copy)]
pub struct CrimeTypes;

const TABLE: &str = "crime_types";

impl Projection for CrimeTypes {
    const NAME: &'static str = precinct_readmodel::names::CRIME_TYPES;

    fn tables() -> &'static [&'static str] {
        &[TABLE]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if event.envelope.aggregate_type != CrimeType::TYPE {
            return Ok(());
        }
        let done = match decode::<CrimeTypeEvent>(event)? {
            CrimeTypeEvent::CrimeTypeCreated(e) => {
                sqlx::query(
                    "INSERT INTO crime_types (code, names, default_priority, keywords,
                        service_code, group_name, active, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, true, $7, $7)",
                )
                .bind(e.code.as_str())
                .bind(sqlx::types::Json(&e.names))
                .bind(e.default_priority.as_str())
                .bind(&e.keywords)
                .bind(&e.service_code)
                .bind(&e.group)
                .bind(e.at)
                .execute(&mut *conn)
                .await?
            }
            CrimeTypeEvent::CrimeTypeUpdated(e) => {
                sqlx::query(
                    "UPDATE crime_types SET names = $2, default_priority = $3, keywords = $4,
                        service_code = $5, group_name = $6, updated_at = $7
                     WHERE code = $1",
                )
                .bind(e.code.as_str())
                .bind(sqlx::types::Json(&e.names))
                .bind(e.default_priority.as_str())
                .bind(&e.keywords)
                .bind(&e.service_code)
                .bind(&e.group)
                .bind(e.at)
                .execute(&mut *conn)
                .await?
            }
            CrimeTypeEvent::CrimeTypeRetired(e) => {
                sqlx::query(
                    "UPDATE crime_types SET active = false, updated_at = $2 WHERE code = $1",
                )
                .bind(e.code.as_str())
                .bind(e.at)
                .execute(&mut *conn)
                .await?
            }
        };
        expect_row(done, event, TABLE)
    }
}
