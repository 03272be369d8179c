//! Settings, all from the environment (`BENCH_*`), each with a default that keeps the
//! whole run within the time budget on a 2-core machine.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

#[derive(Debug, Clone)]
pub struct Settings {
    /// The stack's NATS (sync_interval: always) and PostgreSQL (a URL whose role may
    /// CREATE DATABASE; the bench creates fresh databases next to it).
    pub nats_url: String,
    pub database_url: String,
    /// The release `precinct` binary to start.
    pub precinct_bin: PathBuf,
    /// nats-server binary for the private no-fsync server of ceiling (b′); none: skipped.
    pub nats_bin: Option<PathBuf>,
    /// Pid of the stack's nats-server (for its CPU share), if known.
    pub nats_pid: Option<u32>,
    /// Where results.json and the server log go.
    pub out_dir: PathBuf,
    /// Hard limit for the whole run; a watchdog ends the process past it.
    pub budget: Duration,
    /// Each ceiling's measuring time.
    pub ceiling_secs: Duration,
    /// Workloads 1 (intake), 2 (lifecycle) and 4 (locations, max rate).
    pub workload_secs: Duration,
    /// Most operations of any one load phase (the count bound next to the time bound).
    pub max_ops: u64,
    pub intake_connections: usize,
    /// The overload phase offers this multiple of the intake phase's rate, open loop.
    pub overload_factor: f64,
    pub citizens: usize,
    /// One report in this many intake requests is followed to its projection (lag).
    pub lag_sample_every: u64,
    pub lifecycle_patrols: usize,
    /// Events appended for the rebuild (and projected for the queries).
    pub rebuild_events: u64,
    /// Concurrent seeding appenders, and events per atomic batch.
    pub seed_appenders: usize,
    pub seed_batch: usize,
    /// The seeded reports' submission times are spread evenly (by a hash of their
    /// number) over this many days before now, so that a 30-day analytics range holds
    /// 30/N of them (`BENCH_SEED_DAYS`; 0: all at the moment they are appended).
    pub seed_days: u32,
    pub query_secs: Duration,
    pub query_connections: usize,
    pub location_stations: usize,
    pub location_patrols: usize,
    /// Patrols per officer account in the locations workload (1: one officer each).
    pub patrols_per_officer: usize,
    pub location_connections: usize,
    /// Fixes per `POST /patrols/{id}/locations` in the batched max-rate phase of
    /// workload 4 (1: that phase is left out).
    pub fixes_per_request: usize,
    pub sse_subscribers: usize,
    /// The paced phase of workload 4: updates/s (each patrol about once a second).
    pub paced_rate: u64,
    pub paced_secs: Duration,
    /// The webhook workload: subscriptions to every report event (0: left out), each
    /// half's intake duration, and how long the deliveries may take to drain after it.
    pub webhooks: usize,
    /// The paced half's intake rate (reports/s, open loop); the other half is closed
    /// loop like workload 1.
    pub webhook_rate: f64,
    pub webhook_secs: Duration,
    pub webhook_drain_secs: Duration,
    /// The workloads to run after intake (`BENCH_PHASES`, comma-separated: overload,
    /// lifecycle, webhooks, rebuild — seed and rebuild —, queries, export, locations;
    /// default all). Queries and export need the rebuild's seeded log.
    pub phases: Vec<String>,
    /// Keep the databases and streams afterwards (default: dropped).
    pub keep: bool,
    /// Split roles: `precinct serve --roles api` and a second process with
    /// `--roles projector,sla,live` (default: one process with every role).
    pub split: bool,
    /// Record `perf record -e cpu-clock -g` of the server during workloads 1, 2 and 4
    /// into `<out>/perf-<workload>.data` (needs `perf`; off by default).
    pub perf: bool,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn num<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("{name}={v}: {e}")),
        None => Ok(default),
    }
}

fn secs(name: &str, default: u64) -> anyhow::Result<Duration> {
    Ok(Duration::from_secs_f64(num::<f64>(name, default as f64)?))
}

