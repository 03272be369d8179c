//! `webhooks`: webhook subscriptions (ADR 0028), one row per subscription created
//! through the log, deleted ones kept as `deleted`. The secret is not projected (it is
//! sealed in the log and read from there by the deliverer).

use precinct_domain::webhook::{Webhook, WebhookEvent};
use precinct_domain::Aggregate;
use precinct_eventlog::RecordedEvent;
use sqlx::PgConnection;

use crate::error::ProjectionError;
use crate::projection::{decode, expect_row, Projection};

/// The `webhooks` read model.
#[derive(Debug, Default, Clone, Copy)]
pub struct Webhooks;

const TABLE: &str = "webhooks";

impl Projection for Webhooks {
    const NAME: &'static str = precinct_readmodel::names::WEBHOOKS;

    fn tables() -> &'static [&'static str] {
        &[TABLE]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if event.envelope.aggregate_type != Webhook::TYPE {
            return Ok(());
        }
        let position = event.position() as i64;
        let id = event.envelope.aggregate_id;
        let done =
            match decode::<WebhookEvent>(event)? {
                WebhookEvent::WebhookCreated(e) => sqlx::query(
                    "INSERT INTO webhooks (id, url, event_types, station_id, area, personal_data,
                        enabled, created_by, created_position, version, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, true, $7, $8, $8, $9, $9)",
                )
                .bind(id)
                .bind(&e.url)
                .bind(&e.filter.event_types)
                .bind(e.filter.station_id.map(|s| s.as_uuid()))
                .bind(
                    e.filter
                        .area
                        .as_ref()
                        .map(|a| sqlx::types::Json(a.coordinates().clone())),
                )
                .bind(e.personal_data)
                .bind(e.created_by.as_uuid())
                .bind(position)
                .bind(e.at)
                .execute(&mut *conn)
                .await?,
                WebhookEvent::WebhookUpdated(e) => {
                    sqlx::query(
                        "UPDATE webhooks SET url = $2, event_types = $3, area = $4,
                        personal_data = $5, enabled = $6,
                        disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END,
                        version = $7, updated_at = $8
                     WHERE id = $1",
                    )
                    .bind(id)
                    .bind(&e.url)
                    .bind(&e.filter.event_types)
                    .bind(
                        e.filter
                            .area
                            .as_ref()
                            .map(|a| sqlx::types::Json(a.coordinates().clone())),
                    )
                    .bind(e.personal_data)
                    .bind(e.enabled)
                    .bind(position)
                    .bind(e.at)
                    .execute(&mut *conn)
                    .await?
                }
                WebhookEvent::WebhookSecretRotated(e) => {
                    sqlx::query("UPDATE webhooks SET version = $2, updated_at = $3 WHERE id = $1")
                        .bind(id)
                        .bind(position)
                        .bind(e.at)
                        .execute(&mut *conn)
                        .await?
                }
                WebhookEvent::WebhookDisabled(e) => {
                    sqlx::query(
                        "UPDATE webhooks SET enabled = false, disabled_reason = $2, version = $3,
                        updated_at = $4
                     WHERE id = $1",
                    )
                    .bind(id)
                    .bind(&e.reason)
                    .bind(position)
                    .bind(e.at)
                    .execute(&mut *conn)
                    .await?
                }
                WebhookEvent::WebhookReplayRequested(e) => {
                    sqlx::query(
                        "UPDATE webhooks SET replay_from = $2, replay_position = $3, version = $3,
                        updated_at = $4
                     WHERE id = $1",
                    )
                    .bind(id)
                    .bind(e.from_position as i64)
                    .bind(position)
                    .bind(e.at)
                    .execute(&mut *conn)
                    .await?
                }
                WebhookEvent::WebhookDeleted(e) => {
                    sqlx::query(
                        "UPDATE webhooks SET deleted = true, enabled = false, version = $2,
                        updated_at = $3
                     WHERE id = $1",
                    )
                    .bind(id)
                    .bind(position)
                    .bind(e.at)
                    .execute(&mut *conn)
                    .await?
                }
            };
        expect_row(done, event, TABLE)
    }
}
