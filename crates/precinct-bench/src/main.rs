//! `precinct-bench`: Precinct's benchmark suite (`make bench`).
//!
//! One run, loopback only, every phase bounded in count and in time, the whole run
//! under a hard budget (`BENCH_BUDGET_SECS`, a watchdog ends it past that):
//!
//! 1. the raw ceilings (`ceilings`): JetStream publish-and-ack (a, a′), a minimal axum
//!    handler doing one publish per request (b, b′), PostgreSQL batched upsert (c);
//! 2. a fresh database and stream prefix, `precinct serve` (release) as a child;
//! 3. the world over HTTP (`world`), then the workloads: intake with live projection
//!    lag (`intake`), the lifecycle with its verification (`lifecycle`), seeding and
//!    rebuild (`rebuild`), queries (`queries`), live locations (`locations`);
//! 4. one table on stdout, `target/bench/results.json`, clean-up.
//!
//! Settings: `config.rs` (all `BENCH_*`). See docs/performance.md.

mod ceilings;
mod config;
mod intake;
mod lifecycle;
mod load;
mod locations;
mod queries;
mod rebuild;
mod report;
mod server;
mod stats;
mod world;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use precinct_eventlog::{EventLog, LogConfig};
use report::Row;
use serde_json::json;
use stats::{Cpu, Pids};

use crate::config::Settings;
use crate::load::{Http, LoadResult};

/// Children the watchdog must not leave behind.
static SERVER_PID: AtomicU32 = AtomicU32::new(0);
static PRIVATE_NATS_PID: AtomicU32 = AtomicU32::new(0);

fn kill_children() {
    for pid in [&SERVER_PID, &PRIVATE_NATS_PID] {
        let p = pid.load(Ordering::Relaxed);
        if p != 0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &p.to_string()])
                .status();
        }
    }
}

/// Time left in the run's budget.
#[derive(Clone, Copy)]
struct Budget {
    start: Instant,
    total: Duration,
}

impl Budget {
    fn left(&self) -> Duration {
        self.total.saturating_sub(self.start.elapsed())
    }
    /// `want`, cut so that `reserve` stays for what comes after.
    fn cap(&self, want: Duration, reserve: Duration) -> Duration {
        want.min(self.left().saturating_sub(reserve))
    }
}

fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": model,
        "mem_gib": (mem_kb as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    })
}

