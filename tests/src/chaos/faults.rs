//! The faults: what can be broken, how, and the schedule that breaks it.
//!
//! One fault at a time, at random moments (seeded): inject, hold for a random while,
//! heal (restart / SIGCONT) and wait until the target serves again, then a random gap
//! before the next. Every loop is bounded in count and in time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use super::pg::PrivatePg;
use super::procs::{signal, PrecinctProc};
use crate::nats::PrivateNats;

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// `kill -9` of nats-server, restarted on the same port and store.
    KillNats,
    /// SIGSTOP of nats-server, SIGCONT after the hold.
    PauseNats,
    /// `kill -9` of a precinct process, restarted with the same environment.
    KillPrecinct,
    /// SIGSTOP of a precinct process, SIGCONT after the hold.
    PausePrecinct,
    /// `pg_ctl stop -m immediate`, started again (crash recovery).
    StopPostgres,
    /// SIGSTOP of the postmaster and every backend, SIGCONT after the hold.
    PausePostgres,
    /// `kill -9` of one node of the 3-node cluster, restarted; then the next node.
    KillClusterNode,
    /// `kill -9` of the projector process that holds the most projections' advisory
    /// locks, held until the other projector process holds every one of them (the
    /// standby's takeover, ADR 0006; bounded), then restarted.
    KillProjectorLeader,
}

impl FaultKind {
    /// Every kind for a campaign with a private nats-server.
    pub const SINGLE_NODE: [FaultKind; 7] = [
        FaultKind::KillNats,
        FaultKind::PauseNats,
        FaultKind::KillPrecinct,
        FaultKind::KillProjectorLeader,
        FaultKind::PausePrecinct,
        FaultKind::StopPostgres,
        FaultKind::PausePostgres,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FaultKind::KillNats => "kill -9 nats-server",
            FaultKind::PauseNats => "SIGSTOP nats-server",
            FaultKind::KillPrecinct => "kill -9 precinct",
            FaultKind::PausePrecinct => "SIGSTOP precinct",
            FaultKind::StopPostgres => "pg_ctl stop -m immediate",
            FaultKind::PausePostgres => "SIGSTOP postgres",
            FaultKind::KillClusterNode => "kill -9 cluster node",
            FaultKind::KillProjectorLeader => "kill -9 projector leader",
        }
    }
}

/// The event log's servers.
pub enum Nats {
    /// One private nats-server (tests/src/nats.rs), `sync_interval: always`.
    Private(PrivateNats),
    /// The local 3-node cluster, driven through `deploy/local/cluster.sh`.
    Cluster { script: PathBuf },
}

/// Everything a campaign may break.
pub struct Targets {
    pub nats: Nats,
    pub pg: PrivatePg,
    pub procs: Vec<PrecinctProc>,
}

impl Targets {
    /// Restarts precinct processes that ended without being killed; says which.
    pub fn revive(&mut self) -> anyhow::Result<Vec<String>> {
        let mut exits = Vec::new();
        for p in &mut self.procs {
            if let Some(status) = p.exited() {
                exits.push(format!("precinct {} exited on its own ({status})", p.roles));
                p.restart()?;
            }
        }
        Ok(exits)
    }
}

/// How many faults, how far apart, how long each lasts.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    pub count: usize,
    pub kinds: Vec<FaultKind>,
    /// Pause between a heal and the next fault (uniform in the range).
    pub gap: (Duration, Duration),
    /// How long a fault lasts before it is healed (uniform in the range).
    pub hold: (Duration, Duration),
    /// No fault starts after this much time.
    pub budget: Duration,
}

/// One injected fault.
#[derive(Debug, Clone)]
pub struct FaultRecord {
    pub kind: FaultKind,
    pub target: String,
    /// Since the campaign started.
    pub at: Duration,
    pub held: Duration,
    /// From the heal command until the target served again.
    pub heal: Duration,
}

#[derive(Debug, Default)]
pub struct FaultLog {
    pub records: Vec<FaultRecord>,
    /// Processes that ended without a fault ending them (a finding).
    pub unplanned_exits: Vec<String>,
    /// How long each standby took to hold every lock the killed leader held.
    pub takeovers: Vec<Duration>,
    /// Leader kills the standby did not take over from (a finding).
    pub failed_takeovers: Vec<String>,
}

