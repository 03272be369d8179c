//! Workload 4: live locations. `PUT /patrols/{id}/location` by each patrol's officer,
//! with `recorded_at` set to the send time, while SSE subscribers (station dispatchers,
//! spread over the location stations) follow `GET /patrols/stream`. Fan-out latency is
//! the time a subscriber parsed the `position` frame minus the frame's `recorded_at`:
//! one machine clock.
//!
//! Three phases: **max** (closed loops, as fast as the server answers, one fix per
//! `PUT`), **max batched** (the same with several fixes per `POST …/locations`, as a
//! device sending a few seconds of fixes at once) and **paced** (an open loop at a
//! city-like rate, every patrol about once a second).
//!
//! Delivery is checked exactly: every acknowledged update is identified by its patrol,
//! `recorded_at` and heading (the heading carries the update's number), and each
//! subscriber's received frames must be exactly the multiset of its station's
//! acknowledged updates — none missing, none extra, none twice ([`check_delivery`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use precinct_tests::client::{Call, Client, Fix};
use precinct_tests::sse::{self, Frames};
use tokio::sync::watch;

use crate::load::{closed_loop, error_kind, LoadResult};
use crate::stats::Latencies;
use crate::world::{location_centre, World};

/// Which phase the subscribers are recording for (index into their latency sets).
pub const PHASES: usize = 3;

pub struct Subscribers {
    stop: watch::Sender<bool>,
    phase: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<SubOut>>,
    /// Subscribers per station index.
    pub per_station: Vec<usize>,
}

/// One update as a subscriber sees it: patrol, `recorded_at` in µs, heading.
pub type FrameKey = (String, i64, u16);

#[derive(Default)]
pub struct SubOut {
    pub lat: Vec<Latencies>,
    pub frames: Vec<u64>,
    /// The server ended the stream (e.g. dropped as a slow client).
    pub ended: bool,
    /// The station (index) this subscriber follows.
    pub station: usize,
    /// Every `position` frame received while recording, by update.
    pub received: HashMap<FrameKey, u32>,
}

/// The identity of a `position` frame's update.
fn frame_key(data: &str) -> Option<FrameKey> {
    let v: serde_json::Value = serde_json::from_str(data).ok()?;
    let at = DateTime::parse_from_rfc3339(v["recorded_at"].as_str()?).ok()?;
    Some((
        v["patrol_id"].as_str()?.to_string(),
        at.timestamp_micros(),
        v["heading"].as_f64()? as u16,
    ))
}

