//! The webhook workload (issue 18): `BENCH_WEBHOOKS` (10) subscriptions to every report
//! event, each to its own path of one HTTP receiver in this process, while citizens
//! submit reports — either paced (open loop at a fixed rate, [`Load::Paced`]: the
//! latency a city sees) or as fast as the intake goes (closed loop, [`Load::Closed`]:
//! the most the deliverer keeps up with while the machine is saturated).
//!
//! Figures: deliveries per second (all subscriptions together: from the load's start to
//! the last delivery, during the load, and in the drain after it), and the latency of
//! each delivery from the moment JetStream stored the event (its message timestamp) to
//! the moment the receiver got it — append → delivered, on one machine clock — for
//! every n-th log position.
//!
//! Self-checks: every subscription received every report event after the one that
//! created it that any of them received, and every such acknowledged report's
//! submission, each once (a repeat is counted), in log order, and every signature
//! verifies under the subscription's secret (HMAC-SHA256 over `id.timestamp.body`,
//! computed here, not with the server's code).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use precinct_eventlog::EventLog;
use precinct_tests::client::{Call, Client};
use serde_json::json;
use sha2::Sha256;

use crate::intake;
use crate::stats::{Latencies, Percentiles};
use crate::world::World;

/// One delivery the receiver got.
#[derive(Debug, Clone)]
struct Got {
    subscription: usize,
    message_id: String,
    position: u64,
    at: DateTime<Utc>,
    /// What the signature is checked against afterwards (the secret is known only once
    /// the subscription's 201 is read, which a first delivery may beat).
    timestamp: String,
    signature: String,
    body: Bytes,
}

#[derive(Default)]
struct Inner {
    got: Vec<Got>,
}

type Shared = Arc<Mutex<Inner>>;

/// The receiver: `POST /hook/{n}` records the delivery and answers 204.
struct Receiver {
    inner: Shared,
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let inner: Shared = Arc::default();
        let router = axum::Router::new()
            .route("/hook/{n}", axum::routing::post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            inner,
            base: format!("http://{addr}"),
            task,
        })
    }

    fn got(&self) -> Vec<Got> {
        self.inner.lock().map(|i| i.got.clone()).unwrap_or_default()
    }

    fn count(&self) -> usize {
        self.inner.lock().map(|i| i.got.len()).unwrap_or(0)
    }
}

async fn receive(
    State(inner): State<Shared>,
    Path(n): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = Utc::now();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let position = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["position"].as_u64())
        .unwrap_or(0);
    let Ok(mut inner) = inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    inner.got.push(Got {
        subscription: n,
        message_id: id,
        position,
        at,
        timestamp,
        signature,
        body,
    });
    StatusCode::NO_CONTENT
}

/// Standard Webhooks: one of the space-separated `v1,<base64>` signatures is the
/// HMAC-SHA256 of `id.timestamp.body` under the secret (base64 after `whsec_`).
fn verify(secret: &str, id: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| b64.decode(k).ok())
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    signature.split(' ').any(|s| s == expected)
}

/// The intake load under which webhooks are delivered.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// Open loop at this many reports per second.
    Paced { rate: f64 },
    /// Closed loop over this many connections.
    Closed { connections: usize },
}

pub struct WebhooksOut {
    /// Reports acknowledged, their rate and latency, and the intake's errors.
    pub acked: usize,
    pub intake_rate: f64,
    pub intake_latency: Percentiles,
    pub intake_errors: u64,
    pub subscriptions: usize,
    /// Deliveries received, repeats included.
    pub deliveries: usize,
    /// From the load's start to the last delivery.
    pub elapsed: Duration,
    /// From the load's end to the last delivery.
    pub drain: Duration,
    /// Deliveries per second while the load ran, and after it.
    pub during_rate: f64,
    pub drain_rate: f64,
    /// Append → delivered, over the sampled positions' deliveries.
    pub latency: Percentiles,
    pub sampled_positions: usize,
    /// Report events (log positions) delivered or acknowledged: each subscription
    /// should have had those after the event that created it.
    pub expected_positions: usize,
    /// (subscription, position) pairs never delivered.
    pub missing: usize,
    /// Deliveries of a (subscription, position) already delivered.
    pub repeats: usize,
    /// Deliveries that arrived after a later position of the same subscription.
    pub out_of_order: usize,
    pub unverified: usize,
    /// Deliveries whose `webhook-id` another position of the subscription had too.
    pub id_clashes: usize,
}