fn git(args: &[&str]) -> String {
    std::process::Command::new("git")
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn row_from(id: &str, name: &str, unit: &str, r: &LoadResult, cpu: stats::CpuShares) -> Row {
    let mut row = Row::new(id, name);
    row.throughput = Some(r.throughput());
    row.unit = unit.into();
    row.latency = Some(r.latencies.clone().summary());
    row.cpu = cpu;
    row.errors = r.error_count();
    if !r.errors.is_empty() {
        row.note = format!("errors: {:?}", r.errors);
    }
    row
}

fn ratio(row: &mut Row, ceiling: &str, value: Option<f64>) {
    if let (Some(t), Some(c)) = (row.throughput, value) {
        if c > 0.0 {
            row.ratio = Some((ceiling.into(), t / c));
        }
    }
}

/// A seed/catch-up/rebuild phase's own time bound: `secs` for the default 300,000 events,
/// growing with the log (a 1,000,000-event run needs a larger `BENCH_BUDGET_SECS` too,
/// which still caps every phase).
fn phase_bound(secs: u64, events: u64) -> Duration {
    Duration::from_secs(secs.max(secs * events / 300_000))
}

fn append_note(row: &mut Row, note: String) {
    if row.note.is_empty() {
        row.note = note;
    } else {
        row.note = format!("{note}; {}", row.note);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let s = Settings::from_env()?;
    let budget = Budget {
        start: Instant::now(),
        total: s.budget,
    };
    {
        let total = s.budget;
        std::thread::spawn(move || {
            std::thread::sleep(total + Duration::from_secs(20));
            eprintln!(
                "bench: hard time limit ({} s) exceeded; stopping",
                total.as_secs()
            );
            kill_children();
            std::process::exit(3);
        });
    }
    // Interrupted (Ctrl-C, `timeout`, a CI cancel): no child may outlive the bench.
    tokio::spawn(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        eprintln!("bench: interrupted; stopping the server and the private nats-server");
        kill_children();
        std::process::exit(130);
    });
    std::fs::create_dir_all(&s.out_dir)?;
    let result = run(&s, budget).await;
    kill_children();
    if let Err(e) = &result {
        eprintln!("bench: failed: {e:#}");
    }
    result
}

async fn run(s: &Settings, budget: Budget) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    let tick = stats::clock_ticks();
    let mut cpu = Cpu {
        pids: Pids {
            server: None,
            nats: s.nats_pid,
        },
        tick,
        cores,
    };
    let ts = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let run_id = format!("bench{ts}");
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    let machine = machine();
    eprintln!(
        "bench {run_id}: commit {commit}{}, {} cores ({}), budget {} s",
        if dirty {
            " (+ uncommitted changes)"
        } else {
            ""
        },
        cores,
        machine["cpu_model"].as_str().unwrap_or(""),
        s.budget.as_secs()
    );
    let mut rows: Vec<Row> = Vec::new();
    let mut extra = serde_json::Map::new();
    let mut cleanup_streams: Vec<String> = Vec::new();
    let mut cleanup_dbs: Vec<String> = Vec::new();

    // ---------------------------------------------------------------- ceilings
    eprintln!("ceilings:");
    let js = ceilings::jetstream(&s.nats_url).await?;
    let scratch = format!("{}_CEILING", run_id.to_uppercase());
    let scratch_subject = format!("{run_id}.ceiling");
    cleanup_streams.push(scratch.clone());
    ceilings::scratch_stream(&js, &scratch, &scratch_subject).await?;
    let c0 = cpu.snap();
    let a = ceilings::raw_publish(&js, &scratch_subject, s.ceiling_secs, s.max_ops).await;
    let mut row = row_from(
        "a",
        "JetStream publish+ack, 256 in flight, 1 KiB (sync always)",
        "msg/s",
        &a,
        cpu.shares(&c0, &cpu.snap()),
    );
    row.note = append_err(&row.note, &a);
    let ceil_a = a.throughput();
    rows.push(row);
    eprintln!("  (a) {:.0} msg/s", ceil_a);

    let c0 = cpu.snap();
    let b = ceilings::axum_publish(
        js.clone(),
        &scratch_subject,
        s.intake_connections,
        s.ceiling_secs,
        s.max_ops,
    )
    .await?;
    let ceil_b = b.throughput();
    rows.push(row_from(
        "b",
        &format!(
            "axum handler → 1 publish+ack ({} conns, sync always)",
            s.intake_connections
        ),
        "req/s",
        &b,
        cpu.shares(&c0, &cpu.snap()),
    ));
    eprintln!("  (b) {:.0} req/s", ceil_b);

    let mut ceil_b_nofsync = None;
    if let Some(bin) = &s.nats_bin {
        let dir = s.out_dir.join(format!("nats-nofsync-{run_id}"));
        match ceilings::PrivateNats::start(bin, dir).await {
            Ok(private) => {
                PRIVATE_NATS_PID.store(private.pid.unwrap_or(0), Ordering::Relaxed);
                let pjs = ceilings::jetstream(&private.url).await?;
                ceilings::scratch_stream(&pjs, "CEILING", "ceiling").await?;
                let saved = cpu.pids.nats;
                cpu.pids.nats = private.pid;
                let c0 = cpu.snap();
                let a2 = ceilings::raw_publish(&pjs, "ceiling", s.ceiling_secs, s.max_ops).await;
                rows.push(row_from(
                    "a′",
                    "JetStream publish+ack, 256 in flight, 1 KiB (no fsync)",
                    "msg/s",
                    &a2,
                    cpu.shares(&c0, &cpu.snap()),
                ));
                eprintln!("  (a′) {:.0} msg/s", a2.throughput());
                let c0 = cpu.snap();
                let b2 = ceilings::axum_publish(
                    pjs.clone(),
                    "ceiling",
                    s.intake_connections,
                    s.ceiling_secs,
                    s.max_ops,
                )
                .await?;
                ceil_b_nofsync = Some(b2.throughput());
                rows.push(row_from(
                    "b′",
                    &format!(
                        "axum handler → 1 publish+ack ({} conns, no fsync)",
                        s.intake_connections
                    ),
                    "req/s",
                    &b2,
                    cpu.shares(&c0, &cpu.snap()),
                ));
                eprintln!("  (b′) {:.0} req/s", b2.throughput());
                cpu.pids.nats = saved;
                private.stop().await;
                PRIVATE_NATS_PID.store(0, Ordering::Relaxed);
            }
            Err(e) => eprintln!("  (a′/b′) skipped: {e:#}"),
        }
    } else {
        eprintln!("  (a′/b′) skipped: BENCH_NATS_BIN not set");
    }
    // The intake/lifecycle targets are relative to the no-fsync ceiling; without it,
    // the sync-always one stands in (and says so).
    let (b_ref_id, b_ref) = match ceil_b_nofsync {
        Some(v) => ("b′", v),
        None => ("b", ceil_b),
    };

    let db_name = format!("bench_{ts}");
    let db_url = server::create_database(&s.database_url, &db_name).await?;
    cleanup_dbs.push(db_name.clone());
    let raw_pool = server::pool(&db_url, 2).await?;
    let c0 = cpu.snap();
    let c = ceilings::pg_upsert(&raw_pool, s.ceiling_secs, s.max_ops).await?;
    raw_pool.close().await;
    let ceil_c = c.throughput();
    let mut row = row_from(
        "c",
        "PostgreSQL UNNEST upsert, 500 rows/tx + checkpoint (1 conn)",
        "rows/s",
        &c,
        cpu.shares(&c0, &cpu.snap()),
    );
    row.note = "latency is per 500-row transaction".into();
    rows.push(row);
    eprintln!("  (c) {:.0} rows/s", ceil_c);

    // ---------------------------------------------------------------- server
    let master_key = format!("bench:{}", hex::encode(rand::random::<[u8; 32]>()));
    let admin_email = format!("admin-{run_id}@bench.precinct.test");
    let admin_password = format!("bench-{}", hex::encode(rand::random::<[u8; 9]>()));
    let mut env = vec![
        ("NATS_URL".to_string(), s.nats_url.clone()),
        ("DATABASE_URL".to_string(), db_url.clone()),
        (
            "PRECINCT_JWT_SECRET".to_string(),
            hex::encode(rand::random::<[u8; 32]>()),
        ),
        ("PRECINCT_MASTER_KEY".to_string(), master_key.clone()),
        ("PRECINCT_STREAM_PREFIX".to_string(), run_id.clone()),
        ("PRECINCT_ADMIN_EMAIL".to_string(), admin_email.clone()),
        (
            "PRECINCT_ADMIN_PASSWORD".to_string(),
            admin_password.clone(),
        ),
        ("PRECINCT_TOKEN_TTL_SECS".to_string(), "3600".to_string()),
        // The load generator is a few accounts at machine speed: no per-account budget.
        (
            "PRECINCT_CITIZEN_COMMAND_BURST".to_string(),
            "1000000000".to_string(),
        ),
        (
            "PRECINCT_CITIZEN_COMMANDS_PER_MINUTE".to_string(),
            "1000000000".to_string(),
        ),
        (
            "PRECINCT_STAFF_COMMAND_BURST".to_string(),
            "1000000000".to_string(),
        ),
        (
            "PRECINCT_STAFF_COMMANDS_PER_MINUTE".to_string(),
            "1000000000".to_string(),
        ),
        // Every simulated citizen registers from 127.0.0.1: the per-address quota of
        // self-registrations would stop the world's setup.
        (
            "PRECINCT_REGISTRATIONS_PER_HOUR".to_string(),
            "1000000".to_string(),
        ),
    ];
    for passthrough in ["RUST_LOG", "PRECINCT_LOG_FORMAT"] {
        if let Ok(v) = std::env::var(passthrough) {
            env.push((passthrough.to_string(), v));
        }
    }
    let log_cfg = LogConfig::isolated(&run_id);
    cleanup_streams.extend([
        log_cfg.stream.clone(),
        log_cfg.requests_stream.clone(),
        log_cfg.positions_stream.clone(),
        format!("KV_{}", log_cfg.keys_bucket),
    ]);
    let port = server::free_port()?;
    let server_log = s.out_dir.join("server.log");
    eprintln!(
        "server: {} serve on 127.0.0.1:{port} (log {})",
        s.precinct_bin.display(),
        server_log.display()
    );
    let mut srv = server::Server::start(&s.precinct_bin, &env, port, server_log).await?;
    SERVER_PID.store(srv.pid, Ordering::Relaxed);
    cpu.pids.server = Some(srv.pid);

    let outcome = workloads(
        s,
        budget,
        &mut cpu,
        &srv.base,
        &db_url,
        &admin_email,
        &admin_password,
        &run_id,
        &master_key,
        b_ref_id,
        b_ref,
        ceil_c,
        &mut rows,
        &mut extra,
        &mut cleanup_dbs,
    )
    .await;
    if let Err(e) = &outcome {
        eprintln!("bench: a workload failed: {e:#}");
        extra.insert("failure".into(), json!(format!("{e:#}")));
    }
    srv.kill().await;
    SERVER_PID.store(0, Ordering::Relaxed);

    // ---------------------------------------------------------------- results
    let table = report::table(&rows);
    let notes = report::notes(&rows);
    println!();
    println!(
        "Precinct benchmark {run_id} — commit {commit}{} — {} × {} — {} GiB RAM — {:.0} s",
        if dirty { "+dirty" } else { "" },
        machine["nproc"],
        machine["cpu_model"].as_str().unwrap_or(""),
        machine["mem_gib"],
        budget.start.elapsed().as_secs_f64()
    );
    println!();
    print!("{table}");
    println!();
    print!("{notes}");
    let results = json!({
        "run": run_id,
        "commit": commit,
        "dirty": dirty,
        "at": chrono::Utc::now(),
        "machine": machine,
        "elapsed_secs": budget.start.elapsed().as_secs_f64(),
        "settings": format!("{s:?}"),
        "rows": rows,
        "details": extra,
        "table_markdown": table,
    });
    let path = s.out_dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
    println!("\nresults: {}", path.display());

    if !s.keep {
        server::delete_streams(&s.nats_url, &cleanup_streams).await;
        for db in &cleanup_dbs {
            server::drop_database(&s.database_url, db).await;
        }
    } else {
        eprintln!("BENCH_KEEP: kept databases {cleanup_dbs:?} and streams {cleanup_streams:?}");
    }
    outcome
}

