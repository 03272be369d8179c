//! [`AppError`]: why a command did not take effect — the domain's refusal, the
//! application layer's own ([`Denied`], [`Refusal`], [`Unavailable`], not found), or a
//! failure of the log, the key store or a port.

use std::sync::Arc;

use precinct_domain::{DomainError, ErrorKind};
use precinct_eventlog::{AppendError, ReadError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The domain refused the command. `error` is the domain's own typed error (see
    /// [`AppError::domain_error`]).
    #[error("{message}")]
    Domain {
        kind: ErrorKind,
        field: Option<&'static str>,
        message: String,
        error: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// No such resource, or the principal may not see it (a resource one may not see is
    /// never told apart from one that does not exist).
    #[error("no such resource, or you may not see it")]
    NotFound,
    /// The principal sees the resource but may not do this.
    #[error("{0}")]
    Forbidden(Denied),
    /// A rule of the application layer (one that needs more than one aggregate, or a
    /// read model) refused the command.
    #[error("{0}")]
    Refused(Refusal),
    /// A fact the command needs is not available yet (a read model behind the log, no
    /// key store): nothing was appended; retry later.
    #[error("{0}")]
    Unavailable(Unavailable),
    /// A port (a read model, the password hasher, ...) failed; its error is the
    /// implementer's own, passed through as it is.
    #[error("{0}")]
    Port(PortError),
    /// Optimistic concurrency kept failing: too many concurrent writers on one stream.
    #[error("the resource kept changing concurrently; try again")]
    Contention,
    /// The command id is in the log already, from a different request: an idempotency
    /// key reused for another body. Nothing was appended.
    #[error("the idempotency key was already used for a different request")]
    KeyReused,
    /// A stored event could not be decoded into a domain event (a poison event).
    #[error("stored event at position {position} is unreadable: {reason}")]
    Corrupt { position: u64, reason: String },
    /// The log refused or could not be reached; for `Unknown` outcomes, retry with the
    /// same command id.
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Personal data could not be sealed (the key store is unavailable).
    #[error("cannot seal personal data: {0}")]
    Vault(String),
}

/// Why a principal who sees a resource may not do something (HTTP 403).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("your role may not do this")]
    Role,
    #[error("only a member of the assigned patrol may do this")]
    NotAMember,
    #[error("only the reporter (while NEW) or an ADMIN may withdraw")]
    Withdraw,
    #[error("only staff may change status or priority")]
    StatusOrPriority,
    #[error("you may register patrols of your own station only")]
    PatrolOfAnotherStation,
    #[error("only a member of the patrol or the dispatch desk may set its status")]
    PatrolStatus,
    #[error("only an ADMIN may set role or station_id")]
    RoleOrStation,
    #[error("a SUPERVISOR may invite PATROL and DISPATCHER only")]
    InviteRole,
    #[error("a SUPERVISOR may invite to their own station only")]
    InviteStation,
    #[error("a SUPERVISOR may subscribe webhooks to their own station only")]
    WebhookStation,
    #[error("only an ADMIN may let a webhook receive personal data")]
    WebhookPersonalData,
    #[error("only an ADMIN may change where a webhook that receives personal data delivers")]
    WebhookPersonalTarget,
}

/// A refusal by a rule of the application layer: a conflict with the state (HTTP 409)
/// or a field that names something that is not there (422).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a reporter may amend a report only while it is NEW")]
    AmendAfterNew,
    #[error("a reporter may withdraw a report only while it is NEW")]
    WithdrawAfterNew,
    #[error("the patrol is OFF_DUTY")]
    PatrolOffDuty,
    #[error("no AVAILABLE patrol in the report's station")]
    NoAvailablePatrol,
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    #[error("the account is in more than {0} patrols; take it out of some first")]
    TooManyPatrols(u32),
    #[error("no such station")]
    NoSuchStation,
    #[error("no such patrol in the report's station")]
    NoSuchPatrol,
    #[error("{officer} is not an active PATROL officer of station {station}")]
    NotAnOfficer {
        officer: uuid::Uuid,
        station: precinct_domain::ids::StationId,
    },
    #[error("no station can take a report for this location")]
    NoStationForLocation,
    #[error("you may not deactivate your own account")]
    DeactivateSelf,
    #[error("this is the last active ADMIN account")]
    LastAdmin,
    #[error("an active ADMIN account is deactivated before it is erased")]
    EraseActiveAdmin,
    #[error("the invite's author may no longer invite to this role and station")]
    InviterNoLongerEntitled,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("the station does not take reports")]
    StationTakesNoReports,
    /// The other report of a link is unknown, or the caller may not see it (the two are
    /// never told apart).
    #[error("no such report, or you may not see it")]
    NoSuchReport,
}

