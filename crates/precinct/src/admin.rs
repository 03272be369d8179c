//! The ADMIN bootstrap: `precinct admin create` and `PRECINCT_ADMIN_EMAIL`/`_PASSWORD`,
//! through the command [`precinct_app::commands::account::ensure_admin`].

use anyhow::Context;
use precinct_api::auth::{PasswordJobs, PasswordJobsConfig};
use precinct_app::commands::account;
use precinct_app::App;
use precinct_domain::values::{Email, Role};
use uuid::Uuid;

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
    let passwords = PasswordJobs::new(PasswordJobsConfig::default());
    let outcome = account::ensure_admin(app, email, password.to_string(), &passwords).await?;
    Ok(match outcome {
        account::Bootstrap::Created { id, position } => Bootstrap::Created {
            id: id.as_uuid(),
            position,
        },
        account::Bootstrap::AlreadyExists { id, role } => Bootstrap::AlreadyExists {
            id: id.as_uuid(),
            role,
        },
    })
}
