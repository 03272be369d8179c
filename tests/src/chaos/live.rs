//! The live side of a campaign: movers send patrol fixes (`PUT /patrols/{id}/location`,
//! one officer per patrol, every 100 ms) while watchers — the station's dispatcher and
//! supervisor — follow `GET /patrols/stream`, reconnecting with `Last-Event-ID` whenever
//! a fault ends their connection. After healing, [`check`] says what the faults did to
//! the fixes (ADR 0005):
//!
//! - every acknowledged fix reaches every watcher. The one exception: a fix *no* watcher
//!   received that the positions stream no longer holds (read back after the campaign),
//!   with a `kill -9` of nats-server at most [`LOSS_BOUND`] after its answer (or up to
//!   [`ANSWER_SLACK`] before it: the answer's trip back) — the stream is persisted
//!   asynchronously on a single
//!   node, so a kill may lose it: counted (with how long before the kill it was
//!   answered), not a violation. A fix still in the stream that no watcher received was
//!   skipped by the fan-out, and a fix one watcher received and another missed was sent:
//!   always violations;
//! - a refused fix never appears;
//! - within one connection, position ids (`p<seq>`) and event ids (`e<position>`) only
//!   increase: no duplicate, no reordering. Across reconnections a watcher may get an
//!   event again (at-least-once for the source its `Last-Event-ID` does not name), but
//!   it misses none;
//! - each watcher reaches the positions stream's last fix (bounded);
//! - the roster (`patrols.latitude`/`longitude`) holds each patrol's last fix.
//!
//! Fixes are not retried (a retried ping is a new ping, ADR 0005), and each carries a
//! longitude no other fix of its patrol has, which is how the checker finds it.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use precinct_eventlog::positions::{PositionLog, WindowStart};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::workload::{Clients, Outcome};
use crate::client::{Call, Fix};
use crate::sse::{stream_client, subscribe_with, Frames};
use crate::world::World;

/// How long after a kill began a fix's answer may still arrive (acknowledged before it).
pub const ANSWER_SLACK: Duration = Duration::from_secs(1);
/// How long before a `kill -9` of nats-server a fix the stream lost may have been
/// answered: asynchronous persistence loses what it had not written yet (ADR 0005 says
/// about a second); a loss older than this is a violation.
pub const LOSS_BOUND: Duration = Duration::from_secs(5);
/// How long a watcher gets, once told the stream's last sequence, to receive it.
const REACH_BOUND: Duration = Duration::from_secs(30);
const LAT: f64 = 7.07;
const LON: f64 = 125.61;

/// One fix a mover sent, and its fate.
#[derive(Debug, Clone)]
pub struct SentFix {
    pub patrol: String,
    pub latitude: f64,
    pub longitude: f64,
    pub outcome: Outcome,
    /// The positions-stream sequence the 202 answered.
    pub seq: Option<u64>,
    /// When its answer came (since the campaign started).
    pub done_at: Duration,
}

