//! A bounded, loopback-only fault campaign (Jepsen-style) against the real `precinct`
//! binary, its own nats-server (or the local 3-node cluster) and its own PostgreSQL.
//!
//! A campaign starts a private PostgreSQL cluster ([`pg`]), a private nats-server with
//! `sync_interval: always` (or uses the cluster `deploy/local/cluster.sh` runs), and two
//! `precinct serve` children ([`procs`]: `api,sla,live` and `projector`). Clients
//! ([`workload`]) send commands over HTTP while [`faults`] kills (`kill -9`), stops
//! (`pg_ctl stop -m immediate`) and pauses (SIGSTOP/SIGCONT) those processes at seeded
//! random moments. After healing, [`checker`] compares what clients were told with the
//! log and the read models.
//!
//! It is not a model checker and not a power-loss test: processes die, the machine and
//! its page cache do not (see docs/reliability.md for what is not covered). Everything
//! is bounded in count and time, listens on 127.0.0.1 only, and touches only processes
//! and directories it started or created.
//!
//! `tests/e2e/chaos.rs` runs [`Settings::short`] inside `make test`; the `precinct-chaos`
//! binary (`make chaos`) runs [`Settings::long`] and, given a cluster, [`Settings::cluster`].

pub mod checker;
pub mod faults;
pub mod live;
pub mod pg;
pub mod procs;
pub mod workload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use precinct_eventlog::{EventLog, LogConfig};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sqlx::postgres::PgPoolOptions;

use checker::Verdict;
use faults::{FaultKind, FaultLog, FaultPlan, Nats, Targets};
use procs::PrecinctProc;
use workload::{Clients, Phase};

/// The local 3-node cluster a campaign runs against.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `NATS_URL` printed by `cluster.sh up` (one node; the client learns the others).
    pub url: String,
    pub script: PathBuf,
}

/// One campaign's knobs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: &'static str,
    pub seed: u64,
    pub plan: FaultPlan,
    /// The run fails with fewer faults than this.
    pub min_faults: usize,
    pub intake_clients: usize,
    pub crews: usize,
    pub citizens: usize,
    /// After the last fault: how long unknown commands keep being retried.
    pub settle: Duration,
    /// How long the projections get to reach the log head after that.
    pub catch_up: Duration,
    pub cluster: Option<Cluster>,
}

impl Settings {
    /// The campaign inside `make test`: 20 short faults of every kind, in about a minute.
    pub fn short(seed: u64) -> Self {
        Self {
            name: "short (private nats-server)",
            seed,
            plan: FaultPlan {
                count: 20,
                kinds: FaultKind::SINGLE_NODE.to_vec(),
                gap: (Duration::from_millis(200), Duration::from_millis(900)),
                hold: (Duration::from_millis(100), Duration::from_millis(1200)),
                budget: Duration::from_secs(100),
            },
            min_faults: 20,
            intake_clients: 3,
            crews: 3,
            citizens: 3,
            settle: Duration::from_secs(15),
            catch_up: Duration::from_secs(60),
            cluster: None,
        }
    }

    /// `make chaos`: more faults, longer ones, more load.
    pub fn long(seed: u64) -> Self {
        Self {
            name: "long (private nats-server)",
            seed,
            plan: FaultPlan {
                count: 60,
                kinds: FaultKind::SINGLE_NODE.to_vec(),
                gap: (Duration::from_millis(500), Duration::from_secs(3)),
                hold: (Duration::from_millis(200), Duration::from_secs(4)),
                budget: Duration::from_secs(420),
            },
            min_faults: 20,
            intake_clients: 6,
            crews: 6,
            citizens: 6,
            settle: Duration::from_secs(30),
            catch_up: Duration::from_secs(120),
            cluster: None,
        }
    }

