//! [`ProjectionError`]: why a projector could not apply an event, or could not run.

/// Why a projector could not apply an event, or could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The event's payload does not decode as the event type it claims: poison.
    #[error("cannot decode {event_type} at position {position}: {reason}")]
    Decode {
        position: u64,
        event_type: String,
        reason: String,
    },
    /// The event is about a row the read model does not have: poison (the log and
    /// the read model disagree, or an earlier event was lost).
    #[error("{event_type} at position {position}: no {table} row {id}")]
    MissingRow {
        position: u64,
        event_type: String,
        table: &'static str,
        id: uuid::Uuid,
    },
    /// A projection did not reach the head during [`crate::rebuild`].
    #[error("projection {projection} failed at position {position}: {error}")]
    Failed {
        projection: String,
        position: u64,
        error: String,
    },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event log: {0}")]
    Log(#[from] precinct_eventlog::ReadError),
}

impl ProjectionError {
    /// Whether retrying the same event later may succeed (a connection problem, a
    /// deadlock, a restart) rather than fail the same way every time (poison).
    pub fn is_transient(&self) -> bool {
        match self {
            ProjectionError::Db(e) => is_transient_db(e),
            ProjectionError::Log(precinct_eventlog::ReadError::Transport(_)) => true,
            _ => false,
        }
    }
}

/// Database errors that are about the database rather than the event: everything but
/// data exceptions (SQLSTATE class 22), integrity violations (23) and decode errors.
fn is_transient_db(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            !(code.starts_with("22") || code.starts_with("23"))
        }
        sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::Encode(_) => false,
        _ => true,
    }
}
