//! The envelope every event carries, and the shapes going into and out of the log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Names one event stream: all events of one aggregate instance.
///
/// It maps to the JetStream subject `<prefix>.<aggregate_type>.<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamId {
    pub aggregate_type: String,
    pub id: Uuid,
}

impl StreamId {
    pub fn new(aggregate_type: impl Into<String>, id: Uuid) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            id,
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.aggregate_type, self.id)
    }
}

/// The version a command expects its stream to be at.
///
/// A stream's version is the log position of its last event (0: no stream yet),
/// which is what JetStream checks with `Nats-Expected-Last-Subject-Sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must be at exactly this position.
    Exact(u64),
    /// No check.
    Any,
}

impl ExpectedVersion {
    /// The expected version for a stream whose last known position is `version` (0 = none).
    pub fn from_version(version: u64) -> Self {
        if version == 0 {
            Self::NoStream
        } else {
            Self::Exact(version)
        }
    }
}

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Actor {
    /// A signed-in account, with the role it acted in.
    User { id: Uuid, role: String },
    /// Someone without an account (e.g. an anonymous reporter).
    Anonymous,
    /// Precinct itself (SLA worker, bootstrap).
    System,
}

impl Actor {
    pub fn id(&self) -> Option<Uuid> {
        match self {
            Actor::User { id, .. } => Some(*id),
            _ => None,
        }
    }
    pub fn role(&self) -> Option<&str> {
        match self {
            Actor::User { role, .. } => Some(role),
            _ => None,
        }
    }
}

/// A digest (SHA-256) of the request a command came from. Stored with the command so
/// that a later request under the same command id (the same idempotency key) can be told
/// apart: the same digest is a retry, another one is a different request reusing the key.
/// Serialised as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestHash(pub [u8; 32]);

impl std::fmt::Debug for RequestHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestHash({})", hex::encode(self.0))
    }
}

impl Serialize for RequestHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for RequestHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&text, &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(RequestHash(bytes))
    }
}

/// Metadata of the command that appends events; copied into every envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMeta {
    /// Identifies the command: a retry with the same id has one effect.
    pub command_id: Uuid,
    /// Ties together everything caused by one outside request.
    pub correlation_id: Uuid,
    /// The event or command that caused this one, if any.
    pub causation_id: Option<Uuid>,
    pub actor: Actor,
    /// The request the command id was derived from (an `Idempotency-Key` request); None
    /// when the id is not shared with any other request.
    pub request_hash: Option<RequestHash>,
}

impl CommandMeta {
    pub fn new(command_id: Uuid, actor: Actor) -> Self {
        Self {
            command_id,
            correlation_id: command_id,
            causation_id: None,
            actor,
            request_hash: None,
        }
    }
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

/// The envelope stored with every event (the message body is `{..envelope, "data": ..}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    /// Global log position (the JetStream stream sequence); not stored in the body,
    /// filled in on read.
    #[serde(default, skip_serializing)]
    pub position: u64,
    pub occurred_at: DateTime<Utc>,
    pub actor: Actor,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// On the first event of a command only: how many events the command appended
    /// (they sit at consecutive positions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_size: Option<u32>,
    /// On the first event of a command only, and only for commands with one: the digest
    /// of the request ([`CommandMeta::request_hash`]). Absent in events older than it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<RequestHash>,
}

/// An event read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub envelope: Envelope,
    pub data: serde_json::Value,
}

impl RecordedEvent {
    pub fn position(&self) -> u64 {
        self.envelope.position
    }
    pub fn stream_id(&self) -> StreamId {
        StreamId::new(
            self.envelope.aggregate_type.clone(),
            self.envelope.aggregate_id,
        )
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Body {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub data: serde_json::Value,
}

/// The outcome of a successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Position of the first event the command appended.
    pub first_position: u64,
    /// Position of the last event the command appended.
    pub position: u64,
    /// True when this command id had already been appended: nothing new was written
    /// and the positions are those of the original append.
    pub duplicate: bool,
    /// For a duplicate: the request digest the original append was stored with (None:
    /// it had none). Compare it with the retry's own to tell a retry from a different
    /// request under the same command id.
    pub original_request: Option<RequestHash>,
}
