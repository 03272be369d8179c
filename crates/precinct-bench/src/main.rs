//! `precinct-bench`: Precinct's benchmark suite (`make bench`).
//!
//! One run, loopback only, every phase bounded in count and in time, the whole run
//! under a hard budget (`BENCH_BUDGET_SECS`, a watchdog ends it past that):
//!
//! 1. the raw ceilings (`ceilings`): JetStream publish-and-ack (a, a′), a minimal axum
//!    handler doing one publish per request (b, b′), PostgreSQL batched upsert (c);
//! 2. a fresh database and stream prefix, `precinct serve` (release) as a child;
//! 3. the world over HTTP (`world`), then the workloads, one function each over one run
//!    context (`phases`): intake with live projection lag (`intake`), the lifecycle with
//!    its verification (`lifecycle`), overload (`overload`: open loop at twice the
//!    intake rate), seeding and rebuild (`rebuild`), queries (`queries`), live
//!    locations (`locations`);
//! 4. one table on stdout, the self-checks, `target/bench/results.json`, clean-up.
//!
//! Every workload checks its own results (lost or doubled effects, rebuilt = live,
//! frames delivered, `near` = brute force, …); the process exits non-zero when any
//! self-check fails, whatever the performance figures say.
//!
//! Settings: `config.rs` (all `BENCH_*`). See docs/performance.md.

mod ceilings;
mod config;
mod intake;
mod lifecycle;
mod load;
mod locations;
mod overload;
mod phases;
mod queries;
mod rebuild;
mod report;
mod server;
mod stats;
mod webhooks;
mod world;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use phases::{Output, Target};
use precinct_eventlog::LogConfig;
use serde_json::json;
use stats::{Cpu, Pids};

use crate::config::Settings;

/// Children the watchdog must not leave behind.
static SERVER_PID: AtomicU32 = AtomicU32::new(0);
static SERVER2_PID: AtomicU32 = AtomicU32::new(0);
static PRIVATE_NATS_PID: AtomicU32 = AtomicU32::new(0);

