//! [`QueryError`]: why a read of the read models could not answer.

/// Why a query could not answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The `cursor` was not one this API handed out (HTTP 400).
    #[error("invalid cursor")]
    BadCursor,
    /// A filter value is out of range (HTTP 422); names the filter.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// A stored value does not parse as its domain type (a bug, not the caller's).
    #[error("unreadable {what} in the read model: {reason}")]
    Unreadable { what: &'static str, reason: String },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl QueryError {
    /// The database could not be reached or gave no connection in time (an outage that
    /// a retry may outlast), as opposed to a bug or a bad request.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            QueryError::Db(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unreachable_database_is_unavailable() {
        assert!(QueryError::Db(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(QueryError::Db(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        )))
        .is_unavailable());
        assert!(!QueryError::Db(sqlx::Error::Protocol("bad message".into())).is_unavailable());
        assert!(!QueryError::BadCursor.is_unavailable());
    }
}
