//! Erasing a data subject (an account, or an anonymous report) by crypto-shredding:
//! its data key is destroyed first — for an invited account, the invite's key too (it
//! sealed the same person's address) — then `DataSubjectErased` is recorded; a retry
//! completes both. ADMIN only. An erased account leaves every patrol crew in the same
//! append as the erasure. An active ADMIN is not erased: it is deactivated first, so
//! that the rule keeping an active ADMIN (ADR 0039) decides.

use chrono::{DateTime, Utc};
use precinct_domain::account::Account;
use precinct_domain::admin_guard::{AdminExit, AdminGuard, AdminGuardCommand, ADMIN_GUARD_ID};
use precinct_domain::ids::AccountId;
use precinct_domain::report::{Report, Reporter};
use precinct_domain::subject::{DataSubject, SubjectCommand};
use precinct_domain::values::Role;
use precinct_domain::Aggregate;
use precinct_eventlog::{CommandMeta, EventStore};
use uuid::Uuid;

use super::account::{crews_of, leave_crews};
use crate::error::{Refusal, Unavailable};
use crate::policy::Principal;
use crate::ports::{KeyStore, Rosters};
use crate::{App, AppError};

/// An erasure recorded.
#[derive(Debug)]
pub struct Erased {
    pub erased_at: Option<DateTime<Utc>>,
    pub position: u64,
}

/// An account that holds the ADMIN role and may use it.
fn is_active_admin(account: &Account) -> bool {
    account.version_exists() && account.active && account.role == Role::Admin
}

/// Erases `subject` with the keys of `keys` (None: no key store is configured). An
/// active ADMIN account is refused ([`Refusal::EraseActiveAdmin`]): it is deactivated
/// first, which keeps another ADMIN in office.
pub async fn erase<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    subject: Uuid,
    keys: Option<&impl KeyStore>,
    rosters: &impl Rosters,
) -> Result<Erased, AppError> {
    by.require(&[Role::Admin])?;
    let (account, _) = app.load::<Account>(subject).await?;
    let is_subject = account.version_exists() || {
        let (report, _) = app.load::<Report>(subject).await?;
        matches!(report.reporter, Some(Reporter::Anonymous { .. }))
    };
    if !is_subject {
        return Err(AppError::NotFound);
    }
    let (erased, _) = app.load::<DataSubject>(subject).await?;
    if is_active_admin(&account) && !erased.version_exists() {
        // Before any key is destroyed: an ADMIN leaves office through a deactivation,
        // which keeps another active ADMIN (ADR 0039), and is erased after it.
        return Err(Refusal::EraseActiveAdmin.into());
    }
    let keys = keys.ok_or(Unavailable::NoKeyStore)?;
    let officer = AccountId::new(subject);
    let listed = if account.version_exists() {
        crews_of(rosters, officer).await?
    } else {
        Vec::new()
    };
    for key in account
        .invite_id
        .map(|i| i.as_uuid())
        .into_iter()
        .chain([subject])
    {
        keys.erase(key).await?;
    }
    let erased_by = by.id;
    let is_account = account.version_exists();
    let out = app
        .run::<DataSubject>(meta, subject, async move |uow| {
            let at = uow.now();
            let before: DataSubject = uow.load(subject).await?;
            if !before.version_exists() && is_account {
                // An ADMIN account leaves the ADMINs for good: through the guard, read
                // before the account, so that a departure deciding on this account
                // as the ADMIN that remains conflicts with this erasure (ADR 0039).
                uow.load::<AdminGuard>(ADMIN_GUARD_ID).await?;
                let now: Account = uow.load(subject).await?;
                if is_active_admin(&now) {
                    // Reactivated since the check above (the keys are gone: ADR 0039).
                    return Err(Refusal::EraseActiveAdmin.into());
                }
                if now.role == Role::Admin {
                    uow.execute::<AdminGuard>(
                        ADMIN_GUARD_ID,
                        AdminGuardCommand::Leave {
                            account_id: officer,
                            exit: AdminExit::Erased,
                            at,
                        },
                    )
                    .await?;
                }
            }
            uow.execute::<DataSubject>(
                subject,
                SubjectCommand::Erase {
                    subject_id: subject,
                    erased_by,
                    at,
                },
            )
            .await?;
            leave_crews(uow, officer, &listed, |_| false).await
        })
        .await?;
    Ok(Erased {
        erased_at: out.state::<DataSubject>(subject).and_then(|s| s.erased_at),
        position: out.position,
    })
}
