//! The HTTP request log: one record per request, on its own JetStream stream — written
//! here ([`RequestLogWriter`]) and read here ([`EventLog::subscribe_requests`],
//! [`EventLog::request_at`]) for the request-log projector.
//!
//! Records are group-committed: a background task takes whatever records are waiting
//! (up to [`MAX_BATCH`](crate::log::MAX_BATCH) at once, 100 by default) and stores them
//! as one atomic batch, so the server fsyncs once per batch instead of once per request.
//! The HTTP response does not wait for its record: a crash can lose the records of the
//! last few milliseconds, never a command's events (those carry their actor in the
//! `EVENTS` stream).

use std::time::Duration;

use async_nats::jetstream::{consumer, stream::DirectGetErrorKind};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use precinct_retry::Backoff;

use crate::{EventLog, ReadError};

/// How often a batch of records is tried again before it is given up for lost.
const STORE_RETRIES: usize = 20;

/// One HTTP request, as kept for compliance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub at: DateTime<Utc>,
    pub request_id: String,
    pub actor_id: Option<Uuid>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub latency_ms: f64,
    pub client_addr: Option<String>,
}

/// One message of the request stream as stored, not decoded yet: a reader decides what
/// to do with one that is not a [`RequestRecord`] (the projector quarantines it).
#[derive(Debug, Clone)]
pub struct StoredRequest {
    seq: u64,
    payload: Bytes,
}

impl StoredRequest {
    /// Its sequence in the request stream (the request-log projector's position).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The record; [`ReadError::Corrupt`] when the message is not one.
    pub fn record(&self) -> Result<RequestRecord, ReadError> {
        serde_json::from_slice(&self.payload).map_err(|e| ReadError::Corrupt {
            position: self.seq,
            reason: e.to_string(),
        })
    }
}

fn transport(e: impl std::fmt::Display) -> ReadError {
    ReadError::Transport(e.to_string())
}

impl EventLog {
    /// Every message of the request stream from sequence `from` (inclusive; 0 or 1: the
    /// beginning), in order, live and never-ending: one ordered JetStream consumer.
    pub async fn subscribe_requests(
        &self,
        from: u64,
    ) -> Result<BoxStream<'static, Result<StoredRequest, ReadError>>, ReadError> {
        let cfg = self.config();
        let stream = self
            .jetstream()
            .get_stream(&cfg.requests_stream)
            .await
            .map_err(transport)?;
        let deliver_policy = if from <= 1 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from,
            }
        };
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: cfg.requests_subject.clone(),
                deliver_policy,
                max_expires: Duration::from_secs(4),
                ..Default::default()
            })
            .await
            .map_err(transport)?;
        let messages = consumer.messages().await.map_err(transport)?;
        Ok(messages
            .map(|item| {
                let msg = item.map_err(transport)?;
                let seq = msg.info().map_err(transport)?.stream_sequence;
                Ok(StoredRequest {
                    seq,
                    payload: msg.payload.clone(),
                })
            })
            .boxed())
    }

    /// The message at `seq` of the request stream (`None`: there is none).
    pub async fn request_at(&self, seq: u64) -> Result<Option<StoredRequest>, ReadError> {
        let stream = self
            .jetstream()
            .get_stream_no_info(&self.config().requests_stream)
            .await
            .map_err(transport)?;
        match stream.direct_get(seq).await {
            Ok(msg) => Ok(Some(StoredRequest {
                seq,
                payload: msg.payload,
            })),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(transport(e)),
        }
    }

    /// The request stream's last sequence (0 when empty).
    pub async fn requests_head(&self) -> Result<u64, ReadError> {
        let mut stream = self
            .jetstream()
            .get_stream(&self.config().requests_stream)
            .await
            .map_err(transport)?;
        Ok(stream.info().await.map_err(transport)?.state.last_sequence)
    }

    /// When the request at `seq` was handled (`None`: no such message, or not a
    /// record): how long the request-log projector is behind.
    pub async fn request_time(&self, seq: u64) -> Option<DateTime<Utc>> {
        let stream = self
            .jetstream()
            .get_stream_no_info(&self.config().requests_stream)
            .await
            .ok()?;
        let msg = stream.direct_get(seq).await.ok()?;
        crate::log::time_field(&msg.payload, "at")
    }
}

/// Sends records to the background writer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RequestLogWriter {
    tx: mpsc::Sender<RequestRecord>,
}

/// Completes when every record sent before the writer's senders were dropped is stored.
#[derive(Debug)]
pub struct RequestLogTask(tokio::task::JoinHandle<()>);

impl RequestLogTask {
    /// Waits for the writer to drain (call after dropping every [`RequestLogWriter`]).
    pub async fn finish(self) {
        let _ = self.0.await;
    }
}

const BATCH: usize = 100;

impl RequestLogWriter {
    /// Starts the background writer.
    pub fn start(log: EventLog) -> (Self, RequestLogTask) {
        let (tx, rx) = mpsc::channel(16 * 1024);
        let task = tokio::spawn(write_loop(log, rx));
        (Self { tx }, RequestLogTask(task))
    }

    /// Records queued and not yet handed to the writer's batch (the writer's backlog).
    pub fn backlog(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Queues a record; waits only if the queue is full (back-pressure, never drops).
    pub async fn record(&self, record: RequestRecord) {
        if self.tx.send(record).await.is_err() {
            tracing::error!("request log writer has stopped; record lost");
        }
    }
}

async fn write_loop(log: EventLog, mut rx: mpsc::Receiver<RequestRecord>) {
    let mut buf = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut buf, BATCH).await > 0 {
        // 20 retries, under 20 s of pauses in all: then the batch is given up for lost.
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1))
            .attempts(STORE_RETRIES);
        let mut attempt = 0u32;
        let stored = backoff
            .retry(
                || store(&log, &buf),
                |e| {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "request log batch not stored");
                },
            )
            .await;
        if let Err(e) = stored {
            tracing::error!(error = %e, lost = buf.len(), "request log batch lost");
        }
        buf.clear();
    }
}

async fn store(log: &EventLog, records: &[RequestRecord]) -> Result<(), String> {
    let cfg = log.config();
    let client = log.client();
    let batch_id = Uuid::new_v4().simple().to_string();
    // One message id per batch: a retried batch is stored once.
    let msg_id = batch_id.clone();
    let n = records.len();
    for (i, record) in records.iter().enumerate() {
        let seq = i + 1;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Batch-Id", batch_id.as_str());
        headers.insert("Nats-Batch-Sequence", seq.to_string().as_str());
        if seq == 1 {
            headers.insert("Nats-Msg-Id", msg_id.as_str());
        }
        let payload = Bytes::from(serde_json::to_vec(record).map_err(|e| e.to_string())?);
        if seq == n {
            headers.insert("Nats-Batch-Commit", "1");
            let req = async_nats::Request::new()
                .payload(payload)
                .headers(headers)
                .timeout(Some(cfg.ack_timeout));
            let resp = client
                .send_request(cfg.requests_subject.clone(), req)
                .await
                .map_err(|e| e.to_string())?;
            let v: serde_json::Value =
                serde_json::from_slice(&resp.payload).map_err(|e| e.to_string())?;
            if let Some(err) = v.get("error") {
                return Err(err.to_string());
            }
        } else {
            client
                .publish_with_headers(cfg.requests_subject.clone(), headers, payload)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