    /// `make test`'s cluster pass: each node of the 3-node cluster killed once, under
    /// the same workload and checker, in about a minute.
    pub fn cluster_short(seed: u64, cluster: Cluster) -> Self {
        Self {
            name: "short cluster (3 nodes, R3 streams)",
            seed,
            plan: FaultPlan {
                count: 3,
                kinds: vec![FaultKind::KillClusterNode],
                gap: (Duration::from_secs(1), Duration::from_secs(3)),
                hold: (Duration::from_secs(1), Duration::from_secs(3)),
                budget: Duration::from_secs(90),
            },
            min_faults: 3,
            intake_clients: 3,
            crews: 3,
            citizens: 3,
            settle: Duration::from_secs(15),
            catch_up: Duration::from_secs(60),
            cluster: Some(cluster),
        }
    }

    /// `make chaos` against the 3-node cluster: each node killed in turn, twice.
    pub fn cluster(seed: u64, cluster: Cluster) -> Self {
        Self {
            name: "cluster (3 nodes, R3 streams)",
            seed,
            plan: FaultPlan {
                count: 6,
                kinds: vec![FaultKind::KillClusterNode],
                gap: (Duration::from_secs(2), Duration::from_secs(5)),
                hold: (Duration::from_secs(1), Duration::from_secs(5)),
                budget: Duration::from_secs(300),
            },
            min_faults: 6,
            intake_clients: 4,
            crews: 4,
            citizens: 4,
            settle: Duration::from_secs(30),
            catch_up: Duration::from_secs(120),
            cluster: Some(cluster),
        }
    }
}