/// Sends fixes for crew `n`'s patrol until the campaign stops.
pub async fn mover(c: Clients, world: Arc<World>, n: usize, sent: Arc<Mutex<Vec<SentFix>>>) {
    let crew = &world.stations[0].crews[n];
    let mut i = 0u32;
    while !c.phase.stopping() {
        i += 1;
        let fix = Fix {
            latitude: LAT + 0.001 * n as f64,
            longitude: LON + 1e-5 * f64::from(i),
            heading: None,
            speed_mps: None,
            recorded_at: None,
        };
        let call = Call::location(&crew.patrol, &fix);
        let (outcome, seq) = match c.send(&call, Some(&crew.officer.token)).await {
            Ok(r) if r.status == StatusCode::ACCEPTED => {
                (Outcome::Acknowledged, r.body["position"].as_u64())
            }
            Ok(r) if r.status.is_client_error() && !matches!(r.status.as_u16(), 408 | 429) => {
                (Outcome::Refused(r.status.as_u16()), None)
            }
            _ => (Outcome::Unknown, None),
        };
        sent.lock().expect("fixes").push(SentFix {
            patrol: crew.patrol.clone(),
            latitude: fix.latitude,
            longitude: fix.longitude,
            outcome,
            seq,
            done_at: c.phase.elapsed(),
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One frame a watcher received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub id: String,
    pub event: String,
    pub patrol: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// What one watcher received, connection by connection.
#[derive(Debug, Default)]
pub struct Watched {
    pub who: String,
    pub connections: Vec<Vec<Seen>>,
    /// Connection attempts answered with something other than 200 (a restarting
    /// server's 503, …), by status.
    pub refused: BTreeMap<u16, usize>,
    /// It received the stream's last fix before its bound.
    pub reached: bool,
}

impl Watched {
    fn last_position(&self) -> Option<u64> {
        self.connections
            .iter()
            .rev()
            .flat_map(|c| c.iter().rev())
            .find_map(|s| s.id.strip_prefix('p')?.parse().ok())
    }
}

/// Follows `/patrols/stream` as `token` until it has received the fix `end` names (set
/// by the campaign once healed; `u64::MAX` until then), or [`REACH_BOUND`] after that.
/// The campaign aborts it if it ends before setting `end`.
pub async fn watcher(
    base: String,
    who: String,
    token: String,
    end: Arc<AtomicU64>,
    connected: Arc<AtomicUsize>,
) -> Watched {
    let http = stream_client();
    let mut w = Watched {
        who,
        ..Watched::default()
    };
    let mut deadline: Option<Instant> = None;
    let reached = |w: &Watched, target: u64| {
        target != u64::MAX && (target == 0 || w.last_position().is_some_and(|p| p >= target))
    };
    loop {
        let target = end.load(Ordering::SeqCst);
        if target != u64::MAX && deadline.is_none() {
            deadline = Some(Instant::now() + REACH_BOUND);
        }
        if reached(&w, target) {
            w.reached = true;
            return w;
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            return w;
        }
        let last_id = w
            .connections
            .iter()
            .rev()
            .flat_map(|c| c.iter().rev())
            .map(|s| s.id.clone())
            .next();
        let res = tokio::time::timeout(
            Duration::from_secs(5),
            subscribe_with(
                &http,
                &base,
                "/patrols/stream",
                Some(&token),
                &[],
                last_id.as_deref(),
            ),
        )
        .await;
        let mut res = match res {
            Ok(Ok(res)) if res.status() == StatusCode::OK => res,
            Ok(Ok(res)) => {
                *w.refused.entry(res.status().as_u16()).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            _ => {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        if w.connections.is_empty() {
            connected.fetch_add(1, Ordering::SeqCst);
        }
        w.connections.push(Vec::new());
        let mut frames = Frames::default();
        loop {
            let target = end.load(Ordering::SeqCst);
            if reached(&w, target) || deadline.is_some_and(|d| Instant::now() > d) {
                break;
            }
            if target != u64::MAX && deadline.is_none() {
                deadline = Some(Instant::now() + REACH_BOUND);
            }
            match tokio::time::timeout(Duration::from_secs(1), res.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    let conn = w.connections.last_mut().expect("a connection");
                    frames.push(&chunk, |f| {
                        let Some(id) = f.id() else { return };
                        let data: Value =
                            serde_json::from_str(&f.data_lines().collect::<Vec<_>>().join("\n"))
                                .unwrap_or(Value::Null);
                        conn.push(Seen {
                            id: id.to_string(),
                            event: f.event().to_string(),
                            patrol: data["patrol_id"].as_str().map(str::to_string),
                            latitude: data["latitude"].as_f64(),
                            longitude: data["longitude"].as_f64(),
                        });
                    });
                }
                // Ended or broken: reconnect from the last id.
                Ok(_) => break,
                // Nothing for a second: look at the target again.
                Err(_) => {}
            }
        }
    }
}

/// Waits (bounded: 20 s) until `n` watchers are connected.
pub async fn wait_connected(connected: &AtomicUsize, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while connected.load(Ordering::SeqCst) < n {
        if Instant::now() > deadline {
            bail!("the live-stream watchers did not connect within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The fixes the positions stream holds after the campaign ([`stream_key`]), of every
/// patrol a mover sent for: read back by patrol, 1,000 at a time.
pub async fn stored_fixes(
    positions: &PositionLog,
    sent: &[SentFix],
) -> anyhow::Result<HashSet<(String, u64)>> {
    let patrols: std::collections::BTreeSet<&str> =
        sent.iter().map(|f| f.patrol.as_str()).collect();
    let mut stored = HashSet::new();
    for patrol in patrols {
        let id = Uuid::parse_str(patrol)?;
        let mut after = 0;
        loop {
            let page = positions
                .read_patrol(id, WindowStart::After(after), 1000)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            stored.extend(page.iter().map(|m| key(patrol, m.moved.longitude)));
        }
    }
    Ok(stored)
}

/// Waits (up to `bound`) until the roster's checkpoint is the positions stream's
/// last sequence `head`: every fix is in `patrols` (and in the rebuild's replay).
pub async fn wait_roster(pool: &PgPool, head: u64, bound: Duration) -> Result<(), String> {
    let deadline = Instant::now() + bound;
    loop {
        let at: Result<Option<i64>, _> =
            sqlx::query_scalar("SELECT position FROM checkpoints WHERE projection = $1")
                .bind(precinct_projections::roster::NAME)
                .fetch_optional(pool)
                .await;
        let at = at.ok().flatten();
        if at == Some(head as i64) || (head == 0 && at.is_none()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "live: the roster's checkpoint is {at:?}, not the positions head {head}, after {bound:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Each patrol's location as the roster holds it.
pub async fn roster(pool: &PgPool) -> anyhow::Result<BTreeMap<String, (Option<f64>, Option<f64>)>> {
    let mut out = BTreeMap::new();
    for row in sqlx::query("SELECT id, latitude, longitude FROM patrols")
        .fetch_all(pool)
        .await?
    {
        let id: Uuid = row.try_get("id")?;
        out.insert(
            id.to_string(),
            (row.try_get("latitude")?, row.try_get("longitude")?),
        );
    }
    Ok(out)
}

/// What the live side came to.
#[derive(Debug, Default)]
pub struct LiveVerdict {
    pub acknowledged: usize,
    pub refused: usize,
    pub unknown: usize,
    /// Acknowledged fixes the positions stream lost to a later `kill -9` of nats-server
    /// (allowed, ADR 0005), and the longest time from such a fix's answer to that kill.
    pub lost_to_nats_kill: usize,
    pub lost_longest_before_kill: Duration,
    /// Connections beyond each watcher's first.
    pub reconnects: usize,
    /// Frames a watcher received more than once, across its reconnections.
    pub redelivered: usize,
    pub violations: Vec<String>,
}

fn key(patrol: &str, longitude: f64) -> (String, u64) {
    // Longitudes are `LON + 1e-5 * i`: rounded to 1e-9 they are unique per patrol.
    (patrol.to_string(), (longitude * 1e9).round() as u64)
}

/// The key of a fix in the positions stream (its patrol and longitude): what
/// [`check`] takes as `in_stream`.
pub fn stream_key(patrol: &str, longitude: f64) -> (String, u64) {
    key(patrol, longitude)
}

/// Checks the watchers' frames and the roster (`patrol`: latitude and longitude) against
/// the fixes sent; `nats_kills`: when each `kill -9` of nats-server happened;
/// `in_stream`: the fixes the positions stream holds after the campaign
/// ([`stream_key`]).
pub fn check(
    sent: &[SentFix],
    watched: &[Watched],
    roster: &BTreeMap<String, (Option<f64>, Option<f64>)>,
    nats_kills: &[Duration],
    in_stream: &HashSet<(String, u64)>,
) -> LiveVerdict {
    let mut v = LiveVerdict::default();
    for f in sent {
        match f.outcome {
            Outcome::Acknowledged => v.acknowledged += 1,
            Outcome::Refused(_) => v.refused += 1,
            Outcome::Unknown => v.unknown += 1,
        }
    }
    // What each watcher received, by fix; each connection checked for order.
    let mut received: Vec<HashSet<(String, u64)>> = Vec::new();
    for w in watched {
        v.reconnects += w.connections.len().saturating_sub(1);
        if !w.reached {
            v.violations.push(format!(
                "live: the {} never received the positions stream's last fix (bound {REACH_BOUND:?})",
                w.who
            ));
        }
        let mut got = HashSet::new();
        let mut ids = HashSet::new();
        for (n, conn) in w.connections.iter().enumerate() {
            let mut last = [None::<u64>; 2];
            for s in conn {
                if !ids.insert(s.id.clone()) {
                    v.redelivered += 1;
                }
                let (source, num) = match s.id.split_at_checked(1) {
                    Some(("p", n)) => (0, n.parse::<u64>().ok()),
                    Some(("e", n)) => (1, n.parse::<u64>().ok()),
                    _ => continue,
                };
                let Some(num) = num else { continue };
                if last[source].is_some_and(|l| num <= l) {
                    v.violations.push(format!(
                        "live: the {}'s connection {n} received {} after {}{}",
                        w.who,
                        s.id,
                        &s.id[..1],
                        last[source].unwrap_or(0)
                    ));
                }
                last[source] = Some(num);
                if let (Some(p), Some(lon)) = (&s.patrol, s.longitude) {
                    if s.event == "position" {
                        got.insert(key(p, lon));
                    }
                }
            }
        }
        received.push(got);
    }
    let mut lost = 0;
    for f in sent {
        let k = key(&f.patrol, f.longitude);
        let seen_by: Vec<bool> = received.iter().map(|r| r.contains(&k)).collect();
        match f.outcome {
            Outcome::Acknowledged if seen_by.iter().any(|s| !s) => {
                // Missed by every watcher, gone from the stream, and a nats-server kill
                // after its answer: lost by the stream (ADR 0005). Anything else was in
                // the stream when the watchers should have got it.
                let missed_by_all = seen_by.iter().all(|s| !s);
                let stored = in_stream.contains(&k);
                let kill = nats_kills
                    .iter()
                    .filter(|k| **k + ANSWER_SLACK >= f.done_at)
                    .min();
                let before = kill.map(|k| k.saturating_sub(f.done_at));
                if let (true, false, Some(before)) = (missed_by_all, stored, before) {
                    if before <= LOSS_BOUND {
                        lost += 1;
                        v.lost_longest_before_kill = v.lost_longest_before_kill.max(before);
                        continue;
                    }
                }
                let why = match (stored, before) {
                    (true, _) => "in the stream".to_string(),
                    (false, Some(_)) if !missed_by_all => {
                        "not in the stream; another watcher got it".to_string()
                    }
                    (false, Some(b)) => format!(
                        "not in the stream; answered {:.2} s before the next nats-server kill, more than {LOSS_BOUND:?}",
                        b.as_secs_f64()
                    ),
                    (false, None) => "not in the stream, and no nats-server kill after it".to_string(),
                };
                for (w, seen) in watched.iter().zip(&seen_by) {
                    if !seen {
                        v.violations.push(format!(
                            "live: the {} never received the acknowledged fix p{} of patrol {} (answered at {:.2} s; {why})",
                            w.who,
                            f.seq.unwrap_or(0),
                            f.patrol,
                            f.done_at.as_secs_f64()
                        ));
                    }
                }
            }
            Outcome::Refused(s) => {
                for (w, seen) in watched.iter().zip(&seen_by) {
                    if *seen {
                        v.violations.push(format!(
                            "live: the {} received a fix of patrol {} that was refused ({s})",
                            w.who, f.patrol
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    v.lost_to_nats_kill = lost;
    // The roster: each patrol's last fix as the first watcher received it last.
    if let Some(w) = watched.first() {
        let mut last: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for s in w.connections.iter().flatten() {
            if let (Some(p), Some(lat), Some(lon)) = (&s.patrol, s.latitude, s.longitude) {
                if s.event == "position" {
                    last.insert(p.clone(), (lat, lon));
                }
            }
        }
        for (patrol, (lat, lon)) in &last {
            let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
            match roster.get(patrol) {
                Some((a, b)) if close(*a, *lat) && close(*b, *lon) => {}
                found => v.violations.push(format!(
                    "live: the roster holds {found:?} for patrol {patrol}, its last fix is ({lat}, {lon})"
                )),
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "patrol-1";

    fn sent(i: u32, outcome: Outcome, at_ms: u64) -> SentFix {
        SentFix {
            patrol: P.into(),
            latitude: LAT,
            longitude: LON + 1e-5 * f64::from(i),
            outcome,
            seq: Some(u64::from(i)),
            done_at: Duration::from_millis(at_ms),
        }
    }

    fn frame(id: &str, i: Option<u32>) -> Seen {
        Seen {
            id: id.into(),
            event: if i.is_some() { "position" } else { "status" }.into(),
            patrol: i.map(|_| P.to_string()),
            latitude: i.map(|_| LAT),
            longitude: i.map(|i| LON + 1e-5 * f64::from(i)),
        }
    }

    fn watched(connections: Vec<Vec<Seen>>) -> Watched {
        Watched {
            who: "dispatcher".into(),
            connections,
            reached: true,
            ..Watched::default()
        }
    }

    /// The positions stream holding fixes `i` of [`P`].
    fn stored(i: &[u32]) -> HashSet<(String, u64)> {
        i.iter()
            .map(|i| stream_key(P, LON + 1e-5 * f64::from(*i)))
            .collect()
    }

    fn roster_at(i: u32) -> BTreeMap<String, (Option<f64>, Option<f64>)> {
        BTreeMap::from([(P.into(), (Some(LAT), Some(LON + 1e-5 * f64::from(i))))])
    }

    #[test]
    fn every_fix_delivered_across_a_reconnection_is_no_violation() {
        let fixes = [1, 2, 3].map(|i| sent(i, Outcome::Acknowledged, 100 * u64::from(i)));
        let w = watched(vec![
            vec![
                frame("p1", Some(1)),
                frame("e5", None),
                frame("p2", Some(2)),
            ],
            // Resumed after p2: the event source again (at-least-once), then p3.
            vec![frame("e5", None), frame("p3", Some(3))],
        ]);
        let v = check(&fixes, &[w], &roster_at(3), &[], &stored(&[1, 2, 3]));
        assert!(v.violations.is_empty(), "{:?}", v.violations);
        assert_eq!((v.acknowledged, v.reconnects, v.redelivered), (3, 1, 1));
    }

    #[test]
    fn a_missing_fix_a_reordering_a_refused_fix_seen_and_a_stale_roster_are_violations() {
        let fixes = [
            sent(1, Outcome::Acknowledged, 100),
            sent(2, Outcome::Acknowledged, 200),
            sent(3, Outcome::Refused(403), 300),
        ];
        let w = watched(vec![vec![frame("p3", Some(3)), frame("p1", Some(1))]]);
        // The roster holds the last fix received: no violation of its own here.
        let v = check(&fixes, &[w], &roster_at(1), &[], &stored(&[1, 2]));
        let all = v.violations.join("\n");
        assert!(
            all.contains("never received the acknowledged fix p2"),
            "{all}"
        );
        assert!(all.contains("received p1 after p3"), "{all}");
        assert!(all.contains("that was refused (403)"), "{all}");
        assert_eq!(v.violations.len(), 3, "{all}");
        let stale = check(
            &fixes[..1],
            &[watched(vec![vec![frame("p1", Some(1))]])],
            &roster_at(2),
            &[],
            &stored(&[1]),
        );
        assert!(
            stale.violations[0].contains("the roster holds"),
            "{:?}",
            stale.violations
        );
    }

    #[test]
    fn a_fix_the_stream_lost_to_a_later_nats_kill_is_counted_not_a_violation() {
        let fixes = [
            sent(1, Outcome::Acknowledged, 3_000),
            sent(2, Outcome::Acknowledged, 3_200),
            sent(3, Outcome::Acknowledged, 9_000),
            sent(4, Outcome::Acknowledged, 1_000),
        ];
        let w = watched(vec![vec![]]);
        // A kill at 7.5 s explains the loss of fix 1 (gone from the stream, answered
        // 4.5 s before it), not the miss of fix 2 (still in the stream: skipped by the
        // fan-out), nor the loss of fix 3 (answered after every kill) or of fix 4
        // (answered 6.5 s before the kill: more than a kill may lose).
        let v = check(
            &fixes,
            &[w],
            &BTreeMap::new(),
            &[Duration::from_millis(7_500)],
            &stored(&[2]),
        );
        assert_eq!(v.lost_to_nats_kill, 1);
        assert_eq!(v.lost_longest_before_kill, Duration::from_millis(4_500));
        let all = v.violations.join("\n");
        assert_eq!(v.violations.len(), 3, "{all}");
        assert!(
            all.contains("fix p2 of patrol patrol-1 (answered at 3.20 s; in the stream)"),
            "{all}"
        );
        assert!(all.contains("fix p3 of patrol patrol-1 (answered at 9.00 s; not in the stream, and no nats-server kill after it)"), "{all}");
        assert!(all.contains("fix p4 of patrol patrol-1 (answered at 1.00 s; not in the stream; answered 6.50 s before the next nats-server kill, more than 5s)"), "{all}");
    }

    #[test]
    fn a_fix_one_watcher_missed_at_a_nats_kill_is_still_a_violation() {
        let fixes = [sent(1, Outcome::Acknowledged, 1_000)];
        let (got, missed) = (
            watched(vec![vec![frame("p1", Some(1))]]),
            Watched {
                who: "supervisor".into(),
                ..watched(vec![vec![]])
            },
        );
        let v = check(
            &fixes,
            &[got, missed],
            &roster_at(1),
            &[Duration::from_millis(1_500)],
            &stored(&[]),
        );
        assert_eq!(v.lost_to_nats_kill, 0);
        assert_eq!(v.violations.len(), 1, "{:?}", v.violations);
        assert!(v.violations[0].contains("the supervisor never received"));
    }

    #[test]
    fn a_watcher_that_never_reached_the_last_fix_is_a_violation() {
        let mut w = watched(vec![]);
        w.reached = false;
        let v = check(&[], &[w], &BTreeMap::new(), &[], &stored(&[]));
        assert!(v.violations[0].contains("never received the positions stream's last fix"));
    }
}