/// `recorded_at` of a `position` frame's data, without parsing the whole JSON.
fn recorded_at(data: &str) -> Option<DateTime<Utc>> {
    const KEY: &str = "\"recorded_at\":\"";
    let start = data.find(KEY)? + KEY.len();
    let end = start + data[start..].find('"')?;
    DateTime::parse_from_rfc3339(&data[start..end])
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

impl Subscribers {
    pub async fn connect(base: &str, world: &World, n: usize) -> anyhow::Result<Self> {
        let (stop, stop_rx) = watch::channel(false);
        let phase = Arc::new(AtomicUsize::new(usize::MAX));
        let client = sse::stream_client();
        let stations = &world.location_stations;
        let mut per_station = vec![0usize; stations.len()];
        let mut tasks = Vec::new();
        for i in 0..n {
            let st = i % stations.len();
            per_station[st] += 1;
            let token = &stations[st].1.token;
            let res = sse::subscribe(&client, base, "/patrols/stream", token, None).await?;
            anyhow::ensure!(
                res.status().is_success(),
                "SSE subscribe: HTTP {}",
                res.status()
            );
            let (mut stop_rx, phase) = (stop_rx.clone(), phase.clone());
            tasks.push(tokio::spawn(async move {
                let mut res = res;
                let mut out = SubOut {
                    lat: (0..PHASES)
                        .map(|_| Latencies::with_capacity(1 << 16))
                        .collect(),
                    frames: vec![0; PHASES],
                    ended: false,
                    station: st,
                    received: HashMap::new(),
                };
                let mut frames = Frames::default();
                loop {
                    let chunk = tokio::select! {
                        _ = stop_rx.changed() => break,
                        c = res.chunk() => c,
                    };
                    let chunk = match chunk {
                        Ok(Some(c)) => c,
                        _ => {
                            out.ended = true;
                            break;
                        }
                    };
                    let now = Utc::now();
                    frames.push(&chunk, |frame| {
                        let p = phase.load(Ordering::Relaxed);
                        if p < PHASES && frame.event() == "position" {
                            for data in frame.data_lines() {
                                if let Some(at) = recorded_at(data) {
                                    out.frames[p] += 1;
                                    out.lat[p].record_micros(
                                        (now - at).num_microseconds().unwrap_or(i64::MAX),
                                    );
                                }
                                // After the latency is taken: the whole frame, for the
                                // delivery check.
                                let key =
                                    frame_key(data).unwrap_or_else(|| ("unreadable".into(), 0, 0));
                                *out.received.entry(key).or_default() += 1;
                            }
                        }
                    });
                }
                out
            }));
        }
        Ok(Self {
            stop,
            phase,
            tasks,
            per_station,
        })
    }

    pub fn set_phase(&self, p: usize) {
        self.phase.store(p, Ordering::Relaxed);
    }

    pub async fn finish(self) -> Vec<SubOut> {
        let _ = self.stop.send(true);
        let mut out = Vec::new();
        for t in self.tasks {
            if let Ok(o) = t.await {
                out.push(o);
            }
        }
        out
    }
}

/// Fix `n` of a patrol of location station `st`, recorded now (its heading is `n`
/// modulo 360: with the patrol and `recorded_at`, it tells updates apart).
fn fix(st: usize, n: u64) -> Fix {
    let (lat, lon) = location_centre(st);
    let wiggle = ((n % 1000) as f64) * 1e-5;
    Fix {
        latitude: lat + wiggle,
        longitude: lon - wiggle,
        heading: Some((n % 360) as f64),
        speed_mps: Some(8.5),
        recorded_at: Some(Utc::now()),
    }
}

/// Per-station successful updates, to know how many frames subscribers should see, and
/// each acknowledged update (station index, identity).
#[derive(Default)]
pub struct Sent {
    pub per_station: Vec<AtomicU64>,
    pub acked: Mutex<Vec<(usize, FrameKey)>>,
}

impl Sent {
    /// The counts once the load is over (a copy if a task still holds them).
    fn settle(sent: Arc<Sent>) -> Sent {
        Arc::try_unwrap(sent).unwrap_or_else(|a| Sent {
            per_station: a
                .per_station
                .iter()
                .map(|x| AtomicU64::new(x.load(Ordering::Relaxed)))
                .collect(),
            acked: Mutex::new(a.acked.lock().map(|v| v.clone()).unwrap_or_default()),
        })
    }
}

async fn put(
    api: &Client,
    world: &World,
    station_index: &[usize],
    sent: &Sent,
    k: usize,
    n: u64,
) -> anyhow::Result<()> {
    let p = &world.location_patrols[k];
    let st = station_index[k];
    let f = fix(st, n);
    let call = Call::location(&p.patrol, &f);
    let status = api.status(&call, Some(&p.officer.token)).await?;
    if status.as_u16() != 202 {
        anyhow::bail!("HTTP {status}");
    }
    sent.per_station[st].fetch_add(1, Ordering::Relaxed);
    let key = (
        p.patrol.clone(),
        f.recorded_at.map(|t| t.timestamp_micros()).unwrap_or(0),
        f.heading.unwrap_or(0.0) as u16,
    );
    if let Ok(mut acked) = sent.acked.lock() {
        acked.push((st, key));
    }
    Ok(())
}

/// `per` fixes of patrol `k` in one request; update numbers `n * per ..`.
async fn post_batch(
    api: &Client,
    world: &World,
    station_index: &[usize],
    sent: &Sent,
    k: usize,
    n: u64,
    per: usize,
) -> anyhow::Result<()> {
    let p = &world.location_patrols[k];
    let st = station_index[k];
    let fixes: Vec<Fix> = (0..per as u64)
        .map(|j| fix(st, n * per as u64 + j))
        .collect();
    let call = Call::locations(&p.patrol, &fixes);
    let status = api.status(&call, Some(&p.officer.token)).await?;
    if status.as_u16() != 202 {
        anyhow::bail!("HTTP {status}");
    }
    sent.per_station[st].fetch_add(per as u64, Ordering::Relaxed);
    if let Ok(mut acked) = sent.acked.lock() {
        for f in &fixes {
            acked.push((
                st,
                (
                    p.patrol.clone(),
                    f.recorded_at.map(|t| t.timestamp_micros()).unwrap_or(0),
                    f.heading.unwrap_or(0.0) as u16,
                ),
            ));
        }
    }
    Ok(())
}

pub fn station_index(world: &World) -> Vec<usize> {
    world
        .location_patrols
        .iter()
        .map(|p| {
            world
                .location_stations
                .iter()
                .position(|(s, _)| *s == p.station)
                .unwrap_or(0)
        })
        .collect()
}

/// Max-rate phase: closed loops over the patrols, `per` fixes per request (1: `PUT`
/// one fix, more: `POST …/locations`). The result counts requests.
pub async fn max_rate(
    api: &Client,
    world: Arc<World>,
    connections: usize,
    duration: Duration,
    max_ops: u64,
    per: usize,
) -> (LoadResult, Sent) {
    let sent = Arc::new(Sent {
        per_station: (0..world.location_stations.len())
            .map(|_| AtomicU64::new(0))
            .collect(),
        acked: Mutex::new(Vec::new()),
    });
    let idx = Arc::new(station_index(&world));
    let (api, s2) = (api.clone(), sent.clone());
    let result = closed_loop(connections, duration, max_ops, move |_, n| {
        let (api, world, idx, sent) = (api.clone(), world.clone(), idx.clone(), s2.clone());
        async move {
            let k = (n % world.location_patrols.len() as u64) as usize;
            if per > 1 {
                post_batch(&api, &world, &idx, &sent, k, n, per).await
            } else {
                put(&api, &world, &idx, &sent, k, n).await
            }
        }
    })
    .await;
    (result, Sent::settle(sent))
}

/// Paced phase: `rate` updates/s in total from `workers` open loops (a late tick is
/// skipped, not bunched).
pub async fn paced(
    api: &Client,
    world: Arc<World>,
    rate: u64,
    duration: Duration,
) -> (LoadResult, Sent) {
    let workers = 50usize.min(rate.max(1) as usize);
    let period = Duration::from_secs_f64(workers as f64 / rate.max(1) as f64);
    let sent = Arc::new(Sent {
        per_station: (0..world.location_stations.len())
            .map(|_| AtomicU64::new(0))
            .collect(),
        acked: Mutex::new(Vec::new()),
    });
    let idx = Arc::new(station_index(&world));
    let counter = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let deadline = t0 + duration;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (api, world, idx, sent, counter) = (
            api.clone(),
            world.clone(),
            idx.clone(),
            sent.clone(),
            counter.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut out = LoadResult::default();
            // Spread the workers' ticks over one period.
            tokio::time::sleep(period.mul_f64(w as f64 / workers as f64)).await;
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                if Instant::now() >= deadline {
                    break;
                }
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let k = (n % world.location_patrols.len() as u64) as usize;
                let t = Instant::now();
                match put(&api, &world, &idx, &sent, k, n).await {
                    Ok(()) => {
                        out.latencies.record(t.elapsed());
                        out.ok += 1;
                    }
                    Err(e) => *out.errors.entry(error_kind(&e)).or_default() += 1,
                }
            }
            out
        }));
    }
    let mut result = LoadResult::default();
    for t in tasks {
        if let Ok(o) = t.await {
            result.ok += o.ok;
            for (k, v) in o.errors {
                *result.errors.entry(k).or_default() += v;
            }
            result.latencies.merge(o.latencies);
        }
    }
    result.elapsed = t0.elapsed();
    (result, Sent::settle(sent))
}

