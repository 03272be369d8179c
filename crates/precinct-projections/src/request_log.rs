//! `request_log`: every HTTP request, for compliance. Unlike the other read models it
//! is fed by a stream of its own, of [`precinct_eventlog::RequestRecord`]s (written by
//! [`precinct_eventlog::RequestLogWriter`], read with
//! [`EventLog::subscribe_requests`]); its checkpoint (row `request_log`) is that
//! stream's sequence number.

use std::sync::Arc;

use futures::FutureExt;
use precinct_eventlog::{EventLog, StoredRequest};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::checkpoint::to_i64;
use crate::error::ProjectionError;
use crate::worker::{batched, Consumer, Outcome, Subscribe, Worker, WorkerConfig};

/// The record at `seq` of the request stream (for a quarantine repair).
pub(crate) async fn read_at(
    log: &EventLog,
    seq: u64,
) -> Result<Option<StoredRequest>, ProjectionError> {
    Ok(log.request_at(seq).await?)
}

/// The request-log projector.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RequestLog;

/// The checkpoint row's name.
pub const NAME: &str = precinct_readmodel::names::REQUEST_LOG;

impl Consumer for RequestLog {
    type Item = StoredRequest;
    const NAME: &'static str = NAME;

    fn position(item: &StoredRequest) -> u64 {
        item.seq()
    }

    fn entry(item: &StoredRequest) -> crate::quarantine::Entry {
        crate::quarantine::request_entry(item)
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        item: &StoredRequest,
    ) -> Result<(), ProjectionError> {
        self.apply_many(conn, std::slice::from_ref(item)).await
    }

    /// The whole batch as one `INSERT … SELECT FROM UNNEST`.
    async fn apply_many(
        &self,
        conn: &mut PgConnection,
        items: &[StoredRequest],
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
            let r = item.record().map_err(|e| ProjectionError::Decode {
                position: item.seq(),
                event_type: "RequestRecord".into(),
                reason: match e {
                    precinct_eventlog::ReadError::Corrupt { reason, .. } => reason,
                    other => other.to_string(),
                },
            })?;
            seq.push(to_i64(item.seq()));
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

/// The log's request stream, from a sequence (inclusive).
fn subscriber(log: EventLog, batch_max: usize) -> Subscribe<StoredRequest> {
    Arc::new(move |from: u64| {
        let log = log.clone();
        async move { Ok(batched(log.subscribe_requests(from).await?, batch_max)) }.boxed()
    })
}

/// Runs the request-log projector until `shutdown` (a record that cannot be stored is
/// quarantined alone). Waits, with back-off, for the stream to exist.
pub async fn run_request_log(
    pool: PgPool,
    log: EventLog,
    batch_max: usize,
    shutdown: CancellationToken,
) -> Outcome {
    Worker {
        consumer: RequestLog,
        pool,
        subscribe: subscriber(log, batch_max),
        config: WorkerConfig {
            until: None,
            max_backoff: std::time::Duration::from_secs(5),
        },
        shutdown,
    }
    .run()
    .await
}
