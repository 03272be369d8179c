//! The overload phase (issue 15, ADR 0021): `POST /crimes` by signed-in citizens,
//! **open loop** at a multiple of the rate the intake phase sustained — requests leave
//! on a fixed schedule whether or not earlier ones were answered, as real clients do —
//! so the server must shed the excess. Each answer is one of:
//!
//! - accepted (201): its latency is recorded;
//! - shed: 503 with `Retry-After` and `application/problem+json`;
//! - anything else (a timeout, another status, a 503 without `Retry-After`): an error.
//!
//! Afterwards every accepted report must be in the read model (lost otherwise), and the
//! phase's reports (marked by their title) must be exactly the accepted ones — a shed
//! request left nothing behind.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use precinct_tests::client::{Call, Client};
use serde::Serialize;
use sqlx::PgPool;

use crate::load::error_kind;
use crate::stats::{Latencies, Percentiles};
use crate::world::{report, World, LAT, LON};

/// The title that marks this phase's reports.
pub const TITLE: &str = "Overload bench bike";
/// Requests the load generator keeps outstanding at most (a bound on its own memory;
/// beyond it a scheduled request is counted as `client backlog`, an error).
const MAX_OUTSTANDING: usize = 4096;

#[derive(Debug, Default, Serialize)]
pub struct OverloadOut {
    /// Requests per second offered.
    pub offered_rate: f64,
    pub sent: u64,
    pub accepted: u64,
    pub shed: u64,
    /// Answers that are neither 201 nor a well-formed shed 503, by kind.
    pub other: BTreeMap<String, u64>,
    pub accepted_latency: Percentiles,
    pub secs: f64,
    /// Accepted reports not in the read model.
    pub lost: u64,
    /// Reports of this phase in the read model that no 201 acknowledged.
    pub unacknowledged_applied: i64,
    /// The log positions of the accepted reports (not in results.json).
    #[serde(skip)]
    pub accepted_positions: Vec<u64>,
}

impl OverloadOut {
    pub fn accepted_rate(&self) -> f64 {
        self.accepted as f64 / self.secs.max(1e-9)
    }
    pub fn shed_share(&self) -> f64 {
        self.shed as f64 / self.sent.max(1) as f64
    }
    pub fn other_errors(&self) -> u64 {
        self.other.values().sum()
    }
}

enum Answer {
    Accepted { id: String, position: u64 },
    Shed,
}

async fn submit(api: &Client, call: &Call, token: &str) -> anyhow::Result<Answer> {
    let res = api.send(call, Some(token)).await?;
    match res.status.as_u16() {
        201 => Ok(Answer::Accepted {
            id: res.id(),
            position: res.position(),
        }),
        503 => {
            let retry_after = res
                .headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let problem = res
                .headers
                .get(reqwest::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes() == b"application/problem+json");
            if retry_after.is_some() && problem {
                Ok(Answer::Shed)
            } else {
                anyhow::bail!("HTTP 503 without Retry-After or problem+json")
            }
        }
        s => anyhow::bail!("HTTP {s}"),
    }
}

#[derive(Default)]
struct Tally {
    accepted: Vec<(String, u64)>,
    shed: u64,
    other: BTreeMap<String, u64>,
    latency: Latencies,
}

pub async fn run(
    api: &Client,
    world: &World,
    pool: &PgPool,
    rate: f64,
    duration: Duration,
    max_ops: u64,
) -> anyhow::Result<OverloadOut> {
    let rate = rate.max(1.0);
    let tokens: Arc<Vec<String>> =
        Arc::new(world.citizens.iter().map(|c| c.token.clone()).collect());
    let calls: Arc<Vec<Call>> = Arc::new(
        (0..1024u64)
            .map(|n| {
                let mut call = report(n, LAT, LON);
                if let Some(body) = call.body.as_mut() {
                    body["title"] = serde_json::json!(TITLE);
                }
                call
            })
            .collect(),
    );
    let tally = Arc::new(Mutex::new(Tally::default()));
    let outstanding = Arc::new(tokio::sync::Semaphore::new(MAX_OUTSTANDING));
    let t0 = Instant::now();
    let mut sent = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    while t0.elapsed() < duration && sent < max_ops {
        // Everything due by now leaves now (the timer's granularity is ~1 ms).
        let due = ((t0.elapsed().as_secs_f64() * rate) as u64 + 1).min(max_ops);
        while sent < due {
            let n = sent;
            sent += 1;
            let Ok(slot) = outstanding.clone().try_acquire_owned() else {
                if let Ok(mut t) = tally.lock() {
                    *t.other.entry("client backlog".into()).or_default() += 1;
                }
                continue;
            };
            let (api, tokens, calls, tally) =
                (api.clone(), tokens.clone(), calls.clone(), tally.clone());
            tasks.spawn(async move {
                let _slot = slot;
                let call = &calls[(n % calls.len() as u64) as usize];
                let token = &tokens[(n % tokens.len() as u64) as usize];
                let t = Instant::now();
                let answer = submit(&api, call, token).await;
                let took = t.elapsed();
                if let Ok(mut tally) = tally.lock() {
                    match answer {
                        Ok(Answer::Accepted { id, position }) => {
                            tally.latency.record(took);
                            tally.accepted.push((id, position));
                        }
                        Ok(Answer::Shed) => tally.shed += 1,
                        Err(e) => *tally.other.entry(error_kind(&e)).or_default() += 1,
                    }
                }
            });
        }
        // Reap finished tasks as we go (their results are in the tally).
        while tasks.try_join_next().is_some() {}
        let next = t0 + Duration::from_secs_f64(sent as f64 / rate);
        tokio::time::sleep_until(next.into()).await;
    }
    while tasks.join_next().await.is_some() {}
    let secs = t0.elapsed().as_secs_f64();
    let tally = std::mem::take(&mut *tally.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);

    // Every acknowledged report must be in the read model, and nothing else of this phase.
    let top = tally.accepted.iter().map(|(_, p)| *p).max().unwrap_or(0);
    let reached = precinct_readmodel::wait_for_position(pool, top, Duration::from_secs(60))
        .await
        .unwrap_or(false);
    if !reached {
        eprintln!("  overload: the read models did not reach {top} within 60 s");
    }
    let ids: Vec<uuid::Uuid> = tally
        .accepted
        .iter()
        .filter_map(|(id, _)| id.parse().ok())
        .collect();
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM reports WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_one(pool)
        .await?;
    let marked: i64 = sqlx::query_scalar("SELECT count(*) FROM reports WHERE title = $1")
        .bind(TITLE)
        .fetch_one(pool)
        .await?;
    let accepted = tally.accepted.len() as u64;
    Ok(OverloadOut {
        offered_rate: rate,
        sent,
        accepted,
        shed: tally.shed,
        other: tally.other,
        accepted_latency: tally.latency.summary(),
        secs,
        lost: accepted.saturating_sub(found.max(0) as u64),
        unacknowledged_applied: marked - found,
        accepted_positions: tally.accepted.iter().map(|(_, p)| *p).collect(),
    })
}