impl Refusal {
    /// Conflict (409) or Invalid (422).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Refusal::AmendAfterNew
            | Refusal::WithdrawAfterNew
            | Refusal::PatrolOffDuty
            | Refusal::NoAvailablePatrol
            | Refusal::EmailTaken
            | Refusal::TooManyPatrols(_)
            | Refusal::DeactivateSelf
            | Refusal::LastAdmin
            | Refusal::EraseActiveAdmin
            | Refusal::InviterNoLongerEntitled
            | Refusal::StationTakesNoReports => ErrorKind::Conflict,
            Refusal::NoSuchStation
            | Refusal::NoSuchPatrol
            | Refusal::NotAnOfficer { .. }
            | Refusal::NoStationForLocation
            | Refusal::WrongPassword
            | Refusal::NoSuchReport => ErrorKind::Invalid,
        }
    }

    /// The input field an `Invalid` refusal is about.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Refusal::NoSuchStation => Some("station_id"),
            Refusal::NoSuchPatrol => Some("patrol_id"),
            Refusal::NotAnOfficer { .. } => Some("officer_ids"),
            Refusal::NoStationForLocation => Some("location"),
            Refusal::WrongPassword => Some("current_password"),
            Refusal::NoSuchReport => Some("other_id"),
            _ => None,
        }
    }
}

/// A fact a command needs that cannot be had now (HTTP 503).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("the station map is behind the last station change; retry shortly")]
    StationMap,
    #[error("workloads are behind the report; retry shortly")]
    Workloads,
    #[error("the patrol roster is catching up with the log; retry shortly")]
    Roster,
    #[error("no key store is configured")]
    NoKeyStore,
    #[error("key store: {0}")]
    KeyStore(String),
    #[error("the accounts read model is catching up with the log; retry shortly")]
    Accounts,
    #[error("the reports read model is behind the log; retry shortly")]
    Reports,
    #[error("the crime-type catalogue is behind the last catalogue change; retry shortly")]
    Catalogue,
}

/// A port's own error, kept whole for the layer that implemented the port (which knows
/// how to answer it: the API turns its own errors back into what they were).
#[derive(Clone, Debug)]
pub struct PortError(pub Arc<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<precinct_vault::VaultError> for AppError {
    /// The key store is a JetStream KV bucket: while it is unreachable (e.g. its stream
    /// leader is being elected after a node loss), or does not show a key yet, nothing
    /// has been appended and a retry may succeed, exactly like a log read that failed;
    /// anything else is internal.
    fn from(e: precinct_vault::VaultError) -> Self {
        match e {
            precinct_vault::VaultError::Store(reason) => AppError::Read(ReadError::Transport(
                format!("key store unavailable: {reason}"),
            )),
            e if e.is_transient() => AppError::Read(ReadError::Transport(e.to_string())),
            other => AppError::Vault(other.to_string()),
        }
    }
}

impl From<Denied> for AppError {
    fn from(d: Denied) -> Self {
        AppError::Forbidden(d)
    }
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        AppError::Refused(r)
    }
}

impl From<Unavailable> for AppError {
    fn from(u: Unavailable) -> Self {
        AppError::Unavailable(u)
    }
}

impl AppError {
    /// Wraps a domain refusal, keeping its kind, field and typed error.
    pub fn domain<E: DomainError>(e: E) -> Self {
        AppError::Domain {
            kind: e.kind(),
            field: e.field(),
            message: e.to_string(),
            error: Arc::new(e),
        }
    }

    /// The domain's typed error, if this is a domain refusal of type `E`.
    pub fn domain_error<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            AppError::Domain { error, .. } => error.downcast_ref::<E>(),
            _ => None,
        }
    }

    /// Wraps a port's own error (see [`PortError`]).
    pub fn port(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        AppError::Port(PortError(Arc::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use precinct_vault::VaultError;

    #[test]
    fn an_unreachable_key_store_is_a_retryable_read_failure_not_an_internal_error() {
        let e = AppError::from(VaultError::Store(
            "no stream found for given subject".into(),
        ));
        assert!(
            matches!(e, AppError::Read(ReadError::Transport(_))),
            "{e:?}"
        );
        let e = AppError::from(VaultError::NoKey(uuid::Uuid::nil()));
        assert!(
            matches!(e, AppError::Read(ReadError::Transport(_))),
            "{e:?}"
        );
        let e = AppError::from(VaultError::Crypto("bad tag".into()));
        assert!(matches!(e, AppError::Vault(_)), "{e:?}");
    }

    #[test]
    fn a_domain_refusal_keeps_its_typed_error() {
        use precinct_domain::email::EmailError;
        let e = AppError::domain(EmailError::EmailTaken);
        assert_eq!(
            e.domain_error::<EmailError>(),
            Some(&EmailError::EmailTaken)
        );
        assert!(matches!(
            e,
            AppError::Domain {
                kind: ErrorKind::Conflict,
                ..
            }
        ));
    }
}