impl FaultLog {
    pub fn by_kind(&self) -> BTreeMap<FaultKind, (usize, Duration)> {
        let mut m: BTreeMap<FaultKind, (usize, Duration)> = BTreeMap::new();
        for r in &self.records {
            let e = m.entry(r.kind).or_default();
            e.0 += 1;
            e.1 = e.1.max(r.heal);
        }
        m
    }
}

fn between(rng: &mut StdRng, (lo, hi): (Duration, Duration)) -> Duration {
    if hi <= lo {
        return lo;
    }
    Duration::from_millis(rng.gen_range(lo.as_millis() as u64..=hi.as_millis() as u64))
}

/// Injects `plan.count` faults (fewer if the budget runs out), healing each. Blocking:
/// run it on its own thread while the workload runs.
pub fn run(
    targets: &mut Targets,
    plan: &FaultPlan,
    rng: &mut StdRng,
    started: Instant,
) -> anyhow::Result<FaultLog> {
    let mut log = FaultLog::default();
    // Every kind comes up about equally often, in a random order.
    let mut deck: Vec<FaultKind> = plan
        .kinds
        .iter()
        .copied()
        .cycle()
        .take(plan.count)
        .collect();
    deck.shuffle(rng);
    let mut next_node = 1;
    for kind in deck {
        std::thread::sleep(between(rng, plan.gap));
        if started.elapsed() > plan.budget {
            break;
        }
        log.unplanned_exits.extend(targets.revive()?);
        let hold = between(rng, plan.hold);
        let at = started.elapsed();
        let (target, heal) = inject(targets, kind, hold, rng, &mut next_node, &mut log)
            .with_context(|| format!("fault {} at {at:?}", kind.label()))?;
        eprintln!(
            "chaos: t+{:.1}s {} ({target}): held {:.2} s, serving again {:.2} s after the heal",
            at.as_secs_f64(),
            kind.label(),
            hold.as_secs_f64(),
            heal.as_secs_f64()
        );
        log.records.push(FaultRecord {
            kind,
            target,
            at,
            held: hold,
            heal,
        });
    }
    log.unplanned_exits.extend(targets.revive()?);
    Ok(log)
}

/// One fault: inject, hold, heal. Returns the target's name and how long healing took.
fn inject(
    t: &mut Targets,
    kind: FaultKind,
    hold: Duration,
    rng: &mut StdRng,
    next_node: &mut u32,
    log: &mut FaultLog,
) -> anyhow::Result<(String, Duration)> {
    let target;
    let healed_at;
    match kind {
        FaultKind::KillNats | FaultKind::PauseNats => {
            let Nats::Private(nats) = &mut t.nats else {
                bail!("{} needs a private nats-server", kind.label());
            };
            target = format!("nats-server :{}", nats.port);
            if kind == FaultKind::KillNats {
                nats.kill();
                std::thread::sleep(hold);
                healed_at = Instant::now();
                nats.restart()?;
            } else {
                let pid = nats.pid().context("nats-server is not running")?;
                signal(pid, "STOP");
                std::thread::sleep(hold);
                healed_at = Instant::now();
                signal(pid, "CONT");
            }
        }
        FaultKind::KillPrecinct | FaultKind::PausePrecinct => {
            let i = rng.gen_range(0..t.procs.len());
            let p = &mut t.procs[i];
            target = format!("precinct {}", p.roles);
            if kind == FaultKind::KillPrecinct {
                p.kill();
                std::thread::sleep(hold);
                healed_at = Instant::now();
                p.restart()?;
            } else {
                let pid = p.pid().context("precinct is not running")?;
                signal(pid, "STOP");
                std::thread::sleep(hold);
                healed_at = Instant::now();
                signal(pid, "CONT");
            }
        }
        FaultKind::KillProjectorLeader => {
            // Every projection (a checkpoint row each) led by some process first: after
            // an earlier fault's heal the locks take a second or two to be taken again.
            let total: usize =
                t.pg.query("SELECT count(*) FROM checkpoints")?
                    .trim()
                    .parse()
                    .context("count of checkpoints")?;
            let locks = match settled_locks(&t.pg, &t.procs, total) {
                Ok(locks) => locks,
                Err(e) => {
                    log.failed_takeovers.push(format!("before the kill: {e}"));
                    std::thread::sleep(hold);
                    return Ok(("no projector leader".into(), Duration::ZERO));
                }
            };
            let leader = (0..t.procs.len())
                .max_by_key(|i| locks[*i])
                .context("no precinct process")?;
            let held = locks[leader];
            target = format!(
                "precinct {} ({held} of {total} projections)",
                t.procs[leader].roles
            );
            let killed_at = Instant::now();
            t.procs[leader].kill();
            match wait_takeover(&t.pg, &t.procs, leader, total) {
                Ok(took) => log.takeovers.push(took),
                Err(e) => log
                    .failed_takeovers
                    .push(format!("after the kill of {target}: {e}")),
            }
            std::thread::sleep(hold.saturating_sub(killed_at.elapsed()));
            healed_at = Instant::now();
            t.procs[leader].restart()?;
        }
        FaultKind::StopPostgres => {
            target = format!("postgres :{}", t.pg.port);
            t.pg.stop_immediate()?;
            std::thread::sleep(hold);
            healed_at = Instant::now();
            t.pg.restart()?;
        }
        FaultKind::PausePostgres => {
            target = format!("postgres :{}", t.pg.port);
            t.pg.pause(true)?;
            std::thread::sleep(hold);
            healed_at = Instant::now();
            t.pg.pause(false)?;
        }
        FaultKind::KillClusterNode => {
            let Nats::Cluster { script } = &t.nats else {
                bail!("{} needs the local cluster", kind.label());
            };
            let n = *next_node;
            *next_node = n % 3 + 1;
            target = format!("cluster node n{n}");
            cluster(script, "kill-node", n)?;
            std::thread::sleep(hold);
            healed_at = Instant::now();
            cluster(script, "start-node", n)?;
        }
    }
    Ok((target, healed_at.elapsed()))
}

