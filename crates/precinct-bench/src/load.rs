//! The HTTP client settings every phase uses (requests go through the shared typed
//! client, `precinct_tests::client`), and the closed-loop load runner (bounded in time
//! and in count).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use precinct_tests::client::Client;

use crate::stats::Latencies;

/// Longest wait for any one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The client settings shared by Precinct and the axum ceiling: HTTP/1.1 keep-alive,
/// one connection per concurrent worker, no Nagle.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("reqwest client")
}

/// The typed client of the server at `base`, with these settings.
pub fn api(base: &str) -> Client {
    Client::new(base, client())
}

/// What one load phase did.
#[derive(Debug, Default)]
pub struct LoadResult {
    pub ok: u64,
    /// Failures by kind (`HTTP 409`, `timeout`, …).
    pub errors: BTreeMap<String, u64>,
    pub latencies: Latencies,
    pub elapsed: Duration,
}

impl LoadResult {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Kind of a failed operation, for the error counts.
pub fn error_kind(e: &anyhow::Error) -> String {
    if let Some(r) = e.downcast_ref::<reqwest::Error>() {
        if r.is_timeout() {
            return "timeout".into();
        }
        if r.is_connect() {
            return "connect".into();
        }
        return "transport".into();
    }
    let s = e.to_string();
    match s.find("HTTP ") {
        Some(i) => s[i..].chars().take(8).collect(),
        None => s.chars().take(40).collect(),
    }
}

/// Runs `workers` closed loops of `op(worker, n)` until `duration` passes or `max_ops`
/// operations were started, whichever comes first. Successful operations' latencies are
/// recorded; failures are counted by kind.
pub async fn closed_loop<F, Fut>(
    workers: usize,
    duration: Duration,
    max_ops: u64,
    op: F,
) -> LoadResult
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let started = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let deadline = t0 + duration;
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let (op, started) = (op.clone(), started.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::with_capacity(4096);
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let mut ok = 0u64;
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let n = started.fetch_add(1, Ordering::Relaxed);
                if n >= max_ops {
                    break;
                }
                let t = Instant::now();
                match op(w, n).await {
                    Ok(()) => {
                        lat.record(t.elapsed());
                        ok += 1;
                    }
                    Err(e) => *errors.entry(error_kind(&e)).or_default() += 1,
                }
            }
            (ok, errors, lat)
        }));
    }
    let mut out = LoadResult::default();
    for t in tasks {
        if let Ok((ok, errors, lat)) = t.await {
            out.ok += ok;
            for (k, v) in errors {
                *out.errors.entry(k).or_default() += v;
            }
            out.latencies.merge(lat);
        }
    }
    out.elapsed = t0.elapsed();
    out
}
