//! The ADMIN bootstrap: `precinct admin create` and `PRECINCT_ADMIN_EMAIL`/`_PASSWORD`.

use anyhow::Context;
use precinct_app::email::reserve_email;
use precinct_app::App;
use precinct_domain::account::{Account, AccountCommand};
use precinct_domain::email::EmailReservation;
use precinct_domain::ids::AccountId;
use precinct_domain::values::{Email, PasswordHash, Role};
use precinct_eventlog::{Actor, CommandMeta};
use uuid::Uuid;

const BOOTSTRAP_NS: Uuid = Uuid::from_u128(0x3f2b_9e61_c4d8_47a5_a1e3_7b6c_0d9f_52e8);

/// What [`ensure_admin`] found or did.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    Created { id: Uuid, position: u64 },
    AlreadyExists { id: Uuid, role: Role },
}

/// Makes sure an ADMIN account with this e-mail exists. Idempotent: running it twice (or
/// in two processes at once) creates one account.
pub async fn ensure_admin(app: &App, email: &str, password: &str) -> anyhow::Result<Bootstrap> {
    let email = Email::parse(email).context("invalid admin e-mail")?;
    if password.chars().count() < 10 {
        anyhow::bail!("the admin password must be at least 10 characters");
    }
    if let Some(id) = app.email_owner(&email).await? {
        let (account, _) = app.load::<Account>(id.as_uuid()).await?;
        return Ok(Bootstrap::AlreadyExists {
            id: id.as_uuid(),
            role: account.role,
        });
    }
    let hash = precinct_api::auth::hash_password(password.to_string())
        .await
        .map_err(|e| anyhow::anyhow!("hashing: {e:?}"))?;
    let hash = PasswordHash::parse(&hash).map_err(|e| anyhow::anyhow!("{e}"))?;
    let streams = app.email_streams(&email).await?;
    let email_id = streams.for_new_reservation();
    // Deterministic ids: a concurrent or repeated bootstrap is the same command. They
    // derive from the reservation's (keyed) id, not from the address.
    let command_id = Uuid::new_v5(&BOOTSTRAP_NS, email_id.as_bytes());
    let account_id = AccountId::new(Uuid::new_v5(&BOOTSTRAP_NS, command_id.as_bytes()));
    let meta = CommandMeta::new(command_id, Actor::System);
    let out = precinct_app::run!(
        app,
        &meta,
        EmailReservation,
        precinct_app::AppError,
        email_id,
        |uow| {
            let at = uow.now();
            reserve_email(uow, &streams, account_id).await?;
            uow.execute::<Account>(
                account_id.as_uuid(),
                AccountCommand::Register {
                    account_id,
                    email: email.clone(),
                    name: "Administrator".into(),
                    role: Role::Admin,
                    station_id: None,
                    password_hash: hash.clone(),
                    at,
                    invite_id: None,
                },
            )
            .await?;
            Ok(())
        }
    )?;
    Ok(Bootstrap::Created {
        id: account_id.as_uuid(),
        position: out.position,
    })
}
