//! [`EventStore`]: the two operations a command needs from the log — read one stream,
//! append one command's events to several streams atomically — as a trait, so that the
//! application layer runs the same way on JetStream ([`EventLog`]) and in memory
//! ([`MemoryLog`](crate::MemoryLog), for tests without servers).

use std::future::Future;

use crate::envelope::{Appended, CommandMeta, RecordedEvent, StreamId};
use crate::error::{AppendError, ReadError};
use crate::log::{EventLog, StreamWrite};

/// An event store as commands see it.
///
/// The contract both implementations keep (the application layer's guarantees rest on
/// it):
/// - [`read`](EventStore::read): one stream's events in order, with their log positions
///   (empty if the stream does not exist); a read that fails is an error, never a
///   shorter stream.
/// - [`append_multi`](EventStore::append_multi): all events of one command, to one or
///   several streams, land at consecutive positions or none does; each stream is checked
///   against its expected version (its last position, 0: no stream). The first event
///   carries the command id, the command's size and its request digest. A command id
///   already appended appends nothing and answers the original positions with
///   `duplicate: true` and the original request digest — when its first event is on the
///   first stream written now; otherwise the batch is rejected.
pub trait EventStore: Clone + Send + Sync + 'static {
    /// All events of one stream, in order.
    fn read(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, ReadError>> + Send;

    /// At most `max` events of one stream after log position `position`, and whether
    /// more follow (a snapshot's tail, ADR 0022). The default reads the whole stream.
    fn read_range(
        &self,
        stream: &StreamId,
        position: u64,
        max: usize,
    ) -> impl Future<Output = Result<(Vec<RecordedEvent>, bool), ReadError>> + Send {
        async move {
            let mut after: Vec<RecordedEvent> = self
                .read(stream)
                .await?
                .into_iter()
                .filter(|e| e.position() > position)
                .collect();
            let more = after.len() > max;
            after.truncate(max);
            Ok((after, more))
        }
    }

    /// Appends one command's events atomically (see the trait's contract).
    fn append_multi(
        &self,
        writes: Vec<StreamWrite>,
        meta: &CommandMeta,
    ) -> impl Future<Output = Result<Appended, AppendError>> + Send;
}

impl EventStore for EventLog {
    fn read(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, ReadError>> + Send {
        EventLog::read(self, stream)
    }

    fn read_range(
        &self,
        stream: &StreamId,
        position: u64,
        max: usize,
    ) -> impl Future<Output = Result<(Vec<RecordedEvent>, bool), ReadError>> + Send {
        EventLog::read_range(self, stream, position, max)
    }

    fn append_multi(
        &self,
        writes: Vec<StreamWrite>,
        meta: &CommandMeta,
    ) -> impl Future<Output = Result<Appended, AppendError>> + Send {
        EventLog::append_multi(self, writes, meta)
    }
}
