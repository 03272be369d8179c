//! Group commit: concurrent, independent commands share one JetStream atomic batch, so
//! the server fsyncs once for all of them, while each command keeps its own expected
//! versions, its own de-duplication id and its own outcome.
//!
//! A background [`Committer`] takes whatever commands are queued (up to
//! [`GROUP_MAX_MESSAGES`] messages), never two that touch the same stream (a batch's
//! expectations are all checked against the state *before* the batch, so two commands
//! on one stream in one batch could both pass), and sends them as one batch. If the
//! batch is refused — one command's expectation is stale, or one is a retry — the
//! server does not say which, so every command of that batch is sent again on its own
//! and gets its precise outcome. Up to [`IN_FLIGHT`] batches are in flight at once.

use std::collections::HashSet;
use std::sync::Arc;

use async_nats::{Client, HeaderMap};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use crate::envelope::{Appended, Body, CommandMeta, Envelope, ExpectedVersion, StreamId};
use crate::error::AppendError;
use crate::log::{
    EventLog, LogConfig, StreamWrite, HDR_COMMAND_ID, HDR_COMMAND_SIZE, HDR_EVENT_TYPE,
};

/// Most messages in one group batch (the server allows 1,000).
pub const GROUP_MAX_MESSAGES: usize = 500;
/// Batches in flight at once (the server allows 50 per stream).
pub const IN_FLIGHT: usize = 4;

pub(crate) const ERR_WRONG_LAST_SEQUENCE: u32 = 10071;
pub(crate) const ERR_BATCH_DUPLICATE_MSG_ID: u32 = 10201;
/// "wrong last sequence" without the number: what a replicated stream answers when the
/// check fails against proposals still in flight.
pub(crate) const ERR_WRONG_LAST_SEQUENCE_CONSTANT: u32 = 10164;

/// One message of a command, ready to send (batch headers are added at send time).
pub(crate) struct Message {
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
}

/// A command's messages and what identifies it.
pub(crate) struct Command {
    pub(crate) command_id: Uuid,
    pub(crate) first_stream: StreamId,
    streams: Vec<StreamId>,
    messages: Vec<Message>,
}

impl Command {
    pub(crate) fn build(
        prefix: &str,
        writes: &[StreamWrite],
        meta: &CommandMeta,
    ) -> Result<Self, AppendError> {
        let total: usize = writes.iter().map(|w| w.events.len()).sum();
        let first_stream = writes
            .iter()
            .find(|w| !w.events.is_empty())
            .map(|w| w.stream.clone())
            .ok_or(AppendError::Empty)?;
        let mut messages = Vec::with_capacity(total);
        for write in writes {
            let subject = format!(
                "{prefix}.{}.{}",
                write.stream.aggregate_type, write.stream.id
            );
            for (i, event) in write.events.iter().enumerate() {
                let first = messages.is_empty();
                let mut headers = HeaderMap::new();
                headers.insert(HDR_COMMAND_ID, meta.command_id.to_string().as_str());
                headers.insert(HDR_EVENT_TYPE, event.event_type.as_str());
                if first {
                    headers.insert("Nats-Msg-Id", meta.command_id.to_string().as_str());
                    headers.insert(HDR_COMMAND_SIZE, total.to_string().as_str());
                }
                if i == 0 {
                    match write.expected {
                        ExpectedVersion::NoStream => {
                            headers.insert("Nats-Expected-Last-Subject-Sequence", "0")
                        }
                        ExpectedVersion::Exact(v) => headers.insert(
                            "Nats-Expected-Last-Subject-Sequence",
                            v.to_string().as_str(),
                        ),
                        ExpectedVersion::Any => {}
                    }
                }
                let body = Body {
                    envelope: Envelope {
                        event_id: Uuid::new_v4(),
                        event_type: event.event_type.clone(),
                        schema_version: event.schema_version,
                        aggregate_type: write.stream.aggregate_type.clone(),
                        aggregate_id: write.stream.id,
                        position: 0,
                        occurred_at: event.occurred_at,
                        actor: meta.actor.clone(),
                        command_id: meta.command_id,
                        correlation_id: meta.correlation_id,
                        causation_id: meta.causation_id,
                        command_size: first.then_some(total as u32),
                        request_hash: if first { meta.request_hash } else { None },
                    },
                    data: event.data.clone(),
                };
                messages.push(Message {
                    subject: subject.clone(),
                    headers,
                    payload: Bytes::from(serde_json::to_vec(&body)?),
                });
            }
        }
        Ok(Self {
            command_id: meta.command_id,
            first_stream,
            streams: writes
                .iter()
                .filter(|w| !w.events.is_empty())
                .map(|w| w.stream.clone())
                .collect(),
            messages,
        })
    }
}

