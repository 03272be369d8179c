//! Precinct's event log: an event store with the vocabulary of one (streams, expected
//! versions, positions), built on a NATS JetStream stream.
//!
//! This crate owns everything JetStream-specific: stream layout, atomic batch publishing,
//! de-duplication headers, direct gets and ordered consumers. It knows nothing about
//! reports, patrols or PostgreSQL; events are opaque JSON payloads in an [`Envelope`].
//!
//! - One stream (`EVENTS` by default) holds every event; one subject per aggregate
//!   instance: `events.<aggregate_type>.<uuid>`. A *stream* in this crate's vocabulary
//!   ([`StreamId`]) is one such subject; its *version* is the log position of its last
//!   event (0: it does not exist yet).
//! - [`EventLog::append_multi`] commits all events of one command, to one or several
//!   streams, as one JetStream atomic batch with a per-stream expected version
//!   (`Nats-Expected-Last-Subject-Sequence`) and the command id as `Nats-Msg-Id`.
//! - [`EventLog::read`] returns one stream's events (direct get batches);
//!   [`EventLog::read_all`] and [`EventLog::subscribe`] walk the whole log in position
//!   order for projectors.
//!
//! # Layout
//! - [`envelope`]: stream ids, expected versions, the event envelope, actors.
//! - [`log`]: the [`EventLog`] itself.
//! - `commit`: group commit of concurrent commands into shared atomic batches.
//! - [`requests`]: the HTTP request log, group-committed to its own stream, and read
//!   back ([`EventLog::subscribe_requests`], [`EventLog::request_at`]) for its projector.
//! - [`positions`]: live patrol positions ([`PositionLog`]), the high-rate path, on a
//!   stream of their own with plain publish-and-ack and retention by age. Its message
//!   type, [`PatrolMoved`], is the one payload this crate defines for a domain concept:
//!   the crate owns that wire format as it owns the stream.
//! - [`raw`]: plain publish-and-ack on a scratch stream, the ceiling the benchmark
//!   measures `append` against (not used by Precinct itself).
//! - [`error`]: [`AppendError`], [`ReadError`], [`LogError`].
//! - `store`: [`EventStore`], what a command needs of the log (read a stream, append a
//!   command atomically), implemented by [`EventLog`] and by `memory`'s [`MemoryLog`]
//!   (tests of the application layer without servers).
//!
//! No other crate sees a JetStream type from here, except `precinct-vault`, which
//! keeps its data keys in a key-value bucket on the log's connection
//! ([`EventLog::key_value`]).

mod commit;
pub mod envelope;
pub mod error;
pub mod log;
mod memory;
pub mod positions;
pub mod raw;
pub mod requests;
mod store;
mod stream_cache;

pub use envelope::{
    Actor, Appended, CommandMeta, Envelope, ExpectedVersion, NewEvent, RecordedEvent, RequestHash,
    StreamId,
};
pub use error::{AppendError, LogError, ReadError};
pub use log::{find_command_in, EventLog, LogConfig, Opener, StreamWrite};
pub use memory::MemoryLog;
pub use positions::{PatrolMoved, PositionLog, RecordedMove};
pub use requests::{RequestLogTask, RequestLogWriter, RequestRecord, StoredRequest};
pub use store::EventStore;