/// `PRECINCT_CHAOS_SEED`, else one from the clock (printed, so a run can be repeated
/// as far as timing allows).
pub fn seed_from_env() -> u64 {
    std::env::var("PRECINCT_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// What one campaign did and found.
#[derive(Debug)]
pub struct Summary {
    pub name: &'static str,
    pub seed: u64,
    pub min_faults: usize,
    pub faults: FaultLog,
    pub verdict: Verdict,
    pub wall: Duration,
    /// Commands acknowledged while a fault was in force (writes went on).
    pub acknowledged_during_faults: usize,
    /// The patrol fixes, the watchers' live streams and the roster.
    pub live: live::LiveVerdict,
    /// The campaign's directory (process logs, PostgreSQL log), kept when it failed.
    pub dir: PathBuf,
}

impl Summary {
    pub fn fault_count(&self) -> usize {
        self.faults.records.len()
    }

    pub fn passed(&self) -> bool {
        self.verdict.passed() && self.fault_count() >= self.min_faults
    }

    /// The per-kind table, outcome counts and findings.
    pub fn report(&self) -> String {
        use std::fmt::Write;
        let v = &self.verdict;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "== chaos campaign {}: seed {}, {} faults, {:.1} s",
            self.name,
            self.seed,
            self.fault_count(),
            self.wall.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "   {:<28} {:>5}  {:>12}",
            "fault", "count", "slowest heal"
        );
        for (kind, (n, slowest)) in self.faults.by_kind() {
            let _ = writeln!(
                s,
                "   {:<28} {:>5}  {:>10.2} s",
                kind.label(),
                n,
                slowest.as_secs_f64()
            );
        }
        let _ = writeln!(
            s,
            "   outcomes: acknowledged {}, refused {}, unknown {} (in the log {}, absent {})",
            v.acknowledged, v.refused, v.unknown, v.unknown_present, v.unknown_absent
        );
        let answers: Vec<String> = v
            .indefinite
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect();
        let _ = writeln!(
            s,
            "   indefinite answers retried: {}",
            if answers.is_empty() {
                "none".into()
            } else {
                answers.join(", ")
            }
        );
        let _ = writeln!(
            s,
            "   acknowledged while a fault was in force: {}",
            self.acknowledged_during_faults
        );
        let _ = writeln!(
            s,
            "   log: {} events, head {}; appends no client made (the server's own): {}",
            v.log_events, v.head, v.unaccounted_appends
        );
        let _ = writeln!(
            s,
            "   read models against the reference fold of the log: {} difference(s)",
            v.read_model_mismatches
        );
        let kinds: Vec<String> = v
            .acknowledged_by_kind
            .iter()
            .map(|(k, n)| format!("{k:?} {n}"))
            .collect();
        let _ = writeln!(s, "   acknowledged by kind: {}", kinds.join(", "));
        let _ = writeln!(
            s,
            "   lifecycle commands acknowledged: {}; SLA records by two racing workers: {} warnings, {} breaches, {} escalations ({} late accepts overtaken by one)",
            v.lifecycle_acknowledged, v.sla_warnings, v.sla_breaches, v.sla_escalations, v.accepts_overtaken
        );
        let l = &self.live;
        let _ = writeln!(
            s,
            "   patrol fixes: acknowledged {}, refused {}, unknown {}; lost by the stream to a later kill -9 of nats-server (ADR 0005): {}, answered at most {:.2} s before it",
            l.acknowledged, l.refused, l.unknown, l.lost_to_nats_kill, l.lost_longest_before_kill.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "   live streams (dispatcher, supervisor): {} reconnections, {} frames received again after one",
            l.reconnects, l.redelivered
        );
        let takeovers: Vec<String> = self
            .faults
            .takeovers
            .iter()
            .map(|d| format!("{:.2} s", d.as_secs_f64()))
            .collect();
        let _ = writeln!(
            s,
            "   projector takeovers by the standby after the leader's kill -9: {}",
            if takeovers.is_empty() {
                "none".into()
            } else {
                takeovers.join(", ")
            }
        );
        for e in &self.faults.unplanned_exits {
            let _ = writeln!(s, "   FINDING: {e}");
        }
        if v.violations.is_empty() {
            let _ = writeln!(
                s,
                "   checker: no violations (read models = reference fold = rebuild, checkpoints = head)"
            );
        } else {
            let _ = writeln!(s, "   checker: {} violations:", v.violations.len());
            for line in v.violations.iter().take(40) {
                let _ = writeln!(s, "     - {line}");
            }
        }
        if self.fault_count() < self.min_faults {
            let _ = writeln!(
                s,
                "   FAIL: {} faults, fewer than {}",
                self.fault_count(),
                self.min_faults
            );
        }
        if !self.passed() {
            let _ = writeln!(s, "   logs kept in {}", self.dir.display());
        }
        s
    }
}

/// The campaign's last line: the counts, every checker violation (read-model
/// mismatches, torn or orphan appends, refused commands with effects — lost and
/// duplicated ones included), and the result the exit status follows.
pub fn last_line(
    faults: usize,
    acknowledged: usize,
    lost: usize,
    duplicated: usize,
    read_model_mismatches: usize,
    violations: usize,
    passed: bool,
) -> String {
    format!(
        "faults: {faults}, acknowledged: {acknowledged}, lost: {lost}, duplicated: {duplicated}, read-model mismatches: {read_model_mismatches}, violations: {violations}, result: {}",
        if passed { "PASS" } else { "FAIL" }
    )
}

/// Runs one campaign. Errors are for a campaign that could not run (a process would
/// not start); what the faults did is in the [`Summary`].
pub async fn run(settings: &Settings) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let prefix = crate::unique_prefix();
    let dir = std::env::temp_dir().join(format!("precinct-chaos-{prefix}"));
    std::fs::create_dir_all(&dir)?;
    eprintln!(
        "chaos: {} with seed {} (logs in {})",
        settings.name,
        settings.seed,
        dir.display()
    );
    let result = campaign(settings, &prefix, &dir, started).await;
    match &result {
        Ok(s) if s.passed() && std::env::var_os("PRECINCT_CHAOS_KEEP").is_none() => {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(_) => {}
        Err(e) => eprintln!("chaos: campaign failed: {e:#} (logs in {})", dir.display()),
    }
    result
}

async fn campaign(
    settings: &Settings,
    prefix: &str,
    dir: &std::path::Path,
    started: Instant,
) -> anyhow::Result<Summary> {
    let pg =
        tokio::task::block_in_place(|| pg::PrivatePg::start(dir)).context("private PostgreSQL")?;
    pg.sql("CREATE DATABASE rebuild")?;
    let (nats, nats_url, replicas) = match &settings.cluster {
        Some(c) => (
            Nats::Cluster {
                script: c.script.clone(),
            },
            c.url.clone(),
            3,
        ),
        None => {
            let n = tokio::task::block_in_place(crate::nats::PrivateNats::start)
                .context("private nats-server")?;
            let url = n.url();
            (Nats::Private(n), url, 1)
        }
    };
    let master_key = format!(
        "chaos1:{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let (live_url, rebuild_url) = (pg.url("postgres"), pg.url("rebuild"));
    let env = |database_url: &str| -> Vec<(String, String)> {
        [
            ("NATS_URL", nats_url.clone()),
            ("DATABASE_URL", database_url.to_string()),
            ("PRECINCT_STREAM_PREFIX", prefix.to_string()),
            ("PRECINCT_NATS_REPLICAS", replicas.to_string()),
            (
                "PRECINCT_JWT_SECRET",
                format!("chaos-secret-{prefix}-0123456789abcdef"),
            ),
            ("PRECINCT_MASTER_KEY", master_key.clone()),
            ("PRECINCT_TOKEN_TTL_SECS", "3600".into()),
            ("PRECINCT_ANON_REPORTS_PER_MINUTE", "1000000".into()),
            // The workload is a few accounts sending hundreds of commands each.
            ("PRECINCT_CITIZEN_COMMAND_BURST", "1000000".into()),
            ("PRECINCT_CITIZEN_COMMANDS_PER_MINUTE", "100000000".into()),
            ("PRECINCT_STAFF_COMMAND_BURST", "1000000".into()),
            ("PRECINCT_STAFF_COMMANDS_PER_MINUTE", "100000000".into()),
            // Short deadlines: the crews' deliberately late accepts breach them.
            (
                "PRECINCT_SLA_ACCEPT_SECS",
                workload::SLA_DEADLINE_SECS.to_string(),
            ),
            (
                "PRECINCT_SLA_RESPOND_SECS",
                workload::SLA_DEADLINE_SECS.to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    let mut api_env = env(&live_url);
    api_env.push(("PRECINCT_ADMIN_EMAIL".into(), workload::ADMIN_EMAIL.into()));
    api_env.push((
        "PRECINCT_ADMIN_PASSWORD".into(),
        workload::ADMIN_PASSWORD.into(),
    ));
    let port = crate::nats::free_port()?;
    let procs = tokio::task::block_in_place(|| -> anyhow::Result<Vec<PrecinctProc>> {
        let api = PrecinctProc::start(
            "api,sla,live",
            api_env,
            Some(port),
            dir.join("precinct-api.log"),
        )?;
        // Its operations listener (on by default without the api role, ADR 0025) on
        // any free loopback port: campaigns on one host must not contend for 9464.
        let mut projector_env = env(&live_url);
        projector_env.push(("PRECINCT_OPS_ADDR".into(), "127.0.0.1:0".into()));
        let projector = PrecinctProc::start(
            "projector",
            projector_env.clone(),
            None,
            dir.join("precinct-projector.log"),
        )?;
        // A second projector (each projection's hot standby until the first one's
        // advisory lock goes: `kill -9` of either is a takeover, ADR 0006) and a second
        // SLA worker (the two race to record each warning and breach, ADR 0035).
        let standby = PrecinctProc::start(
            "projector,sla",
            projector_env,
            None,
            dir.join("precinct-standby.log"),
        )?;
        Ok(vec![api, projector, standby])
    })?;
    let mut targets = Targets { nats, pg, procs };

    let mut log_cfg = LogConfig::isolated(prefix);
    log_cfg.replicas = replicas;
    let log = EventLog::connect(&nats_url, log_cfg)
        .await
        .context("connect to NATS")?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&live_url)
        .await?;

    let phase = Arc::new(Phase::new(started, settings.settle));
    let clients = Clients::new(port, phase.clone())?;
    let world = Arc::new(workload::setup(&clients, settings.crews, settings.citizens).await?);
    // The station's dispatcher and supervisor follow the live stream from before the
    // first fix (so that they must receive every one), through every fault.
    let end = Arc::new(AtomicU64::new(u64::MAX));
    let connected = Arc::new(AtomicUsize::new(0));
    let base = crate::world::Driver::client(&clients).base.clone();
    let station = &world.stations[0];
    let watchers: Vec<_> = [
        ("dispatcher", &station.dispatchers[0]),
        ("supervisor", &station.supervisors[0]),
    ]
    .into_iter()
    .map(|(who, s)| {
        tokio::spawn(live::watcher(
            base.clone(),
            who.to_string(),
            s.token.clone(),
            end.clone(),
            connected.clone(),
        ))
    })
    .collect();
    // Aborted if the campaign returns early (a `?`); joined below otherwise.
    let _watching = AbortOnDrop(watchers.iter().map(|w| w.abort_handle()).collect());
    live::wait_connected(&connected, watchers.len()).await?;
    let sent = Arc::new(Mutex::new(Vec::new()));
    let workload_started = Instant::now();
    let mut workers = Vec::new();
    for i in 0..settings.crews {
        workers.push(tokio::spawn(live::mover(
            clients.clone(),
            world.clone(),
            i,
            sent.clone(),
        )));
    }
    for i in 0..settings.intake_clients {
        workers.push(tokio::spawn(workload::intake(
            clients.clone(),
            world.clone(),
            i,
        )));
    }
    for i in 0..settings.crews {
        workers.push(tokio::spawn(workload::crew(
            clients.clone(),
            world.clone(),
            i,
        )));
    }

    // The faults, on their own thread (they block on processes).
    let plan = settings.plan.clone();
    let seed = settings.seed;
    let injector = std::thread::spawn(move || {
        let mut rng = StdRng::seed_from_u64(seed);
        let r = faults::run(&mut targets, &plan, &mut rng, started);
        (targets, r)
    });
    let (mut targets, faults) = tokio::task::spawn_blocking(move || injector.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the fault thread panicked"))?;
    // Commands go on after a short fault plan until an escalation could fall due.
    let ran = workload_started.elapsed();
    if ran < workload::MIN_WORKLOAD {
        tokio::time::sleep(workload::MIN_WORKLOAD - ran).await;
    }
    phase.stop();
    let mut faults = faults?;
    eprintln!("chaos: {} faults injected; healing", faults.records.len());
    faults
        .unplanned_exits
        .extend(tokio::task::block_in_place(|| targets.revive())?);

    // Clients stop retrying `settle` after the stop; give them that and a margin.
    let bound = settings.settle + Duration::from_secs(15);
    for w in workers {
        let abort = w.abort_handle();
        if tokio::time::timeout(bound, w).await.is_err() {
            abort.abort();
        }
    }
    workload::escalations(&clients, &world, false).await?;
    let mut late = Vec::new();
    // The SLA workers record the warnings and breaches of the clocks the workload left
    // running for up to a deadline after its last command: wait until the log stops
    // growing, so that the rebuild and the reference see what the read models saw.
    // The workers scan the read models, so a clock the projectors were late to show
    // (a projector killed near the end) is recorded only once they catch up: repeat
    // until a round of waiting adds nothing (at most four rounds).
    let mut quiet_head = None;
    for _ in 0..4 {
        if let Err(e) = checker::wait_quiet(&log, Duration::from_secs(60)).await {
            late.push(e);
            break;
        }
        if let Err(e) = checker::wait_caught_up(&pool, &log, settings.catch_up).await {
            late.push(e);
            break;
        }
        let head = log.head().await.ok();
        if head.is_some() && head == quiet_head {
            break;
        }
        quiet_head = head;
    }
    // The live side: every watcher must reach the positions stream's last fix, and the
    // roster must have written it, before the rebuild replays the same stream.
    let positions_head = log.positions().head().await.context("the positions head")?;
    end.store(positions_head, Ordering::SeqCst);
    if let Err(e) = live::wait_roster(&pool, positions_head, Duration::from_secs(30)).await {
        late.push(e);
    }
    let mut watched = Vec::new();
    for w in watchers {
        let abort = w.abort_handle();
        match tokio::time::timeout(Duration::from_secs(45), w).await {
            Ok(Ok(w)) => watched.push(w),
            Ok(Err(e)) => late.push(format!("live: a watcher failed: {e}")),
            Err(_) => {
                abort.abort();
                late.push("live: a watcher did not end within 45 s".into());
            }
        }
    }
    let roster = live::roster(&pool).await?;
    let nats_kills: Vec<Duration> = faults
        .records
        .iter()
        .filter(|f| f.kind == FaultKind::KillNats)
        .map(|f| f.at)
        .collect();
    let sent = sent.lock().expect("fixes").clone();
    let in_stream = live::stored_fixes(&log.positions(), &sent).await?;
    let live = live::check(&sent, &watched, &roster, &nats_kills, &in_stream);
    let rebuild_env = env(&rebuild_url);
    tokio::task::block_in_place(|| rebuild(&rebuild_env, &dir.join("rebuild.log")))?;
    let rebuilt = PgPoolOptions::new()
        .max_connections(2)
        .connect(&rebuild_url)
        .await?;

    let ops = clients.ops.lock().expect("ops").clone();
    // Read with the vault's opener: the reference fold needs the personal fields.
    let vault = precinct_vault::Vault::open(
        &log,
        &log.config().keys_bucket,
        replicas,
        precinct_vault::MasterKeys::parse(&master_key, "").context("the master key")?,
    )
    .await
    .context("open the key bucket")?;
    let log = log.with_opener(Arc::new(vault));
    let events = checker::read_log(&log).await?;
    let mut verdict = checker::check(&ops, &events, &pool, &rebuilt).await?;
    if quiet_head != Some(events.len() as u64) {
        verdict.violations.push(format!(
            "the log grew while it was checked: head {quiet_head:?} after catching up, {} events read",
            events.len()
        ));
    }
    let acknowledged_during_faults = ops
        .iter()
        .filter(|op| op.outcome == workload::Outcome::Acknowledged)
        .filter(|op| {
            faults
                .records
                .iter()
                .any(|f| op.done_at >= f.at && op.done_at <= f.at + f.held)
        })
        .count();
    verdict.violations.extend(late);
    verdict.violations.extend(live.violations.iter().cloned());
    verdict.violations.extend(
        faults
            .failed_takeovers
            .iter()
            .map(|e| format!("no takeover: {e}")),
    );
    verdict.violations.extend(
        faults
            .unplanned_exits
            .iter()
            .map(|e| format!("unplanned exit: {e}")),
    );
    pool.close().await;
    rebuilt.close().await;
    tokio::task::block_in_place(|| {
        for p in &mut targets.procs {
            p.stop();
        }
        drop(targets);
    });
    Ok(Summary {
        name: settings.name,
        seed: settings.seed,
        min_faults: settings.min_faults,
        faults,
        verdict,
        wall: started.elapsed(),
        acknowledged_during_faults,
        live,
        dir: dir.to_path_buf(),
    })
}

/// Aborts tasks when dropped.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// `precinct rebuild` into the `rebuild` database (bounded: 180 s).
fn rebuild(env: &[(String, String)], log: &std::path::Path) -> anyhow::Result<()> {
    let out = std::fs::File::create(log)?;
    let mut child = std::process::Command::new(procs::precinct_bin()?)
        .arg("rebuild")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("spawn precinct rebuild")?;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("precinct rebuild failed ({status}); see {}", log.display());
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("precinct rebuild took over 180 s; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
