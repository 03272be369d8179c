//! Where an e-mail address is reserved: the reservation's stream ids, and claiming one.
//!
//! A reservation's stream id is derived from the address and appears in the log for
//! good (as a subject and an audit target). Since e-mail addresses are personal data,
//! new reservations are keyed ([`keyed_email_stream_id`] of an HMAC under a data key in
//! the key store): the log alone does not tell whether an address has an account, even
//! after its owner was erased. Reservations made before keep their unkeyed id
//! ([`email_stream_id`]); every lookup and every new reservation checks both, so an old
//! account keeps its address and still signs in.
//!
//! An address held by an account whose data subject was erased is free: lookups skip
//! such a holder, and a new registration reclaims the address (`EmailReleased` then
//! `EmailReserved`, in the registration's own append).

use precinct_domain::email::{
    email_stream_id, keyed_email_stream_id, EmailCommand, EmailError, EmailReservation,
};
use precinct_domain::ids::AccountId;
use precinct_domain::subject::DataSubject;
use precinct_domain::values::Email;
use precinct_domain::Aggregate;
use precinct_eventlog::EventStore;
use uuid::Uuid;

use crate::{App, AppError, UnitOfWork};

/// The key-store subject whose data key keys reservation ids. Fixed forever: another
/// value orphans every keyed reservation. It is nobody's data subject, so the erasure
/// endpoint never destroys it.
pub const EMAIL_INDEX_KEY: Uuid = Uuid::from_u128(0x5e1d_7c3a_0b94_4f26_8a1e_d2c6_93f0_4b71);

/// The streams an address may be reserved on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailStreams {
    /// The keyed id (`None` in a process without a key store).
    pub keyed: Option<Uuid>,
    /// The id of reservations made before ids were keyed.
    pub legacy: Uuid,
}

impl EmailStreams {
    /// Where a new reservation goes (the command's primary stream).
    pub fn for_new_reservation(&self) -> Uuid {
        self.keyed.unwrap_or(self.legacy)
    }

    /// Every stream that may hold the address's reservation, newest scheme first.
    pub fn all(&self) -> impl Iterator<Item = Uuid> {
        self.keyed.into_iter().chain(std::iter::once(self.legacy))
    }
}

impl<S: EventStore> App<S> {
    /// The reservation streams of `email`.
    pub async fn email_streams(&self, email: &Email) -> Result<EmailStreams, AppError> {
        let keyed = match self.vault() {
            Some(vault) => Some(keyed_email_stream_id(
                &vault
                    .keyed_digest(EMAIL_INDEX_KEY, email.as_str().as_bytes())
                    .await?,
            )),
            None => None,
        };
        Ok(EmailStreams {
            keyed,
            legacy: email_stream_id(email),
        })
    }

    /// The account holding `email`, if any (an erased account holds nothing).
    pub async fn email_owner(&self, email: &Email) -> Result<Option<AccountId>, AppError> {
        let streams = self.email_streams(email).await?;
        for id in streams.all() {
            let (reservation, _) = self.load::<EmailReservation>(id).await?;
            if let Some(holder) = reservation.account_id {
                let (subject, _) = self.load::<DataSubject>(holder.as_uuid()).await?;
                if !subject.version_exists() {
                    return Ok(Some(holder));
                }
            }
        }
        Ok(None)
    }
}

/// Reserves the address for `account_id` in `uow`: refused (the domain's
/// [`EmailError::EmailTaken`]) when either of its streams is held by an account that
/// was not erased; one held by an erased account is reclaimed.
pub async fn reserve_email<S: EventStore>(
    uow: &mut UnitOfWork<'_, S>,
    streams: &EmailStreams,
    account_id: AccountId,
) -> Result<(), AppError> {
    let target = streams.for_new_reservation();
    for id in streams.all().filter(|id| *id != target) {
        // An older reservation is never written again: reading it is enough.
        let older: EmailReservation = uow.load(id).await?;
        if let Some(holder) = older.account_id {
            if !is_erased(uow, holder).await? {
                return Err(AppError::domain(EmailError::EmailTaken));
            }
        }
    }
    let at = uow.now();
    let current: EmailReservation = uow.load(target).await?;
    let cmd = match current.account_id {
        Some(holder) if is_erased(uow, holder).await? => EmailCommand::Reclaim {
            account_id,
            erased_holder: holder,
            at,
        },
        _ => EmailCommand::Reserve { account_id, at },
    };
    uow.execute::<EmailReservation>(target, cmd).await?;
    Ok(())
}

/// Whether `account`'s data subject was erased (erasure is for good).
async fn is_erased<S: EventStore>(
    uow: &mut UnitOfWork<'_, S>,
    account: AccountId,
) -> Result<bool, AppError> {
    let subject: DataSubject = uow.load(account.as_uuid()).await?;
    Ok(subject.version_exists())
}