/// How many projections' advisory locks each process holds (by its sessions'
/// `application_name`, in `procs` order; 0 for a process without the projector role).
fn projection_locks(pg: &PrivatePg, procs: &[PrecinctProc]) -> anyhow::Result<Vec<usize>> {
    let rows = pg.query(
        "SELECT a.application_name, count(*) FROM pg_locks l \
         JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted GROUP BY 1",
    )?;
    let held: BTreeMap<&str, usize> = rows
        .lines()
        .filter_map(|l| l.split_once('|'))
        .filter_map(|(app, n)| Some((app, n.trim().parse().ok()?)))
        .collect();
    Ok(procs
        .iter()
        .map(|p| match p.roles.contains("projector") {
            true => held
                .get(p.application_name().as_str())
                .copied()
                .unwrap_or(0),
            false => 0,
        })
        .collect())
}

/// Reads who holds how many projection locks every 50 ms until `done` says so (bounded:
/// 15 s); answers the last reading and how long it took, or says what was still held
/// (`what`: the condition, for the message).
fn poll_locks(
    pg: &PrivatePg,
    procs: &[PrecinctProc],
    what: &str,
    done: impl Fn(&[usize]) -> bool,
) -> Result<(Vec<usize>, Duration), String> {
    let started = Instant::now();
    let mut last = Vec::new();
    while started.elapsed() < Duration::from_secs(15) {
        if let Ok(locks) = projection_locks(pg, procs) {
            if done(&locks) {
                return Ok((locks, started.elapsed()));
            }
            last = locks;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{what} within 15 s (held: {last:?})"))
}

/// Waits until the projector processes hold all `total` projection locks.
fn settled_locks(
    pg: &PrivatePg,
    procs: &[PrecinctProc],
    total: usize,
) -> Result<Vec<usize>, String> {
    let what = format!("the projector processes did not hold all {total} projection locks");
    poll_locks(pg, procs, &what, |locks| {
        locks.iter().sum::<usize>() >= total
    })
    .map(|r| r.0)
}

/// Waits until the processes other than `killed` hold at least `total` projection
/// locks; answers how long that took.
fn wait_takeover(
    pg: &PrivatePg,
    procs: &[PrecinctProc],
    killed: usize,
    total: usize,
) -> Result<Duration, String> {
    let what = format!("the other processes did not hold all {total} projection locks");
    poll_locks(pg, procs, &what, |locks| {
        let all: usize = locks.iter().sum();
        locks[killed] == 0 && all >= total
    })
    .map(|r| r.1)
}

/// `cluster.sh <verb> <node>`; it waits for a meta leader / for the node to be current.
fn cluster(script: &PathBuf, verb: &str, node: u32) -> anyhow::Result<()> {
    let out = Command::new("bash")
        .arg(script)
        .arg(verb)
        .arg(node.to_string())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cluster.sh {verb} {node}"))?;
    if !out.status.success() {
        bail!(
            "cluster.sh {verb} {node} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