/// The workloads `BENCH_PHASES` may name, in the order they run (intake always runs).
pub const PHASES: [&str; 7] = [
    "overload",
    "lifecycle",
    "webhooks",
    "rebuild",
    "queries",
    "export",
    "locations",
];

impl Settings {
    /// Whether workload `phase` runs.
    pub fn runs(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let precinct_bin = var("PRECINCT_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/release/precinct"));
        let nats_pid = var("BENCH_NATS_PID")
            .and_then(|p| p.trim().parse().ok())
            .or_else(|| {
                std::fs::read_to_string(".data/nats/nats.pid")
                    .ok()
                    .and_then(|p| p.trim().parse().ok())
            });
        Ok(Self {
            nats_url: var("NATS_URL").context("NATS_URL is not set (source .data/env)")?,
            database_url: var("DATABASE_URL")
                .context("DATABASE_URL is not set (source .data/env)")?,
            precinct_bin,
            nats_bin: var("BENCH_NATS_BIN").map(PathBuf::from),
            nats_pid,
            out_dir: var("BENCH_OUT")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("target/bench")),
            budget: secs("BENCH_BUDGET_SECS", 660)?,
            ceiling_secs: secs("BENCH_CEILING_SECS", 8)?,
            workload_secs: secs("BENCH_SECS", 20)?,
            max_ops: num("BENCH_MAX_OPS", 2_000_000)?,
            intake_connections: num("BENCH_INTAKE_CONNECTIONS", 64)?,
            overload_factor: num("BENCH_OVERLOAD_FACTOR", 2.0)?,
            citizens: num("BENCH_CITIZENS", 64)?,
            lag_sample_every: num("BENCH_LAG_SAMPLE_EVERY", 10)?,
            lifecycle_patrols: num("BENCH_LIFECYCLE_PATROLS", 200)?,
            rebuild_events: num("BENCH_REBUILD_EVENTS", 300_000)?,
            seed_appenders: num("BENCH_SEED_APPENDERS", 8)?,
            seed_batch: num("BENCH_SEED_BATCH", 100)?,
            seed_days: num("BENCH_SEED_DAYS", 365)?,
            query_secs: secs("BENCH_QUERY_SECS", 6)?,
            query_connections: num("BENCH_QUERY_CONNECTIONS", 8)?,
            location_stations: num("BENCH_LOCATION_STATIONS", 10)?,
            location_patrols: num("BENCH_LOCATION_PATROLS", 1000)?,
            patrols_per_officer: num("BENCH_PATROLS_PER_OFFICER", 1)?,
            location_connections: num("BENCH_LOCATION_CONNECTIONS", 64)?,
            fixes_per_request: num("BENCH_FIXES_PER_REQUEST", 5)?,
            sse_subscribers: num("BENCH_SSE_SUBSCRIBERS", 100)?,
            paced_rate: num("BENCH_PACED_RATE", 1000)?,
            paced_secs: secs("BENCH_PACED_SECS", 10)?,
            webhooks: num("BENCH_WEBHOOKS", 10)?,
            webhook_rate: num("BENCH_WEBHOOK_RATE", 100.0)?,
            webhook_secs: secs("BENCH_WEBHOOK_SECS", 10)?,
            webhook_drain_secs: secs("BENCH_WEBHOOK_DRAIN_SECS", 60)?,
            phases: match var("BENCH_PHASES") {
                None => PHASES.iter().map(|p| p.to_string()).collect(),
                Some(v) => {
                    let phases: Vec<String> = v.split(',').map(|p| p.trim().to_owned()).collect();
                    if let Some(p) = phases.iter().find(|p| !PHASES.contains(&p.as_str())) {
                        anyhow::bail!("BENCH_PHASES: unknown phase {p:?} (known: {PHASES:?})");
                    }
                    phases
                }
            },
            keep: var("BENCH_KEEP").is_some_and(|v| v != "0"),
            split: var("BENCH_SPLIT").is_some_and(|v| v != "0"),
            perf: var("BENCH_PERF").is_some_and(|v| v != "0"),
        })
    }
}
