//! The raw ceilings Precinct's figures are compared with, measured in the same run:
//!
//! - (a) JetStream publish-and-ack, pipelined (256 in flight), 1 KiB payloads, on a
//!   scratch stream of the stack's server (`sync_interval: always`); (a′) the same on a
//!   private server with the default sync (no fsync per acknowledgement).
//! - (b) a minimal axum handler doing one such publish per request, loaded with the same
//!   HTTP client settings as Precinct; (b′) the same against the private no-fsync server.
//! - (c) PostgreSQL batched upsert: `UNNEST`, 500 rows per transaction, a checkpoint row
//!   updated in the same transaction, into a scratch table.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use precinct_eventlog::raw::{self, RawPublisher};
use sqlx::PgPool;
use tokio::process::{Child, Command};

use crate::load::{self, closed_loop, LoadResult};
use crate::stats::Latencies;

pub const PAYLOAD: usize = 1024;
pub const IN_FLIGHT: usize = 256;
pub const PG_BATCH: usize = 500;

/// A raw publisher whose publishes wait (rather than fail) when too many acks are
/// pending.
pub async fn jetstream(url: &str) -> anyhow::Result<RawPublisher> {
    RawPublisher::connect(
        url,
        "precinct-bench",
        4 * IN_FLIGHT,
        Duration::from_secs(10),
    )
    .await
    .with_context(|| format!("connect to NATS at {url}"))
}

/// Creates (fresh) a file-backed, one-replica scratch stream on `subject`.
pub async fn scratch_stream(js: &RawPublisher, name: &str, subject: &str) -> anyhow::Result<()> {
    js.scratch_stream(name, subject)
        .await
        .with_context(|| format!("create scratch stream {name}"))
}

/// (a): pipelined publish-and-ack, `IN_FLIGHT` outstanding.
pub async fn raw_publish(
    js: &RawPublisher,
    subject: &str,
    duration: Duration,
    max_ops: u64,
) -> LoadResult {
    let payload = Bytes::from(vec![b'x'; PAYLOAD]);
    let mut lat = Latencies::with_capacity(1 << 20);
    let mut out = LoadResult::default();
    let mut pending = FuturesUnordered::new();
    let t0 = Instant::now();
    let deadline = t0 + duration;
    let mut sent = 0u64;
    loop {
        while pending.len() < IN_FLIGHT && Instant::now() < deadline && sent < max_ops {
            let start = Instant::now();
            match js.publish(subject.to_string(), payload.clone()).await {
                Ok(ack) => {
                    sent += 1;
                    pending.push(async move { (start, ack.await.map(|_| ())) });
                }
                Err(e) => {
                    *out.errors.entry(e).or_default() += 1;
                    sent += 1;
                }
            }
        }
        match pending.next().await {
            Some((start, Ok(()))) => {
                lat.record(start.elapsed());
                out.ok += 1;
            }
            Some((_, Err(e))) => {
                *out.errors.entry(e).or_default() += 1;
            }
            None => break,
        }
    }
    out.elapsed = t0.elapsed();
    out.latencies = lat;
    out
}

#[derive(Clone)]
struct Publisher {
    js: RawPublisher,
    subject: Arc<str>,
}

async fn publish_handler(
    State(p): State<Publisher>,
    body: Bytes,
) -> Result<(StatusCode, String), StatusCode> {
    let sequence =
        p.js.publish(p.subject.to_string(), body)
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok((StatusCode::CREATED, format!("{{\"position\":{sequence}}}")))
}

/// (b): an in-process axum server on 127.0.0.1:0 whose one handler publishes the
/// request body and answers with the acknowledged sequence; loaded by `connections`
/// closed loops with the bench's HTTP client.
pub async fn axum_publish(
    js: RawPublisher,
    subject: &str,
    connections: usize,
    duration: Duration,
    max_ops: u64,
) -> anyhow::Result<LoadResult> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let app = Router::new()
        .route("/publish", post(publish_handler))
        .with_state(Publisher {
            js,
            subject: subject.into(),
        });
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client = load::client();
    let url = format!("http://{addr}/publish");
    let body = Bytes::from(vec![b'x'; PAYLOAD]);
    let result = closed_loop(connections, duration, max_ops, move |_, _| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move {
            let res = client.post(url).body(body).send().await?;
            let status = res.status();
            let _ = res.bytes().await?;
            if status != StatusCode::CREATED {
                anyhow::bail!("HTTP {status}");
            }
            Ok(())
        }
    })
    .await;
    server.abort();
    Ok(result)
}

