//! Workload 1 (report intake: `POST /crimes` by signed-in citizens) with workload 3's
//! live projection lag measured under it.
//!
//! Lag: the bench `LISTEN`s on the projectors' checkpoint channel (every committed batch
//! notifies `reports:<position>`) and, for every n-th report, takes the first
//! notification at or past the report's position as the moment it became visible. The
//! lag is that moment minus the time JetStream stored the event (its message
//! timestamp): append → visible, on one machine clock. Ack → visible (from the moment
//! the client got its 201) is recorded too.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use precinct_eventlog::EventLog;
use precinct_tests::client::{Call, Client};
use sqlx::postgres::PgListener;

use crate::load::{closed_loop, LoadResult};
use crate::stats::{Latencies, Percentiles};
use crate::world::{report, World, LAT, LON};

#[derive(Debug, Clone, Copy)]
struct Sample {
    position: u64,
    acked_at: DateTime<Utc>,
}

pub struct IntakeOut {
    pub load: LoadResult,
    /// Every report created (for the lifecycle workload), with its position.
    pub reports: Vec<(String, u64)>,
    pub lag: Percentiles,
    pub ack_to_visible: Percentiles,
    pub lag_samples: usize,
    pub lag_unseen: usize,
}

/// Notifications received: (time, position).
type Seen = Arc<Mutex<Vec<(DateTime<Utc>, u64)>>>;

/// Follows `reports:<position>` notifications: (time received, position).
pub struct CheckpointWatch {
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl CheckpointWatch {
    pub async fn start(db_url: &str, projection: &str) -> anyhow::Result<Self> {
        let mut listener = PgListener::connect(db_url).await?;
        listener.listen("precinct_checkpoints").await?;
        let seen = Arc::new(Mutex::new(Vec::with_capacity(1 << 16)));
        let prefix = format!("{projection}:");
        let s = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok(n) = listener.recv().await {
                let now = Utc::now();
                if let Some(p) = n.payload().strip_prefix(prefix.as_str()) {
                    if let Ok(p) = p.parse::<u64>() {
                        if let Ok(mut v) = s.lock() {
                            v.push((now, p));
                        }
                    }
                }
            }
        });
        Ok(Self { seen, task })
    }

    pub fn highest(&self) -> u64 {
        self.seen
            .lock()
            .map(|v| v.iter().map(|(_, p)| *p).max().unwrap_or(0))
            .unwrap_or(0)
    }

    /// When `position` first became visible.
    fn visible_at(seen: &[(DateTime<Utc>, u64)], position: u64) -> Option<DateTime<Utc>> {
        seen.iter().find(|(_, p)| *p >= position).map(|(t, _)| *t)
    }

    pub async fn wait_for(&self, position: u64, bound: Duration) -> bool {
        let deadline = std::time::Instant::now() + bound;
        while std::time::Instant::now() < deadline {
            if self.highest() >= position {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    pub fn stop(self) -> Vec<(DateTime<Utc>, u64)> {
        self.task.abort();
        let mut v = self.seen.lock().map(|v| v.clone()).unwrap_or_default();
        v.sort_by_key(|(t, _)| *t);
        v
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    api: &Client,
    world: &World,
    log: &EventLog,
    db_url: &str,
    connections: usize,
    duration: Duration,
    max_ops: u64,
    sample_every: u64,
) -> anyhow::Result<IntakeOut> {
    let watch = CheckpointWatch::start(db_url, "reports").await?;
    let tokens: Arc<Vec<String>> =
        Arc::new(world.citizens.iter().map(|c| c.token.clone()).collect());
    let reports = Arc::new(Mutex::new(Vec::<(String, u64)>::with_capacity(1 << 16)));
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let calls: Arc<Vec<Call>> = Arc::new((0..1024u64).map(|n| report(n, LAT, LON)).collect());
    let (api, r2, s2) = (api.clone(), reports.clone(), samples.clone());
    let load = closed_loop(connections, duration, max_ops, move |w, n| {
        let (api, tokens, calls, reports, samples) = (
            api.clone(),
            tokens.clone(),
            calls.clone(),
            r2.clone(),
            s2.clone(),
        );
        async move {
            let call = &calls[(n % calls.len() as u64) as usize];
            let res = api.send(call, Some(&tokens[w % tokens.len()])).await?;
            let acked_at = Utc::now();
            if res.status.as_u16() != 201 {
                anyhow::bail!("HTTP {}", res.status);
            }
            let position = res.position();
            if let Ok(mut r) = reports.lock() {
                r.push((res.id(), position));
            }
            if sample_every > 0 && n % sample_every == 0 {
                if let Ok(mut s) = samples.lock() {
                    s.push(Sample { position, acked_at });
                }
            }
            Ok(())
        }
    })
    .await;

    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    let top = samples.iter().map(|s| s.position).max().unwrap_or(0);
    watch.wait_for(top, Duration::from_secs(15)).await;
    let seen = watch.stop();
    let mut lag = Latencies::default();
    let mut ack = Latencies::default();
    let mut unseen = 0;
    // JetStream's store time of each sampled event (direct gets, a few in flight).
    let stored: Vec<Option<DateTime<Utc>>> = {
        use futures::StreamExt;
        futures::stream::iter(samples.iter().map(|s| log.stored_at(s.position)))
            .buffered(16)
            .map(|r| r.ok().flatten())
            .collect::<Vec<_>>()
            .await
    };
    for (s, stored_at) in samples.iter().zip(stored) {
        match CheckpointWatch::visible_at(&seen, s.position) {
            Some(v) => {
                if let Some(at) = stored_at {
                    lag.record_micros((v - at).num_microseconds().unwrap_or(i64::MAX));
                }
                ack.record_micros((v - s.acked_at).num_microseconds().unwrap_or(i64::MAX));
            }
            None => unseen += 1,
        }
    }
    let reports = reports.lock().map(|r| r.clone()).unwrap_or_default();
    Ok(IntakeOut {
        load,
        reports,
        lag_samples: samples.len(),
        lag_unseen: unseen,
        lag: lag.summary(),
        ack_to_visible: ack.summary(),
    })
}