fn kill_children() {
    for pid in [&SERVER_PID, &SERVER2_PID, &PRIVATE_NATS_PID] {
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
            server2: None,
            nats: s.nats_pid,
        },
        tick,
        cores,
        pg: None,
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
    let mut out = Output::default();
    let (refs, db_url) = phases::ceilings(s, &mut cpu, &run_id, &ts, &mut out).await?;

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
        // …nor a per-account budget of log reads: the lifecycle's verification reads the
        // history of every report it drove as the desk, and workload 5 reads `as_of`
        // at machine speed.
        (
            "PRECINCT_CITIZEN_LOG_READ_BURST".to_string(),
            "1000000000".to_string(),
        ),
        (
            "PRECINCT_CITIZEN_LOG_READS_PER_MINUTE".to_string(),
            "1000000000".to_string(),
        ),
        (
            "PRECINCT_STAFF_LOG_READ_BURST".to_string(),
            "1000000000".to_string(),
        ),
        (
            "PRECINCT_STAFF_LOG_READS_PER_MINUTE".to_string(),
            "1000000000".to_string(),
        ),
        // The fan-out's subscribers share one dispatcher per location station.
        (
            "PRECINCT_LIVE_MAX_STREAMS_PER_ACCOUNT".to_string(),
            "100000".to_string(),
        ),
        // Every simulated citizen registers from 127.0.0.1: the per-address quota of
        // self-registrations would stop the world's setup.
        (
            "PRECINCT_REGISTRATIONS_PER_HOUR".to_string(),
            "1000000".to_string(),
        ),
        // …and so would its logins, and the setup's concurrent registrations and logins
        // (16 in flight) the address's share of password work.
        (
            "PRECINCT_LOGINS_PER_ADDRESS".to_string(),
            "1000000".to_string(),
        ),
        (
            "PRECINCT_PASSWORD_JOBS_PER_ADDRESS".to_string(),
            "1000000".to_string(),
        ),
    ];
    // The webhook workload's receiver is this process, on loopback over plain HTTP.
    env.push(("PRECINCT_WEBHOOK_ALLOW_HTTP".to_string(), "1".to_string()));
    env.push((
        "PRECINCT_WEBHOOK_ALLOW".to_string(),
        "127.0.0.1".to_string(),
    ));
    // The stream cache's size too, to measure with and without it (ADR 0040).
    for passthrough in [
        "RUST_LOG",
        "PRECINCT_LOG_FORMAT",
        "PRECINCT_STREAM_CACHE_BYTES",
    ] {
        if let Ok(v) = std::env::var(passthrough) {
            env.push((passthrough.to_string(), v));
        }
    }
    let log_cfg = LogConfig::isolated(&run_id);
    out.cleanup_streams.extend([
        log_cfg.stream.clone(),
        log_cfg.requests_stream.clone(),
        log_cfg.positions_stream.clone(),
        format!("KV_{}", log_cfg.keys_bucket),
    ]);
    let port = server::free_port()?;
    let server_log = s.out_dir.join("server.log");
    // All in one (`serve`, every role), or split: `--roles api` here and a second
    // process with `--roles projector,sla,live` (the SSE subscribers connect to it).
    let roles = s.split.then_some("api");
    eprintln!(
        "server: {} serve{} on 127.0.0.1:{port} (log {})",
        s.precinct_bin.display(),
        roles.map(|r| format!(" --roles {r}")).unwrap_or_default(),
        server_log.display()
    );
    let mut srv = server::Server::start(&s.precinct_bin, &env, roles, port, server_log).await?;
    SERVER_PID.store(srv.pid, Ordering::Relaxed);
    cpu.pids.server = Some(srv.pid);
    let mut srv2 = None;
    if s.split {
        let port2 = server::free_port()?;
        let log2 = s.out_dir.join("server-projector.log");
        eprintln!(
            "server: {} serve --roles projector,sla,live on 127.0.0.1:{port2} (log {})",
            s.precinct_bin.display(),
            log2.display()
        );
        let second = server::Server::start(
            &s.precinct_bin,
            &env,
            Some("projector,sla,live"),
            port2,
            log2,
        )
        .await?;
        SERVER2_PID.store(second.pid, Ordering::Relaxed);
        cpu.pids.server2 = Some(second.pid);
        srv2 = Some(second);
    }
    let target = Target {
        live_base: srv2
            .as_ref()
            .map_or_else(|| srv.base.clone(), |s2| s2.base.clone()),
        base: srv.base.clone(),
        db_url,
        run_id: run_id.clone(),
        master_key,
        admin_email,
        admin_password,
    };

    let outcome = phases::workloads(s, budget, cpu, &mut out, refs, &target).await;
    if let Err(e) = &outcome {
        eprintln!("bench: a workload failed: {e:#}");
        out.extra.insert("failure".into(), json!(format!("{e:#}")));
    }
    srv.kill().await;
    SERVER_PID.store(0, Ordering::Relaxed);
    if let Some(mut second) = srv2 {
        second.kill().await;
        SERVER2_PID.store(0, Ordering::Relaxed);
    }

    // ---------------------------------------------------------------- results
    let Output {
        rows,
        extra,
        cleanup_streams,
        cleanup_dbs,
        checks,
    } = out;
    let table = report::table(&rows);
    let notes = report::notes(&rows);
    println!();
    println!(
        "Precinct benchmark {run_id} — commit {commit}{} — {} — {} × {} — {} GiB RAM — {:.0} s",
        if dirty { "+dirty" } else { "" },
        if s.split {
            "split: serve --roles api + serve --roles projector,sla,live"
        } else {
            "all in one: serve"
        },
        machine["nproc"],
        machine["cpu_model"].as_str().unwrap_or(""),
        machine["mem_gib"],
        budget.start.elapsed().as_secs_f64()
    );
    println!();
    print!("{table}");
    println!();
    print!("{notes}");
    println!();
    println!("Self-checks:");
    for c in &checks {
        println!(
            "- {} {}: {}",
            if c.ok { "✅" } else { "❌" },
            c.name,
            c.detail
        );
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    let results = json!({
        "run": run_id,
        "commit": commit,
        "dirty": dirty,
        "at": chrono::Utc::now(),
        "machine": machine,
        "elapsed_secs": budget.start.elapsed().as_secs_f64(),
        "settings": format!("{s:?}"),
        "rows": rows,
        "checks": checks,
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
    outcome?;
    if !failed.is_empty() {
        anyhow::bail!("self-checks failed: {}", failed.join(", "));
    }
    Ok(())
}