impl WebhooksOut {
    pub fn throughput(&self) -> f64 {
        self.deliveries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Subscribes, runs the intake load, waits (bounded by `drain_bound`) until every
/// subscription has everything, deletes the subscriptions, and measures.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    api: &Client,
    world: &World,
    log: &EventLog,
    db_url: &str,
    pool: &sqlx::PgPool,
    admin: &str,
    subscriptions: usize,
    load: Load,
    duration: Duration,
    max_ops: u64,
    sample_every: u64,
    drain_bound: Duration,
) -> anyhow::Result<WebhooksOut> {
    let receiver = Receiver::start().await?;
    let mut ids = Vec::with_capacity(subscriptions);
    let mut secrets = Vec::with_capacity(subscriptions);
    // Each subscription starts after the event that created it.
    let mut created = Vec::with_capacity(subscriptions);
    for n in 0..subscriptions {
        let r = api
            .send(
                &Call::post(
                    "/webhooks",
                    json!({"url": format!("{}/hook/{n}", receiver.base)}),
                ),
                Some(admin),
            )
            .await?;
        if r.status.as_u16() != 201 {
            anyhow::bail!("POST /webhooks answered {}: {}", r.status, r.body);
        }
        secrets.push(r.body["secret"].as_str().unwrap_or_default().to_owned());
        created.push(r.position());
        ids.push(r.id());
    }
    let started = Instant::now();
    // (acknowledged positions, rate, latency, errors)
    let result: anyhow::Result<(Vec<u64>, f64, Percentiles, u64)> = match load {
        Load::Closed { connections } => {
            intake::run(api, world, log, db_url, connections, duration, max_ops, 0)
                .await
                .map(|w| {
                    let rate = w.load.throughput();
                    let errors = w.load.error_count();
                    let positions = w.reports.iter().map(|(_, p)| *p).collect();
                    (positions, rate, w.load.latencies.summary(), errors)
                })
        }
        Load::Paced { rate } => crate::overload::run(api, world, pool, rate, duration, max_ops)
            .await
            .map(|o| {
                let errors = o.shed + o.other_errors() + o.lost;
                (
                    o.accepted_positions.clone(),
                    o.accepted_rate(),
                    o.accepted_latency,
                    errors,
                )
            }),
    };
    let load_end = Instant::now();
    // Wait until every subscription has every acknowledged report (bounded), then a
    // little more for events appended with them, then until nothing new arrives.
    let acked: BTreeSet<u64> = result
        .as_ref()
        .map(|(positions, ..)| positions.iter().copied().collect())
        .unwrap_or_default();
    let deadline = Instant::now() + drain_bound;
    let mut last = (receiver.count(), Instant::now());
    loop {
        let got = receiver.got();
        let mut have: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); subscriptions];
        for g in &got {
            if let Some(h) = have.get_mut(g.subscription) {
                h.insert(g.position);
            }
        }
        let complete = have
            .iter()
            .zip(&created)
            .all(|(h, c)| acked.iter().filter(|p| *p > c).all(|p| h.contains(p)));
        if got.len() != last.0 {
            last = (got.len(), Instant::now());
        }
        let quiet = last.1.elapsed() >= Duration::from_millis(500);
        if (complete && quiet) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &ids {
        let _ = api
            .send(
                &Call::new(reqwest::Method::DELETE, format!("/webhooks/{id}"), None),
                Some(admin),
            )
            .await;
    }
    let (positions, intake_rate, intake_latency, intake_errors) = result?;
    let got = receiver.got();
    receiver.task.abort();

