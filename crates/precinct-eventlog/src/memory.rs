//! [`MemoryLog`]: an [`EventStore`] in memory, for tests of the application layer
//! without servers. It keeps the contract of the JetStream log: one global sequence of
//! positions, atomic multi-stream appends checked against each stream's expected
//! version, the command id and size on a command's first event, and de-duplication of
//! command ids resolved the way [`EventLog`](crate::EventLog) resolves it (the original
//! append, found on the first stream written, or a rejection).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::envelope::{Appended, CommandMeta, Envelope, ExpectedVersion, RecordedEvent, StreamId};
use crate::error::{AppendError, ReadError};
use crate::log::{find_command_in, StreamWrite, MAX_BATCH};
use crate::store::EventStore;

/// An event log in memory. Cheap to clone (clones share the log).
#[derive(Clone, Debug, Default)]
pub struct MemoryLog {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every event, in position order (position = index + 1).
    events: Vec<RecordedEvent>,
    /// Positions of each stream's events.
    streams: BTreeMap<(String, Uuid), Vec<usize>>,
    /// Command ids appended so far (JetStream's duplicate window, without an end).
    commands: HashSet<Uuid>,
    /// Appends still to be stored with their acknowledgement lost (see
    /// [`MemoryLog::lose_next_acks`]).
    lose_acks: usize,
    /// Reads still to fail (see [`MemoryLog::fail_next_reads`]).
    fail_reads: usize,
    /// Appends still to fail before storing anything (see
    /// [`MemoryLog::fail_next_appends`]).
    fail_appends: usize,
}

