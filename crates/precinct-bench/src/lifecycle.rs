//! Workload 2: the report lifecycle. One virtual user per patrol (one officer each)
//! drives pre-submitted reports, one after another, through dispatch → accept →
//! respond → resolve → approve, each step with the right token (dispatcher, the
//! patrol's officer, the supervisor). At the end every driven report is checked through
//! the read models: `GET /crimes/{id}` must say `CLOSED` and its history must hold each
//! lifecycle event exactly once (a lost or a doubled effect otherwise); every patrol
//! must be `AVAILABLE` with `open_assignments` 0 in `GET /workloads`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use precinct_tests::client::{Call, Client};
use serde::Serialize;

use crate::load::{error_kind, LoadResult};
use crate::stats::{Latencies, Percentiles};
use crate::world::World;

pub const STEPS: [&str; 5] = ["dispatch", "accept", "respond", "resolve", "approve"];

#[derive(Debug, Default, Serialize)]
pub struct Verification {
    pub reports_checked: u64,
    pub reports_closed: u64,
    /// A step was acknowledged but its effect is missing (status not CLOSED, or an
    /// event missing from the history).
    pub lost: u64,
    /// An effect appears more than once in the history.
    pub doubled: u64,
    /// Reports whose state or history could not be read (any non-2xx answer, e.g. a
    /// throttle): neither proven closed nor lost; the check fails on them.
    pub unreadable: u64,
    pub patrols_checked: u64,
    /// Patrols not AVAILABLE or with open assignments although all their reports closed.
    pub patrols_wrong: u64,
    /// Reports whose drive stopped at a failed step (not lost: never acknowledged).
    pub incomplete: u64,
    pub complete: bool,
}

pub struct LifecycleOut {
    /// Successful commands (each step is one).
    pub load: LoadResult,
    /// Steps shed by the admission limit (503 + `Retry-After`) and sent again after it.
    pub shed: u64,
    pub reports_done: u64,
    pub per_step: BTreeMap<String, Percentiles>,
    pub verification: Verification,
}

struct Done {
    id: String,
    last_position: u64,
}

pub async fn run(
    api: &Client,
    world: &World,
    pool: Vec<String>,
    duration: Duration,
    max_reports: u64,
) -> anyhow::Result<LifecycleOut> {
    let queue = Arc::new(Mutex::new(pool));
    let t0 = Instant::now();
    let deadline = t0 + duration;
    let started = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for p in world.lifecycle.iter().cloned() {
        let (api, queue, started) = (api.clone(), queue.clone(), started.clone());
        let desk = world.dispatcher.token.clone();
        let sup = world.supervisor.token.clone();
        tasks.push(tokio::spawn(async move {
            let mut step_lat: Vec<Latencies> =
                (0..STEPS.len()).map(|_| Latencies::default()).collect();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let mut done = Vec::new();
            let mut incomplete = 0u64;
            let mut ok = 0u64;
            let mut failed_patrol = false;
            let mut shed = 0u64;
            while Instant::now() < deadline {
                if started.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= max_reports {
                    break;
                }
                let Some(id) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                    break;
                };
                let officer = p.officer.token.as_str();
                let steps = [
                    (Call::dispatch(&id, Some(&p.patrol)), desk.as_str()),
                    (Call::accept(&id), officer),
                    (Call::respond(&id), officer),
                    (Call::resolve(&id, "Bike recovered and returned"), officer),
                    (Call::approve_closure(&id), sup.as_str()),
                ];
                let mut last = 0u64;
                let mut all = true;
                for (i, (call, token)) in steps.iter().enumerate() {
                    let mut t = Instant::now();
                    let mut answer = api.call(call, Some(token)).await;
                    // Shed by the admission limit (ADR 0021): nothing was done; come
                    // back when told to, as a well-behaved client does.
                    let mut tries = 1;
                    while let Ok(r) = &answer {
                        let Some(wait) = shed_retry_after(r) else {
                            break;
                        };
                        if tries >= MAX_SHED_RETRIES {
                            break;
                        }
                        shed += 1;
                        tries += 1;
                        tokio::time::sleep(wait).await;
                        t = Instant::now();
                        answer = api.call(call, Some(token)).await;
                    }
                    match answer {
                        Ok(r) if r.status.is_success() => {
                            step_lat[i].record(t.elapsed());
                            ok += 1;
                            last = r.body["position"].as_u64().unwrap_or(last);
                        }
                        Ok(r) => {
                            *errors
                                .entry(format!("{} HTTP {}", STEPS[i], r.status.as_u16()))
                                .or_default() += 1;
                            all = false;
                            break;
                        }
                        Err(e) => {
                            *errors
                                .entry(format!("{} {}", STEPS[i], error_kind(&e)))
                                .or_default() += 1;
                            all = false;
                            break;
                        }
                    }
                }
                if all {
                    done.push(Done {
                        id,
                        last_position: last,
                    });
                } else {
                    incomplete += 1;
                    failed_patrol = true;
                }
            }
            (
                p.patrol,
                ok,
                errors,
                step_lat,
                done,
                incomplete,
                failed_patrol,
                shed,
            )
        }));
    }
    let mut load = LoadResult::default();
    let mut per_step: Vec<Latencies> = (0..STEPS.len()).map(|_| Latencies::default()).collect();
    let mut done = Vec::new();
    let mut incomplete = 0;
    let mut failed_patrols = HashSet::new();
    let mut shed = 0;
    for t in tasks {
        if let Ok((patrol, ok, errors, lat, d, inc, failed, s)) = t.await {
            shed += s;
            load.ok += ok;
            for (k, v) in errors {
                *load.errors.entry(k).or_default() += v;
            }
            for (i, l) in lat.into_iter().enumerate() {
                load.latencies.merge(l.clone());
                per_step[i].merge(l);
            }
            done.extend(d);
            incomplete += inc;
            if failed {
                failed_patrols.insert(patrol);
            }
        }
    }
    load.elapsed = t0.elapsed();
    let reports_done = done.len() as u64;
    let per_step = STEPS
        .iter()
        .zip(per_step)
        .map(|(s, l)| (s.to_string(), l.summary()))
        .collect();
    let mut verification = verify(api, world, &done, &failed_patrols).await;
    verification.incomplete = incomplete;
    Ok(LifecycleOut {
        load,
        shed,
        reports_done,
        per_step,
        verification,
    })
}