/// Where a committed batch landed.
pub(crate) struct BatchAck {
    pub(crate) first: u64,
    pub(crate) last: u64,
}

pub(crate) enum BatchError {
    /// A stale expectation (10071) or a repeated command id (10201): nothing stored.
    Conflict {
        duplicate: bool,
        actual: Option<u64>,
    },
    Other(AppendError),
}

#[derive(Deserialize)]
struct ApiError {
    err_code: u32,
    description: String,
}

#[derive(Deserialize)]
struct PubAck {
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    count: Option<u64>,
}

/// Sends `commands` as one atomic batch.
pub(crate) async fn send_batch(
    client: &Client,
    cfg: &LogConfig,
    commands: Vec<&Command>,
) -> Result<BatchAck, BatchError> {
    let total: usize = commands.iter().map(|c| c.messages.len()).sum();
    let batch_id = Uuid::new_v4().simple().to_string();
    let mut seq = 0usize;
    let mut response = None;
    for command in &commands {
        for m in &command.messages {
            seq += 1;
            let mut headers = m.headers.clone();
            headers.insert("Nats-Batch-Id", batch_id.as_str());
            headers.insert("Nats-Batch-Sequence", seq.to_string().as_str());
            if seq == total {
                headers.insert("Nats-Batch-Commit", "1");
                let request = async_nats::Request::new()
                    .payload(m.payload.clone())
                    .headers(headers)
                    .timeout(Some(cfg.ack_timeout));
                response = Some(
                    client
                        .send_request(m.subject.clone(), request)
                        .await
                        .map_err(|e| BatchError::Other(AppendError::Unknown(e.to_string())))?,
                );
            } else {
                client
                    .publish_with_headers(m.subject.clone(), headers, m.payload.clone())
                    .await
                    .map_err(|e| BatchError::Other(AppendError::Unknown(e.to_string())))?;
            }
        }
    }
    let response = response.ok_or(BatchError::Other(AppendError::Empty))?;
    let ack: PubAck = serde_json::from_slice(&response.payload)
        .map_err(|e| BatchError::Other(AppendError::Unknown(format!("unreadable ack: {e}"))))?;
    match ack.error {
        None => {
            let count = ack.count.unwrap_or(total as u64);
            if count != total as u64 || ack.seq < count {
                return Err(BatchError::Other(AppendError::Unknown(format!(
                    "ack for {count} events at {}, sent {total}",
                    ack.seq
                ))));
            }
            Ok(BatchAck {
                first: ack.seq + 1 - count,
                last: ack.seq,
            })
        }
        Some(e)
            if e.err_code == ERR_WRONG_LAST_SEQUENCE
                || e.err_code == ERR_WRONG_LAST_SEQUENCE_CONSTANT =>
        {
            Err(BatchError::Conflict {
                duplicate: false,
                actual: e
                    .description
                    .rsplit(':')
                    .next()
                    .and_then(|s| s.trim().parse::<u64>().ok()),
            })
        }
        Some(e) if e.err_code == ERR_BATCH_DUPLICATE_MSG_ID => Err(BatchError::Conflict {
            duplicate: true,
            actual: None,
        }),
        Some(e) => Err(BatchError::Other(AppendError::Rejected {
            code: e.err_code,
            description: e.description,
        })),
    }
}

type Reply = oneshot::Sender<Result<Appended, AppendError>>;

