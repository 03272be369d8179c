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