/// A private nats-server (JetStream, default sync interval: no fsync per ack) on a
/// random loopback port with a temporary store; killed on drop.
pub struct PrivateNats {
    child: Child,
    pub url: String,
    pub pid: Option<u32>,
    dir: PathBuf,
}

impl PrivateNats {
    pub async fn start(bin: &Path, dir: PathBuf) -> anyhow::Result<Self> {
        let port = crate::server::free_port()?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let child = Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let pid = child.id();
        let url = format!("nats://127.0.0.1:{port}");
        let me = Self {
            child,
            url,
            pid,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if raw::is_up(&me.url).await {
                return Ok(me);
            }
            if Instant::now() > deadline {
                anyhow::bail!("private nats-server did not come up on {}", me.url);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// (c): `rows` per transaction upserted with `UNNEST` into a scratch table, the
/// checkpoint row advanced in the same transaction; one connection, as a projector.
pub async fn pg_upsert(
    pool: &PgPool,
    duration: Duration,
    max_rows: u64,
) -> anyhow::Result<LoadResult> {
    sqlx::query("DROP TABLE IF EXISTS bench_raw, bench_raw_checkpoint")
        .execute(pool)
        .await?;
    sqlx::query(
        "CREATE TABLE bench_raw (
            id uuid PRIMARY KEY,
            status text NOT NULL,
            station_id uuid NOT NULL,
            title text NOT NULL,
            latitude double precision NOT NULL,
            longitude double precision NOT NULL,
            data jsonb NOT NULL,
            updated_at timestamptz NOT NULL,
            last_position bigint NOT NULL)",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "CREATE TABLE bench_raw_checkpoint (name text PRIMARY KEY, position bigint NOT NULL)",
    )
    .execute(pool)
    .await?;
    sqlx::query("INSERT INTO bench_raw_checkpoint VALUES ('raw', 0)")
        .execute(pool)
        .await?;
    let station = uuid::Uuid::new_v4();
    let data = serde_json::json!({
        "crime_types": ["Theft"], "city": "Davao", "media_urls": [],
        "routing": {"rule": "PRECINCT_AREA", "station_id": station},
        "description": "x".repeat(120),
    })
    .to_string();
    let mut out = LoadResult::default();
    let mut lat = Latencies::default();
    let t0 = Instant::now();
    let deadline = t0 + duration;
    let mut position = 0i64;
    while Instant::now() < deadline && (position as u64) < max_rows {
        let start = Instant::now();
        let n = PG_BATCH;
        let ids: Vec<uuid::Uuid> = (0..n).map(|_| uuid::Uuid::new_v4()).collect();
        let statuses = vec!["NEW".to_string(); n];
        let stations = vec![station; n];
        let titles: Vec<String> = (0..n)
            .map(|i| format!("Report {}", position + i as i64))
            .collect();
        let lats: Vec<f64> = (0..n).map(|i| 7.07 + (i as f64) * 1e-5).collect();
        let lons = vec![125.61f64; n];
        let datas = vec![data.clone(); n];
        let now = chrono::Utc::now();
        let ats = vec![now; n];
        let positions: Vec<i64> = (1..=n as i64).map(|i| position + i).collect();
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO bench_raw (id, status, station_id, title, latitude, longitude, data,
                                    updated_at, last_position)
             SELECT id, status, station_id, title, latitude, longitude, data::jsonb, updated_at,
                    last_position
             FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::float8[],
                         $6::float8[], $7::text[], $8::timestamptz[], $9::int8[])
                  AS t(id, status, station_id, title, latitude, longitude, data, updated_at,
                       last_position)
             ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, title = EXCLUDED.title,
                 data = EXCLUDED.data, updated_at = EXCLUDED.updated_at,
                 last_position = EXCLUDED.last_position",
        )
        .bind(&ids)
        .bind(&statuses)
        .bind(&stations)
        .bind(&titles)
        .bind(&lats)
        .bind(&lons)
        .bind(&datas)
        .bind(&ats)
        .bind(&positions)
        .execute(&mut *tx)
        .await?;
        position += n as i64;
        sqlx::query("UPDATE bench_raw_checkpoint SET position = $1 WHERE name = 'raw'")
            .bind(position)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        lat.record(start.elapsed());
        out.ok += n as u64;
    }
    out.elapsed = t0.elapsed();
    out.latencies = lat;
    sqlx::query("DROP TABLE IF EXISTS bench_raw, bench_raw_checkpoint")
        .execute(pool)
        .await?;
    Ok(out)
}