/// What the exact delivery check found over every subscriber.
#[derive(Debug, Default, serde::Serialize)]
pub struct Delivery {
    pub subscribers: usize,
    /// Acknowledged updates of a subscriber's station it never received.
    pub missing: u64,
    /// Frames a subscriber received that no acknowledged update of its station explains
    /// (including a second copy of one).
    pub extra: u64,
}

/// Compares each subscriber's received frames with the acknowledged updates of its
/// station, over every phase (`sent`: each phase's updates).
pub fn check_delivery(outs: &[SubOut], sent: &[&Sent]) -> Delivery {
    let mut expected: HashMap<usize, HashMap<&FrameKey, u32>> = HashMap::new();
    let acked: Vec<Vec<(usize, FrameKey)>> = sent
        .iter()
        .map(|s| s.acked.lock().map(|v| v.clone()).unwrap_or_default())
        .collect();
    for (st, key) in acked.iter().flatten() {
        *expected.entry(*st).or_default().entry(key).or_default() += 1;
    }
    let mut d = Delivery {
        subscribers: outs.len(),
        ..Delivery::default()
    };
    let none = HashMap::new();
    for o in outs {
        let want = expected.get(&o.station).unwrap_or(&none);
        for (key, n) in want {
            let got = o.received.get(*key).copied().unwrap_or(0);
            d.missing += n.saturating_sub(got) as u64;
        }
        for (key, got) in &o.received {
            let n = want.get(key).copied().unwrap_or(0);
            d.extra += got.saturating_sub(n) as u64;
        }
    }
    d
}

/// Frames subscribers should have seen for `sent`.
pub fn expected_frames(sent: &Sent, per_station: &[usize]) -> u64 {
    sent.per_station
        .iter()
        .zip(per_station)
        .map(|(s, n)| s.load(Ordering::Relaxed) * *n as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_at_is_found_in_a_frame() {
        let d = r#"{"position":3,"patrol_id":"x","recorded_at":"2026-01-02T03:04:05.123456Z","heading":90.0}"#;
        let at = recorded_at(d).expect("found");
        assert_eq!(at.timestamp_subsec_micros(), 123456);
        assert!(recorded_at("{}").is_none());
    }
}
