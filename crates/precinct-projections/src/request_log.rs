//! `request_log`: every HTTP request, for compliance. Unlike the other read models it
//! is fed by its own JetStream stream of [`RequestRecord`]s (JSON, one per message,
//! written by [`precinct_eventlog::RequestLogWriter`]);
//! its checkpoint (row `request_log`) is that stream's sequence number.

use std::sync::Arc;

use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use precinct_eventlog::{LogConfig, ReadError, RequestRecord};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::checkpoint::to_i64;
use crate::error::ProjectionError;
use crate::worker::{Consumer, ItemStream, Outcome, Subscribe, Worker, WorkerConfig};

/// Where request records are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLogSource {
    /// The JetStream stream name (e.g. `EVENTS_REQUESTS`).
    pub stream: String,
    /// The subject (filter) the records are published on (e.g. `events.requests`).
    pub subject: String,
}

impl RequestLogSource {
    /// The request stream that the log's [`precinct_eventlog::RequestLogWriter`] writes.
    pub fn of_log(cfg: &LogConfig) -> Self {
        Self {
            stream: cfg.requests_stream.clone(),
            subject: cfg.requests_subject.clone(),
        }
    }
}

/// One message of the request stream, not yet decoded.
#[derive(Debug, Clone)]
pub(crate) struct RawRequest {
    seq: u64,
    payload: Bytes,
}

impl RawRequest {
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }
}

/// The record at `seq` of the request stream (for a quarantine repair).
pub(crate) async fn read_at(
    js: &jetstream::Context,
    stream: &str,
    seq: u64,
) -> Result<Option<RawRequest>, ProjectionError> {
    let transport =
        |e: &dyn std::fmt::Display| ProjectionError::Log(ReadError::Transport(e.to_string()));
    let stream = js
        .get_stream_no_info(stream)
        .await
        .map_err(|e| transport(&e))?;
    match stream.direct_get(seq).await {
        Ok(msg) => Ok(Some(RawRequest {
            seq,
            payload: msg.payload,
        })),
        Err(e) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(transport(&e)),
    }
}

/// The request-log projector.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RequestLog;

/// The checkpoint row's name.
pub const NAME: &str = "request_log";

impl Consumer for RequestLog {
    type Item = RawRequest;
    const NAME: &'static str = NAME;

    fn position(item: &RawRequest) -> u64 {
        item.seq
    }

    fn entry(item: &RawRequest) -> crate::quarantine::Entry {
        crate::quarantine::request_entry(item)
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        item: &RawRequest,
    ) -> Result<(), ProjectionError> {
        self.apply_many(conn, std::slice::from_ref(item)).await
    }

    /// The whole batch as one `INSERT … SELECT FROM UNNEST`.
    async fn apply_many(
        &self,
        conn: &mut PgConnection,
        items: &[RawRequest],
    ) -> Result<(), ProjectionError> {
        let n = items.len();
        let mut seq = Vec::with_capacity(n);
        let mut at = Vec::with_capacity(n);
        let mut request_id = Vec::with_capacity(n);
        let mut actor_id = Vec::with_capacity(n);
        let mut method = Vec::with_capacity(n);
        let mut path = Vec::with_capacity(n);
        let mut status = Vec::with_capacity(n);
        let mut latency_ms = Vec::with_capacity(n);
        let mut client_addr = Vec::with_capacity(n);
        for item in items {
            let r: RequestRecord =
                serde_json::from_slice(&item.payload).map_err(|e| ProjectionError::Decode {
                    position: item.seq,
                    event_type: "RequestRecord".into(),
                    reason: e.to_string(),
                })?;
            seq.push(to_i64(item.seq));
            at.push(r.at);
            request_id.push(r.request_id);
            actor_id.push(r.actor_id);
            method.push(r.method);
            path.push(r.path);
            status.push(i32::from(r.status));
            latency_ms.push(r.latency_ms);
            client_addr.push(r.client_addr);
        }
        sqlx::query(
            "INSERT INTO request_log (seq, at, request_id, actor_id, method, path, status,
                latency_ms, client_addr)
             SELECT * FROM UNNEST($1::bigint[], $2::timestamptz[], $3::text[], $4::uuid[],
                $5::text[], $6::text[], $7::int[], $8::float8[], $9::text[])",
        )
        .bind(seq)
        .bind(at)
        .bind(request_id)
        .bind(actor_id)
        .bind(method)
        .bind(path)
        .bind(status)
        .bind(latency_ms)
        .bind(client_addr)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// An ordered consumer on `source`, from a stream sequence (inclusive).
fn subscriber(js: jetstream::Context, source: RequestLogSource) -> Subscribe<RawRequest> {
    let transport = |e: &dyn std::fmt::Display| ReadError::Transport(e.to_string());
    Arc::new(move |from: u64| {
        let js = js.clone();
        let source = source.clone();
        async move {
            let stream = js
                .get_stream(&source.stream)
                .await
                .map_err(|e| transport(&e))?;
            let deliver_policy = if from <= 1 {
                consumer::DeliverPolicy::All
            } else {
                consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                }
            };
            let consumer = stream
                .create_consumer(consumer::pull::OrderedConfig {
                    filter_subject: source.subject.clone(),
                    deliver_policy,
                    max_expires: std::time::Duration::from_secs(4),
                    ..Default::default()
                })
                .await
                .map_err(|e| transport(&e))?;
            let messages = consumer.messages().await.map_err(|e| transport(&e))?;
            let items: ItemStream<RawRequest> = messages
                .map(move |item| {
                    let msg = item.map_err(|e| transport(&e))?;
                    let seq = msg.info().map_err(|e| transport(&e))?.stream_sequence;
                    Ok(RawRequest {
                        seq,
                        payload: msg.payload.clone(),
                    })
                })
                .boxed();
            Ok(items)
        }
        .boxed()
    })
}

/// Runs the request-log projector until `shutdown` (a record that cannot be stored is
/// quarantined alone). Waits, with back-off, for the stream to exist.
pub async fn run_request_log(
    pool: PgPool,
    js: jetstream::Context,
    source: RequestLogSource,
    batch_max: usize,
    shutdown: CancellationToken,
) -> Outcome {
    Worker {
        consumer: RequestLog,
        pool,
        subscribe: subscriber(js, source),
        config: WorkerConfig {
            batch_max,
            until: None,
            max_backoff: std::time::Duration::from_secs(5),
        },
        shutdown,
    }
    .run()
    .await
}