impl Inner {
    fn stream(&self, stream: &StreamId) -> Vec<RecordedEvent> {
        self.streams
            .get(&(stream.aggregate_type.clone(), stream.id))
            .map(|positions| {
                positions
                    .iter()
                    .map(|p| self.events[*p - 1].clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn version(&self, stream: &StreamId) -> u64 {
        self.streams
            .get(&(stream.aggregate_type.clone(), stream.id))
            .and_then(|p| p.last())
            .map_or(0, |p| *p as u64)
    }
}

impl MemoryLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event of the log, in order.
    pub fn all(&self) -> Vec<RecordedEvent> {
        self.lock().events.clone()
    }

    /// The events after `position`, in order.
    pub fn after(&self, position: u64) -> Vec<RecordedEvent> {
        let inner = self.lock();
        let from = usize::try_from(position)
            .unwrap_or(usize::MAX)
            .min(inner.events.len());
        inner.events[from..].to_vec()
    }

    /// The position of the last event (0: empty).
    pub fn head(&self) -> u64 {
        self.lock().events.len() as u64
    }

    /// The next `n` appends are stored, but their caller is told the outcome is unknown
    /// (`AppendError::Unknown`), as when an acknowledgement is lost on the way.
    pub fn lose_next_acks(&self, n: usize) {
        self.lock().lose_acks = n;
    }

    /// The next `n` stream reads fail (`ReadError::Transport`).
    pub fn fail_next_reads(&self, n: usize) {
        self.lock().fail_reads = n;
    }

    /// The next `n` appends store nothing and tell their caller the outcome is unknown
    /// (`AppendError::Unknown`), as when the server is unreachable before it stored
    /// the batch.
    pub fn fail_next_appends(&self, n: usize) {
        self.lock().fail_appends = n;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock leaves a log that is still whole:
        // every change below is made after its checks, in one go.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn append_now(
        &self,
        writes: Vec<StreamWrite>,
        meta: &CommandMeta,
    ) -> Result<Appended, AppendError> {
        let total: usize = writes.iter().map(|w| w.events.len()).sum();
        if total == 0 {
            return Err(AppendError::Empty);
        }
        if total > MAX_BATCH {
            return Err(AppendError::TooLarge(total));
        }
        let writes: Vec<StreamWrite> = writes
            .into_iter()
            .filter(|w| !w.events.is_empty())
            .collect();
        let first_stream = writes[0].stream.clone();
        let mut inner = self.lock();
        if inner.fail_appends > 0 {
            inner.fail_appends -= 1;
            return Err(AppendError::Unknown("server unreachable (test)".into()));
        }
        let duplicate = inner.commands.contains(&meta.command_id);
        let stale = writes.iter().find_map(|w| {
            let version = inner.version(&w.stream);
            let ok = match w.expected {
                ExpectedVersion::NoStream => version == 0,
                ExpectedVersion::Exact(v) => version == v,
                ExpectedVersion::Any => true,
            };
            (!ok).then_some(version)
        });
        if duplicate || stale.is_some() {
            // As the JetStream log resolves a refused batch: a retry of a command that
            // already landed gets the original append; anything else is refused.
            if let Some(found) = find_command_in(&inner.stream(&first_stream), meta.command_id) {
                return Ok(found);
            }
            return Err(if duplicate {
                AppendError::Rejected {
                    code: crate::commit::ERR_BATCH_DUPLICATE_MSG_ID,
                    description: "duplicate command id outside its stream".into(),
                }
            } else {
                AppendError::WrongExpectedVersion { actual: stale }
            });
        }
        let first_position = inner.events.len() as u64 + 1;
        let mut first = true;
        for write in writes {
            for event in write.events {
                let position = inner.events.len() as u64 + 1;
                let envelope = Envelope {
                    event_id: Uuid::new_v4(),
                    event_type: event.event_type,
                    schema_version: event.schema_version,
                    aggregate_type: write.stream.aggregate_type.clone(),
                    aggregate_id: write.stream.id,
                    position,
                    occurred_at: event.occurred_at,
                    actor: meta.actor.clone(),
                    command_id: meta.command_id,
                    correlation_id: meta.correlation_id,
                    causation_id: meta.causation_id,
                    command_size: first.then_some(total as u32),
                    request_hash: if first { meta.request_hash } else { None },
                };
                first = false;
                inner.events.push(RecordedEvent {
                    envelope,
                    data: event.data,
                });
                inner
                    .streams
                    .entry((write.stream.aggregate_type.clone(), write.stream.id))
                    .or_default()
                    .push(position as usize);
            }
        }
        inner.commands.insert(meta.command_id);
        let position = inner.events.len() as u64;
        if inner.lose_acks > 0 {
            inner.lose_acks -= 1;
            return Err(AppendError::Unknown("acknowledgement lost (test)".into()));
        }
        Ok(Appended {
            first_position,
            position,
            duplicate: false,
            original_request: None,
        })
    }
}

impl EventStore for MemoryLog {
    async fn read(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, ReadError> {
        let mut inner = self.lock();
        if inner.fail_reads > 0 {
            inner.fail_reads -= 1;
            return Err(ReadError::Transport("read failed (test)".into()));
        }
        Ok(inner.stream(stream))
    }

    async fn append_multi(
        &self,
        writes: Vec<StreamWrite>,
        meta: &CommandMeta,
    ) -> Result<Appended, AppendError> {
        self.append_now(writes, meta)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::envelope::{Actor, NewEvent, RequestHash};

    fn event(kind: &str) -> NewEvent {
        NewEvent {
            event_type: kind.into(),
            schema_version: 1,
            occurred_at: Utc::now(),
            data: serde_json::json!({}),
        }
    }

    fn write(stream: &StreamId, expected: ExpectedVersion, n: usize) -> StreamWrite {
        StreamWrite {
            stream: stream.clone(),
            expected,
            events: (0..n).map(|i| event(&format!("E{i}"))).collect(),
        }
    }

    fn meta() -> CommandMeta {
        CommandMeta::new(Uuid::new_v4(), Actor::System)
    }

    #[tokio::test]
    async fn a_multi_stream_append_lands_whole_at_consecutive_positions() {
        let log = MemoryLog::new();
        let (a, b) = (
            StreamId::new("report", Uuid::new_v4()),
            StreamId::new("patrol", Uuid::new_v4()),
        );
        let m = meta();
        let out = log
            .append_multi(
                vec![
                    write(&a, ExpectedVersion::NoStream, 2),
                    write(&b, ExpectedVersion::NoStream, 1),
                ],
                &m,
            )
            .await
            .expect("append");
        assert_eq!(
            (out.first_position, out.position, out.duplicate),
            (1, 3, false)
        );
        let on_a = log.read(&a).await.expect("read");
        assert_eq!(on_a.len(), 2);
        assert_eq!(on_a[0].envelope.command_size, Some(3));
        assert_eq!(on_a[1].envelope.command_size, None);
        assert_eq!(log.read(&b).await.expect("read")[0].position(), 3);
        assert!(log
            .read(&StreamId::new("report", Uuid::nil()))
            .await
            .expect("read")
            .is_empty());
    }

    #[tokio::test]
    async fn a_stale_stream_refuses_the_whole_batch() {
        let log = MemoryLog::new();
        let (a, b) = (
            StreamId::new("report", Uuid::new_v4()),
            StreamId::new("patrol", Uuid::new_v4()),
        );
        log.append_multi(vec![write(&b, ExpectedVersion::NoStream, 1)], &meta())
            .await
            .expect("append");
        let refused = log
            .append_multi(
                vec![
                    write(&a, ExpectedVersion::NoStream, 1),
                    write(&b, ExpectedVersion::NoStream, 1),
                ],
                &meta(),
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(AppendError::WrongExpectedVersion { actual: Some(1) })
            ),
            "{refused:?}"
        );
        assert_eq!(log.head(), 1, "nothing of the batch was stored");
        log.append_multi(vec![write(&b, ExpectedVersion::Exact(1), 1)], &meta())
            .await
            .expect("the right version is accepted");
    }

    #[tokio::test]
    async fn a_repeated_command_id_answers_the_original_append_with_its_digest() {
        let log = MemoryLog::new();
        let a = StreamId::new("report", Uuid::new_v4());
        let m = CommandMeta {
            request_hash: Some(RequestHash([7; 32])),
            ..meta()
        };
        let first = log
            .append_multi(vec![write(&a, ExpectedVersion::NoStream, 2)], &m)
            .await
            .expect("append");
        let again = log
            .append_multi(vec![write(&a, ExpectedVersion::NoStream, 2)], &m)
            .await
            .expect("a retry is answered");
        assert!(again.duplicate);
        assert_eq!(
            (again.first_position, again.position),
            (first.first_position, first.position)
        );
        assert_eq!(again.original_request, Some(RequestHash([7; 32])));
        assert_eq!(log.head(), 2);
        // The same id with its first event elsewhere: refused, as JetStream refuses it.
        let elsewhere = StreamId::new("patrol", Uuid::new_v4());
        let refused = log
            .append_multi(vec![write(&elsewhere, ExpectedVersion::NoStream, 1)], &m)
            .await;
        assert!(
            matches!(refused, Err(AppendError::Rejected { .. })),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn a_lost_acknowledgement_still_stores_the_append() {
        let log = MemoryLog::new();
        let a = StreamId::new("report", Uuid::new_v4());
        log.lose_next_acks(1);
        let m = meta();
        let lost = log
            .append_multi(vec![write(&a, ExpectedVersion::NoStream, 1)], &m)
            .await;
        assert!(matches!(lost, Err(AppendError::Unknown(_))), "{lost:?}");
        assert_eq!(log.head(), 1);
        let retry = log
            .append_multi(vec![write(&a, ExpectedVersion::NoStream, 1)], &m)
            .await
            .expect("the retry finds it");
        assert!(retry.duplicate);
    }
}
