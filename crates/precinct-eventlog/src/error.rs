//! One error type per operation family.

/// Connecting or setting up the stream failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    #[error("cannot create or update the stream: {0}")]
    Stream(String),
}

/// Why an append did not happen (or may not have happened).
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// A stream was not at the expected version; nothing was appended.
    #[error("wrong expected version (stream is at {actual:?})")]
    WrongExpectedVersion { actual: Option<u64> },
    /// The server refused the batch; nothing was appended.
    #[error("append rejected by JetStream ({code}): {description}")]
    Rejected { code: u32, description: String },
    /// No events to append.
    #[error("nothing to append")]
    Empty,
    /// More events than one atomic batch may hold.
    #[error("{0} events exceed one atomic batch")]
    TooLarge(usize),
    #[error("cannot encode event: {0}")]
    Encode(#[from] serde_json::Error),
    /// The outcome is unknown (timeout, connection lost): retry with the same command id.
    #[error("append outcome unknown: {0}")]
    Unknown(String),
    #[error(transparent)]
    Read(#[from] ReadError),
}

impl AppendError {
    /// True when retrying the same command (same command id) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AppendError::Unknown(_) | AppendError::Read(_))
    }
}

/// Reading from the log failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("log unavailable: {0}")]
    Transport(String),
    /// A stored event cannot be decoded: a poison event.
    #[error("event at position {position} cannot be decoded: {reason}")]
    Corrupt { position: u64, reason: String },
}
