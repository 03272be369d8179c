//! [`AppError`]: why a command did not take effect.

use precinct_domain::{DomainError, ErrorKind};
use precinct_eventlog::{AppendError, ReadError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The domain refused the command.
    #[error("{message}")]
    Domain {
        kind: ErrorKind,
        field: Option<&'static str>,
        message: String,
    },
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

impl AppError {
    /// Wraps a domain refusal, keeping its kind and field.
    pub fn domain<E: DomainError>(e: E) -> Self {
        AppError::Domain {
            kind: e.kind(),
            field: e.field(),
            message: e.to_string(),
        }
    }

    /// A refusal decided by the application layer itself.
    pub fn refused(
        kind: ErrorKind,
        field: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        AppError::Domain {
            kind,
            field,
            message: message.into(),
        }
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
}