    let last_at = got.iter().map(|g| g.at).max();
    let first_at = Utc::now() - chrono::Duration::from_std(started.elapsed())?;
    let elapsed = last_at
        .map(|l| (l - first_at).to_std().unwrap_or_default())
        .unwrap_or_default();
    let load_end_at = Utc::now() - chrono::Duration::from_std(load_end.elapsed())?;
    let drain = last_at
        .map(|l| (l - load_end_at).to_std().unwrap_or_default())
        .unwrap_or_default();
    let during = got.iter().filter(|g| g.at <= load_end_at).count();
    let load_secs = (load_end_at - first_at)
        .to_std()
        .unwrap_or_default()
        .as_secs_f64();
    let during_rate = during as f64 / load_secs.max(1e-9);
    let drain_rate = (got.len() - during) as f64 / drain.as_secs_f64().max(1e-9);

    // Expected: every position any subscription got, and every acknowledged report.
    let mut expected: BTreeSet<u64> = got.iter().map(|g| g.position).collect();
    expected.extend(acked.iter().copied());
    let mut per: Vec<Vec<&Got>> = vec![Vec::new(); subscriptions];
    for g in &got {
        if let Some(v) = per.get_mut(g.subscription) {
            v.push(g);
        }
    }
    let (mut missing, mut repeats, mut out_of_order, mut id_clashes) = (0, 0, 0, 0);
    for (deliveries, created) in per.iter().zip(&created) {
        let mut seen: HashMap<u64, &str> = HashMap::new();
        let mut ids_seen: HashMap<&str, u64> = HashMap::new();
        let mut highest = 0;
        for g in deliveries {
            match seen.get(&g.position) {
                Some(_) => repeats += 1,
                None => {
                    if g.position < highest {
                        out_of_order += 1;
                    }
                    seen.insert(g.position, &g.message_id);
                }
            }
            highest = highest.max(g.position);
            if let Some(p) = ids_seen.insert(&g.message_id, g.position) {
                if p != g.position {
                    id_clashes += 1;
                }
            }
        }
        missing += expected
            .iter()
            .filter(|p| *p > created && !seen.contains_key(p))
            .count();
    }
    let unverified = got
        .iter()
        .filter(|g| {
            !secrets.get(g.subscription).is_some_and(|secret| {
                verify(secret, &g.message_id, &g.timestamp, &g.body, &g.signature)
            })
        })
        .count();

    // Latency of every n-th position's deliveries, from JetStream's store time.
    let sampled: Vec<u64> = expected
        .iter()
        .copied()
        .filter(|p| sample_every <= 1 || p % sample_every == 0)
        .collect();
    let stored: HashMap<u64, DateTime<Utc>> = {
        use futures::StreamExt;
        futures::stream::iter(
            sampled
                .iter()
                .map(|&p| async move { (p, log.stored_at(p).await.ok().flatten()) }),
        )
        .buffered(16)
        .filter_map(|(p, at)| async move { at.map(|at| (p, at)) })
        .collect()
        .await
    };
    let mut latency = Latencies::default();
    for g in &got {
        if let Some(at) = stored.get(&g.position) {
            latency.record_micros((g.at - *at).num_microseconds().unwrap_or(i64::MAX));
        }
    }
    Ok(WebhooksOut {
        acked: positions.len(),
        intake_rate,
        intake_latency,
        intake_errors,
        subscriptions,
        deliveries: got.len(),
        elapsed,
        drain,
        during_rate,
        drain_rate,
        latency: latency.summary(),
        sampled_positions: stored.len(),
        expected_positions: expected.len(),
        missing,
        repeats,
        out_of_order,
        unverified,
        id_clashes,
    })
}