/// `perf record` of `pid` for `secs` into `<out>/perf-<label>.data`, if asked for.
fn perf(
    s: &Settings,
    label: &str,
    pid: Option<u32>,
    secs: Duration,
) -> Option<std::process::Child> {
    let pid = pid?;
    if !s.perf {
        return None;
    }
    let out = s.out_dir.join(format!("perf-{label}.data"));
    std::process::Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-F", "499", "-g", "-o"])
        .arg(&out)
        .args([
            "-p",
            &pid.to_string(),
            "--",
            "sleep",
            &format!("{}", secs.as_secs().max(1)),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| eprintln!("  perf: {e}"))
        .ok()
}

fn perf_done(child: Option<std::process::Child>) {
    if let Some(mut c) = child {
        let _ = c.wait();
    }
}

fn append_err(note: &str, r: &LoadResult) -> String {
    if r.errors.is_empty() {
        note.to_string()
    } else {
        format!("{note} errors {:?}", r.errors)
    }
}

#[allow(clippy::too_many_arguments)]
async fn workloads(
    s: &Settings,
    budget: Budget,
    cpu: &mut Cpu,
    base: &str,
    db_url: &str,
    admin_email: &str,
    admin_password: &str,
    run_id: &str,
    master_key: &str,
    b_ref_id: &str,
    b_ref: f64,
    ceil_c: f64,
    rows: &mut Vec<Row>,
    extra: &mut serde_json::Map<String, serde_json::Value>,
    cleanup_dbs: &mut Vec<String>,
) -> anyhow::Result<()> {
    let http = Http::new(base.to_string());
    let t = Instant::now();
    eprintln!("world:");
    let world =
        Arc::new(world::World::create(&http, s, admin_email, admin_password, run_id).await?);
    extra.insert("world_setup_secs".into(), json!(t.elapsed().as_secs_f64()));

    // The server's log as stored (sealed personal data), and a pool on its database.
    let raw_log = EventLog::connect(&s.nats_url, LogConfig::isolated(run_id))
        .await
        .context("connect to the server's log")?;
    let pool = server::pool(db_url, 4).await?;

    // ------------------------------------------------------------ 1 + 3 (lag)
    eprintln!(
        "workload 1: intake ({} connections, {} s) with projection lag",
        s.intake_connections,
        s.workload_secs.as_secs()
    );
    let profile = perf(s, "intake", cpu.pids.server, s.workload_secs);
    let c0 = cpu.snap();
    let w1 = intake::run(
        &http,
        &world,
        &raw_log,
        db_url,
        s.intake_connections,
        s.workload_secs,
        s.max_ops,
        s.lag_sample_every,
    )
    .await?;
    let shares = cpu.shares(&c0, &cpu.snap());
    perf_done(profile);
    let mut row = row_from(
        "1",
        &format!("intake POST /crimes ({} conns)", s.intake_connections),
        "req/s",
        &w1.load,
        shares,
    );
    ratio(&mut row, b_ref_id, Some(b_ref));
    row.target = format!("≥ 0.5× {b_ref_id}, p99 < 50 ms");
    row.pass = Some(
        row.ratio.as_ref().is_some_and(|(_, x)| *x >= 0.5)
            && row.latency.is_some_and(|l| l.p99_ms < 50.0),
    );
    rows.push(row);
    eprintln!("  {:.0} req/s", w1.load.throughput());
    let mut row = Row::new("3", "projection lag under intake (append → visible)");
    row.latency = Some(w1.lag);
    row.cpu = shares;
    row.target = "p99 < 100 ms".into();
    row.pass = Some(w1.lag.p99_ms < 100.0);
    row.note = format!(
        "{} sampled reports, {} never seen; ack → visible p50 {:.1} / p99 {:.1} ms",
        w1.lag_samples, w1.lag_unseen, w1.ack_to_visible.p50_ms, w1.ack_to_visible.p99_ms
    );
    row.errors = w1.lag_unseen as u64;
    rows.push(row);

    // ------------------------------------------------------------ 2
    let mut pool_ids: Vec<String> = w1.reports.iter().map(|(id, _)| id.clone()).collect();
    let need = (s.lifecycle_patrols * 200).min(s.max_ops as usize);
    if pool_ids.len() < need / 4 {
        // Intake made too few: submit more first (not measured).
        let more = (need / 4).saturating_sub(pool_ids.len()).min(5_000);
        eprintln!("  lifecycle: submitting {more} more reports first");
        let extra_ids =
            futures::StreamExt::collect::<Vec<_>>(futures::StreamExt::buffer_unordered(
                futures::stream::iter((0..more).map(|n| {
                    let (http, token) = (
                        http.clone(),
                        world.citizens[n % world.citizens.len()].token.clone(),
                    );
                    async move {
                        http.post(
                            "/crimes",
                            Some(&token),
                            &world::report_body(n as u64, world::LAT, world::LON),
                        )
                        .await
                        .ok()
                        .and_then(|r| r.body["id"].as_str().map(|s| s.to_string()))
                    }
                })),
                32,
            ))
            .await;
        pool_ids.extend(extra_ids.into_iter().flatten());
    }
    // Oldest last: the VUs pop from the end, driving the newest reports first.
    eprintln!(
        "workload 2: lifecycle ({} patrols / VUs, {} s)",
        world.lifecycle.len(),
        s.workload_secs.as_secs()
    );
    let profile = perf(s, "lifecycle", cpu.pids.server, s.workload_secs);
    let c0 = cpu.snap();
    let w2 = lifecycle::run(&http, &world, pool_ids, s.workload_secs, s.max_ops).await?;
    let shares = cpu.shares(&c0, &cpu.snap());
    perf_done(profile);
    let mut row = row_from(
        "2",
        &format!(
            "lifecycle: dispatch→accept→respond→resolve→approve ({} VUs)",
            world.lifecycle.len()
        ),
        "cmd/s",
        &w2.load,
        shares,
    );
    ratio(&mut row, b_ref_id, Some(b_ref));
    let v = &w2.verification;
    row.target = format!("≥ 0.3× {b_ref_id}; 0 lost / doubled");
    row.pass = Some(
        row.ratio.as_ref().is_some_and(|(_, x)| *x >= 0.3)
            && v.lost == 0
            && v.doubled == 0
            && v.patrols_wrong == 0
            && v.complete,
    );
    append_note(&mut row, format!(
        "{} reports closed ({:.1}/s); verified {} reports: {} lost, {} doubled; {} patrols: {} not AVAILABLE/0 open; {} drives stopped at a failed step; per step p99 ms: {}",
        w2.reports_done,
        w2.reports_done as f64 / w2.load.elapsed.as_secs_f64().max(1e-9),
        v.reports_checked, v.lost, v.doubled, v.patrols_checked, v.patrols_wrong, v.incomplete,
        w2.per_step.iter().map(|(k, p)| format!("{k} {:.1}", p.p99_ms)).collect::<Vec<_>>().join(", ")
    ));
    rows.push(row);
    extra.insert("lifecycle_per_step".into(), json!(w2.per_step));
    extra.insert("lifecycle_verification".into(), json!(w2.verification));
    eprintln!(
        "  {:.0} cmd/s, {} reports closed",
        w2.load.throughput(),
        w2.reports_done
    );

    // ------------------------------------------------------------ 3 (seed, catch-up, rebuild)
    // Reserve for what follows: queries (~4 × query_secs + 15 s), locations (~workload +
    // paced + 15 s), results (~20 s).
    let reserve_after = s.query_secs * 4 + s.workload_secs + s.paced_secs + Duration::from_secs(60);
    let templates = rebuild::templates(
        &raw_log,
        &w1.reports
            .iter()
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>(),
        64,
    )
    .await?;
    let seed_bound = budget.cap(
        phase_bound(150, s.rebuild_events),
        reserve_after + Duration::from_secs(120),
    );
    eprintln!(
        "workload 3: seeding {} events (bound {} s)",
        s.rebuild_events,
        seed_bound.as_secs()
    );
    let c0 = cpu.snap();
    let seed_started = Instant::now();
    let mut seed = rebuild::seed(
        &raw_log,
        templates,
        s.rebuild_events,
        s.seed_batch,
        s.seed_appenders,
        seed_bound,
    )
    .await;
    let seed_shares = cpu.shares(&c0, &cpu.snap());
    let catch_bound = budget.cap(
        phase_bound(240, s.rebuild_events),
        reserve_after + Duration::from_secs(60),
    );
    let caught = rebuild::wait_caught_up(&pool, seed.head, catch_bound).await;
    let catch_shares = cpu.shares(&c0, &cpu.snap());
    if caught {
        seed.catch_up_secs = Some(seed_started.elapsed().as_secs_f64());
    }
    let mut row = Row::new(
        "3 seed",
        &format!(
            "append ReportSubmitted, {} per atomic batch, {} appenders",
            s.seed_batch, s.seed_appenders
        ),
    );
    row.throughput = Some(seed.events as f64 / seed.secs.max(1e-9));
    row.unit = "ev/s".into();
    row.cpu = seed_shares;
    row.errors = seed.errors;
    row.note = format!(
        "{} events in {:.1} s; log head {}",
        seed.events, seed.secs, seed.head
    );
    rows.push(row);
    let mut row = Row::new(
        "3 catch-up",
        "live projectors catching up with the seeded log",
    );
    let caught_events = rebuild::lowest_checkpoint(&pool).await.max(0) as f64;
    let catch_secs = seed
        .catch_up_secs
        .unwrap_or(catch_bound.as_secs_f64() + seed.secs);
    row.throughput = Some(if caught {
        seed.events as f64 / catch_secs
    } else {
        caught_events / catch_secs
    });
    row.unit = "ev/s".into();
    row.cpu = catch_shares;
    ratio(&mut row, "c", Some(ceil_c));
    row.note = if caught {
        format!(
            "all 5 event projections at head {} {:.1} s after seeding began",
            seed.head, catch_secs
        )
    } else {
        format!(
            "not caught up within the bound: lowest checkpoint {caught_events} of {}",
            seed.head
        )
    };
    rows.push(row);
    extra.insert("seed".into(), json!(seed));
    // A steady state has planner statistics (autovacuum analyzes within a minute or so of
    // a bulk change; the queries below should not run on the empty-table estimates).
    if let Err(e) = sqlx::query("ANALYZE").execute(&pool).await {
        eprintln!("  ANALYZE: {e}");
    }

    let rebuild_db = format!("bench_{}_rebuild", run_id.trim_start_matches("bench"));
    let rebuild_url = server::create_database(&s.database_url, &rebuild_db).await?;
    cleanup_dbs.push(rebuild_db.clone());
    let rebuild_pool = server::pool(&rebuild_url, 16).await?;
    precinct_projections::migrate(&rebuild_pool)
        .await
        .map_err(|e| anyhow::anyhow!("migrate: {e}"))?;
    let master = precinct_vault::MasterKeys::parse(master_key, "")
        .map_err(|e| anyhow::anyhow!("master key: {e}"))?;
    let vault = precinct_vault::Vault::open(
        raw_log.jetstream(),
        &raw_log.config().keys_bucket,
        1,
        master,
    )
    .await
    .map_err(|e| anyhow::anyhow!("vault: {e}"))?;
    let open_log = raw_log.clone().with_opener(Arc::new(vault));
    let rebuild_bound = budget.cap(phase_bound(240, s.rebuild_events), reserve_after);
    eprintln!(
        "workload 3: rebuild of every read model from {} events (bound {} s)",
        seed.head,
        rebuild_bound.as_secs()
    );
    let c0 = cpu.snap();
    let mut rb = rebuild::rebuild(&rebuild_pool, &open_log, rebuild_bound).await?;
    let shares = cpu.shares(&c0, &cpu.snap());
    rb.reports_rows_live = sqlx::query_scalar("SELECT count(*) FROM reports")
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
    rebuild_pool.close().await;
    server::drop_database(&s.database_url, &rebuild_db).await;
    let mut row = Row::new(
        "3 rebuild",
        &format!("rebuild all read models from a log of {} events", rb.events),
    );
    row.throughput = Some(rb.events as f64 / rb.secs.max(1e-9));
    row.unit = "ev/s".into();
    row.cpu = shares;
    ratio(&mut row, "c", Some(ceil_c));
    row.target = "≥ 0.5× c".into();
    row.pass = Some(rb.finished && row.ratio.as_ref().is_some_and(|(_, x)| *x >= 0.5));
    row.note = format!(
        "{:.1} s{}; rebuilt reports rows {} vs live {}; the rebuild runs in the bench process (CPU under 'bench')",
        rb.secs,
        if rb.finished { "" } else { " (time bound hit: events = lowest checkpoint reached)" },
        rb.reports_rows,
        rb.reports_rows_live
    );
    rows.push(row);
    extra.insert("rebuild".into(), json!(rb));
    eprintln!("  rebuild {:.0} ev/s", rb.events as f64 / rb.secs.max(1e-9));

    // ------------------------------------------------------------ 5
    eprintln!(
        "workload 5: queries over {} projected reports",
        rb.reports_rows_live
    );
    let (hist_id, middle) = queries::report_with_history(&http, &world, 50).await?;
    for case in queries::cases(&world, &hist_id, middle) {
        let dur = budget.cap(
            s.query_secs,
            s.workload_secs + s.paced_secs + Duration::from_secs(40),
        );
        let c0 = cpu.snap();
        let r = queries::run_case(&http, &case, s.query_connections, dur, s.max_ops).await;
        let shares = cpu.shares(&c0, &cpu.snap());
        let (id, name, limit) = match case.name {
            "queue" => ("5 queue", "GET /queues/reports (staff)".to_string(), 10.0),
            "near" => (
                "5 near",
                "GET /crimes?near=…&radius_m=500 (public)".to_string(),
                10.0,
            ),
            "workloads" => ("5 workloads", "GET /workloads (staff)".to_string(), 10.0),
            _ => (
                "5 as_of",
                "GET /crimes/{id}?as_of= (50 events)".to_string(),
                5.0,
            ),
        };
        let mut row = row_from(
            id,
            &format!("{name}, {} conns", s.query_connections),
            "req/s",
            &r,
            shares,
        );
        row.target = format!("p99 < {limit} ms");
        row.pass = Some(row.latency.is_some_and(|l| l.p99_ms < limit) && r.error_count() == 0);
        append_note(
            &mut row,
            format!("over {} projected reports", rb.reports_rows_live),
        );
        rows.push(row);
        eprintln!("  {}: {:.0} req/s", case.name, r.throughput());
    }

    // ------------------------------------------------------------ 4
    eprintln!(
        "workload 4: locations ({} patrols, {} SSE subscribers)",
        world.location_patrols.len(),
        s.sse_subscribers
    );
    if world.location_patrols.is_empty() || world.location_stations.is_empty() {
        anyhow::bail!("no location patrols");
    }
    let subs = locations::Subscribers::connect(base, &world, s.sse_subscribers).await?;
    // Let the hub register everyone before the first move.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_station = subs.per_station.clone();
    subs.set_phase(0);
    let dur = budget.cap(s.workload_secs, s.paced_secs + Duration::from_secs(20));
    let profile = perf(s, "locations", cpu.pids.server, dur);
    let c0 = cpu.snap();
    let (r_max, sent_max) = locations::max_rate(
        &http.client,
        base,
        world.clone(),
        s.location_connections,
        dur,
        s.max_ops,
    )
    .await;
    let shares_max = cpu.shares(&c0, &cpu.snap());
    perf_done(profile);
    // Frames in flight land before the phase changes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    subs.set_phase(1);
    let dur = budget.cap(s.paced_secs, Duration::from_secs(15));
    let c0 = cpu.snap();
    let (r_paced, sent_paced) =
        locations::paced(&http.client, base, world.clone(), s.paced_rate, dur).await;
    let shares_paced = cpu.shares(&c0, &cpu.snap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let outs = subs.finish().await;
    let dropped = outs.iter().filter(|o| o.ended).count();
    let mut fan: Vec<stats::Latencies> = (0..locations::PHASES)
        .map(|_| stats::Latencies::default())
        .collect();
    let mut frames = [0u64; locations::PHASES];
    for o in outs {
        for (p, l) in o.lat.into_iter().enumerate() {
            fan[p].merge(l);
            frames[p] += o.frames[p];
        }
    }
    let expected = [
        locations::expected_frames(&sent_max, &per_station),
        locations::expected_frames(&sent_paced, &per_station),
    ];
    let subs_per_station = s.sse_subscribers as f64 / world.location_stations.len() as f64;
    for (p, (r, shares, label)) in [
        (&r_max, shares_max, "max"),
        (&r_paced, shares_paced, "paced"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut row = row_from(
            &format!("4 {label}"),
            &if p == 0 {
                format!(
                    "PUT /patrols/{{id}}/location, {} patrols, {} conns",
                    world.location_patrols.len(),
                    s.location_connections
                )
            } else {
                format!("PUT location paced at {}/s", s.paced_rate)
            },
            "upd/s",
            r,
            shares,
        );
        if p == 0 {
            row.target = "≥ 20,000 upd/s".into();
            row.pass = Some(r.throughput() >= 20_000.0);
        }
        rows.push(row);
        let fan_p = std::mem::take(&mut fan[p]).summary();
        let mut row = Row::new(
            &format!("4 fan-out {label}"),
            &format!(
                "→ {} SSE subscribers ({:.0} per station), recorded_at → parsed",
                s.sse_subscribers, subs_per_station
            ),
        );
        row.throughput = Some(frames[p] as f64 / r.elapsed.as_secs_f64().max(1e-9));
        row.unit = "frames/s".into();
        row.latency = Some(fan_p);
        row.cpu = shares;
        row.target = "p99 < 50 ms".into();
        row.pass = Some(fan_p.p99_ms < 50.0 && frames[p] >= expected[p]);
        row.note = format!(
            "{} of {} expected frames delivered ({:.1}%); {} subscribers dropped/ended",
            frames[p],
            expected[p],
            100.0 * frames[p] as f64 / expected[p].max(1) as f64,
            dropped
        );
        rows.push(row);
    }
    eprintln!(
        "  max {:.0} upd/s, paced {:.0} upd/s",
        r_max.throughput(),
        r_paced.throughput()
    );
    pool.close().await;
    Ok(())
}
