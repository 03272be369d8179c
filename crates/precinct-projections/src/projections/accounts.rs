//! `accounts`: who has an account, with which role, station and active flag. The
//! password hash in `AccountRegistered` is deliberately never copied here. E-mail and
//! name are personal data: null (and `personal_erased`) once the account's data subject
//! is erased — a rebuild reads them as erased from the sealed events, and the erasure
//! event blanks accounts registered before e-mails were sealed.

use precinct_domain::account::AccountEvent;
use precinct_domain::subject::SubjectEvent;
use precinct_eventlog::RecordedEvent;
use sqlx::PgConnection;

use crate::error::ProjectionError;
use crate::projection::{decode, expect_row, Projection};

/// The `accounts` read model.
#[derive(Debug, Default, Clone, Copy)]
pub struct Accounts;

const TABLE: &str = "accounts";

impl Projection for Accounts {
    const NAME: &'static str = precinct_readmodel::names::ACCOUNTS;

    fn tables() -> &'static [&'static str] {
        &[TABLE]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if event.envelope.aggregate_type == "subject" {
            match decode::<SubjectEvent>(event)? {
                SubjectEvent::DataSubjectErased(e) => {
                    // Not every subject is an account (an anonymous report is one): no
                    // row to change is fine.
                    sqlx::query(
                        "UPDATE accounts SET email = NULL, name = NULL, personal_erased = true
                         WHERE id = $1",
                    )
                    .bind(e.subject_id)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            return Ok(());
        }
        if event.envelope.aggregate_type != "account" {
            return Ok(());
        }
        let id = event.envelope.aggregate_id;
        let result =
            match decode::<AccountEvent>(event)? {
                AccountEvent::AccountRegistered(e) => {
                    let erased = e.email.is_none() || e.name.is_none();
                    sqlx::query(
                        "INSERT INTO accounts (id, email, name, role, station_id, active,
                        created_at, updated_at, personal_erased)
                     VALUES ($1, $2, $3, $4, $5, true, $6, $6, $7)",
                    )
                    .bind(e.account_id.as_uuid())
                    .bind(e.email.as_ref().map(|m| m.as_str()))
                    .bind(&e.name)
                    .bind(e.role.as_str())
                    .bind(e.station_id.map(|s| s.as_uuid()))
                    .bind(e.at)
                    .bind(erased)
                    .execute(&mut *conn)
                    .await?;
                    return Ok(());
                }
                AccountEvent::AccountRoleChanged(e) => {
                    sqlx::query(
                        "UPDATE accounts SET role = $2, station_id = $3, updated_at = $4
                     WHERE id = $1",
                    )
                    .bind(id)
                    .bind(e.role.as_str())
                    .bind(e.station_id.map(|s| s.as_uuid()))
                    .bind(e.at)
                    .execute(&mut *conn)
                    .await?
                }
                AccountEvent::AccountDeactivated(e) => {
                    sqlx::query("UPDATE accounts SET active = false, updated_at = $2 WHERE id = $1")
                        .bind(id)
                        .bind(e.at)
                        .execute(&mut *conn)
                        .await?
                }
                AccountEvent::AccountReactivated(e) => {
                    sqlx::query("UPDATE accounts SET active = true, updated_at = $2 WHERE id = $1")
                        .bind(id)
                        .bind(e.at)
                        .execute(&mut *conn)
                        .await?
                }
                // An erased name (None) stays erased: the row keeps NULL.
                AccountEvent::AccountRenamed(e) => sqlx::query(
                    "UPDATE accounts SET name = CASE WHEN personal_erased THEN NULL ELSE $2 END,
                    updated_at = $3
                 WHERE id = $1",
                )
                .bind(id)
                .bind(&e.name)
                .bind(e.at)
                .execute(&mut *conn)
                .await?,
                // The hash never reaches the read model.
                AccountEvent::AccountPasswordChanged(e) => {
                    sqlx::query("UPDATE accounts SET updated_at = $2 WHERE id = $1")
                        .bind(id)
                        .bind(e.at)
                        .execute(&mut *conn)
                        .await?
                }
            };
        expect_row(result, event, TABLE)
    }
}