/// The handle of the background group committer. Cheap to clone; the task ends when
/// every handle is dropped.
#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::Sender<(Command, Reply)>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Committer")
    }
}

impl Committer {
    /// `log` must not itself hold a committer (it is used for the per-command fallback).
    pub(crate) fn start(log: EventLog) -> Self {
        let (tx, rx) = mpsc::channel(8192);
        tokio::spawn(run(log, rx));
        Self { tx }
    }

    pub(crate) async fn submit(&self, command: Command) -> Result<Appended, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((command, reply))
            .await
            .map_err(|_| AppendError::Unknown("group committer stopped".into()))?;
        answer
            .await
            .map_err(|_| AppendError::Unknown("group committer dropped the command".into()))?
    }
}

/// The commands gathered for one batch: no two touch the same stream.
struct Group {
    commands: Vec<(Command, Reply)>,
    streams: HashSet<StreamId>,
    messages: usize,
}

impl Group {
    fn new(first: (Command, Reply)) -> Self {
        let mut g = Self {
            commands: Vec::new(),
            streams: HashSet::new(),
            messages: 0,
        };
        g.add(first);
        g
    }

    fn add(&mut self, c: (Command, Reply)) {
        self.streams.extend(c.0.streams.iter().cloned());
        self.messages += c.0.messages.len();
        self.commands.push(c);
    }

    /// Takes `c` if it fits and is independent of the group; else hands it back.
    fn offer(&mut self, c: (Command, Reply)) -> Option<(Command, Reply)> {
        let fits = self.messages + c.0.messages.len() <= GROUP_MAX_MESSAGES;
        let independent = c.0.streams.iter().all(|s| !self.streams.contains(s));
        if fits && independent {
            self.add(c);
            None
        } else {
            Some(c)
        }
    }
}

async fn run(log: EventLog, mut rx: mpsc::Receiver<(Command, Reply)>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut deferred: Vec<(Command, Reply)> = Vec::new();
    loop {
        // Start a batch with what was deferred (it conflicted with the last one), else
        // wait for the next command.
        let mut pending = std::mem::take(&mut deferred).into_iter();
        let first = match pending.next() {
            Some(c) => c,
            None => match rx.recv().await {
                Some(c) => c,
                None => return,
            },
        };
        let mut group = Group::new(first);
        for c in pending {
            deferred.extend(group.offer(c));
        }
        // Whatever else is already queued, without waiting.
        while group.messages < GROUP_MAX_MESSAGES && deferred.len() < GROUP_MAX_MESSAGES {
            match rx.try_recv() {
                Ok(c) => deferred.extend(group.offer(c)),
                Err(_) => break,
            }
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let log = log.clone();
        tokio::spawn(async move {
            commit_group(&log, group.commands).await;
            drop(permit);
        });
    }
}

async fn commit_group(log: &EventLog, group: Vec<(Command, Reply)>) {
    if group.len() == 1 {
        if let Some((command, reply)) = group.into_iter().next() {
            let _ = reply.send(log.append_one(command).await);
        }
        return;
    }
    let commands: Vec<&Command> = group.iter().map(|(c, _)| c).collect();
    match send_batch(log.client(), log.config(), commands).await {
        Ok(ack) => {
            let mut next = ack.first;
            for (command, reply) in group {
                let n = command.messages.len() as u64;
                let _ = reply.send(Ok(Appended {
                    first_position: next,
                    position: next + n - 1,
                    duplicate: false,
                    original_request: None,
                }));
                next += n;
            }
        }
        Err(BatchError::Conflict { .. }) => {
            // Someone in the group is stale or a retry: nothing was stored. Each command
            // goes again alone and gets its own precise outcome.
            let singles = group.into_iter().map(|(command, reply)| async move {
                let _ = reply.send(log.append_one(command).await);
            });
            futures::future::join_all(singles).await;
        }
        Err(BatchError::Other(e)) => {
            // Transport trouble: the outcome is unknown for every command of the batch.
            let text = e.to_string();
            for (_, reply) in group {
                let _ = reply.send(Err(AppendError::Unknown(text.clone())));
            }
        }
    }
}