/// Times one step is sent again after being shed before the drive gives up.
const MAX_SHED_RETRIES: u32 = 30;

/// `Retry-After` of a 503 shed by the admission limit (problem+json); `None` for any
/// other answer.
fn shed_retry_after(r: &precinct_tests::client::Res) -> Option<Duration> {
    if r.status.as_u16() != 503 {
        return None;
    }
    let secs: u64 = r
        .headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

const EXPECTED: [&str; 5] = [
    "ReportAssigned",
    "AssignmentAccepted",
    "ReportResponding",
    "ReportResolved",
    "ClosureApproved",
];

async fn verify(
    api: &Client,
    world: &World,
    done: &[Done],
    failed_patrols: &HashSet<String>,
) -> Verification {
    let mut v = Verification::default();
    let desk = world.dispatcher.token.as_str();
    let deadline = Instant::now() + Duration::from_secs(90);
    // The read models first catch up with the last acknowledged step.
    let top = done.iter().map(|d| d.last_position).max().unwrap_or(0);
    if let Some(d) = done.first() {
        let first = Call::report(&d.id)
            .min_position(top)
            .timeout(Duration::from_secs(30));
        let _ = api.send(&first, Some(desk)).await;
    }
    let results: Vec<(bool, u64, u64, bool)> = futures::stream::iter(done.iter())
        .map(|d| async move {
            if Instant::now() > deadline {
                return (false, 0, 0, false);
            }
            let closed = match api.send(&Call::report(&d.id), Some(desk)).await {
                Ok(r) if r.status.is_success() => Some(r.body["status"] == "CLOSED"),
                _ => None,
            };
            let Some(closed) = closed else {
                return (true, 0, 0, true);
            };
            let mut lost = u64::from(!closed);
            let mut doubled = 0;
            match api.send(&Call::history(&d.id), Some(desk)).await {
                Ok(r) if r.status.is_success() => {
                    let mut counts: HashMap<String, u64> = HashMap::new();
                    for e in r.body["items"].as_array().into_iter().flatten() {
                        *counts
                            .entry(e["type"].as_str().unwrap_or("").to_string())
                            .or_default() += 1;
                    }
                    for t in EXPECTED {
                        match counts.get(t).copied().unwrap_or(0) {
                            0 => lost += 1,
                            1 => {}
                            _ => doubled += 1,
                        }
                    }
                }
                _ => return (true, 0, 0, true),
            }
            (true, lost, doubled, false)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (checked, lost, doubled, unreadable) in results {
        if unreadable {
            v.unreadable += 1;
        } else if checked {
            v.reports_checked += 1;
            if lost == 0 {
                v.reports_closed += 1;
            }
            v.lost += u64::from(lost > 0);
            v.doubled += u64::from(doubled > 0);
        }
    }
    // Every lifecycle patrol, through GET /workloads (paged).
    let mine: HashSet<&str> = world.lifecycle.iter().map(|p| p.patrol.as_str()).collect();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        let call = Call::workloads(Some(100), cursor.as_deref());
        let r = match api.send(&call, Some(desk)).await {
            Ok(r) if r.status.is_success() => r,
            _ => break,
        };
        for item in r.body["items"].as_array().into_iter().flatten() {
            let id = item["patrol_id"].as_str().unwrap_or("");
            if !mine.contains(id) || failed_patrols.contains(id) {
                continue;
            }
            v.patrols_checked += 1;
            if item["status"] != "AVAILABLE" || item["open_assignments"].as_i64() != Some(0) {
                v.patrols_wrong += 1;
            }
        }
        cursor = r.body["next_cursor"].as_str().map(|s| s.to_string());
        if cursor.is_none() || pages > 1000 {
            break;
        }
    }
    v.complete = v.reports_checked == done.len() as u64
        && v.patrols_checked == (world.lifecycle.len() - failed_patrols.len()) as u64;
    v
}
