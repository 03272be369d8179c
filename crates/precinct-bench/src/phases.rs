//! The bench's phases, one function each, over one run context: the raw ceilings
//! ([`ceilings`], before the server starts), then with the server and its world
//! ([`RunCtx`]): intake with projection lag, overload, the lifecycle, seeding with
//! catch-up, the rebuild, queries and live locations. Each phase adds its rows and its
//! self-checks ([`Check`]: any failure fails the run) to [`Output`] and prints its
//! progress on stderr.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use precinct_eventlog::{EventLog, LogConfig};
use precinct_tests::client::Client;
use serde_json::json;
use sqlx::PgPool;

use crate::config::Settings;
use crate::intake::IntakeOut;
use crate::load::LoadResult;
use crate::report::Row;
use crate::stats::{self, Cpu};
use crate::world::{self, World};
use crate::{
    ceilings, intake, lifecycle, locations, overload, queries, rebuild, server, webhooks, Budget,
    PRIVATE_NATS_PID,
};

/// What the run reports (rows, details, self-checks) and removes at the end.
#[derive(Default)]
pub struct Output {
    pub rows: Vec<Row>,
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub cleanup_streams: Vec<String>,
    pub cleanup_dbs: Vec<String>,
    /// A workload's check of its own results; any failure fails the run.
    pub checks: Vec<Check>,
}

/// One self-check: did the workload do what it was acknowledged to do?
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Output {
    pub fn check(&mut self, name: &str, ok: bool, detail: String) {
        if !ok {
            eprintln!("  SELF-CHECK FAILED: {name}: {detail}");
        }
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail,
        });
    }
}

/// The ceilings the workloads' targets are relative to.
#[derive(Debug, Clone, Copy)]
pub struct Refs {
    /// The axum ceiling the intake and lifecycle targets use: b′ (no fsync), else b.
    pub b_id: &'static str,
    pub b: f64,
    /// The PostgreSQL upsert ceiling.
    pub c: f64,
}

/// The server under test, as `run` started it.
pub struct Target {
    pub base: String,
    /// Where the SSE streams are served: `base`, or the second process of a split run.
    pub live_base: String,
    pub db_url: String,
    pub run_id: String,
    pub master_key: String,
    pub admin_email: String,
    pub admin_password: String,
}

/// What every workload phase works with.
pub struct RunCtx<'a> {
    pub s: &'a Settings,
    pub budget: Budget,
    pub cpu: Cpu,
    pub out: &'a mut Output,
    pub refs: Refs,
    pub target: &'a Target,
    pub api: Client,
    pub world: Arc<World>,
    /// The server's log as stored (sealed personal data).
    pub log: EventLog,
    /// A pool on the server's database.
    pub pool: PgPool,
}

fn row_from(id: &str, name: &str, unit: &str, r: &LoadResult, cpu: stats::CpuShares) -> Row {
    let mut row = Row::new(id, name);
    row.throughput = Some(r.throughput());
    row.unit = unit.into();
    row.latency = Some(r.latencies.clone().summary());
    row.cpu = cpu;
    row.ops = Some(r.ok);
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

fn append_err(note: &str, r: &LoadResult) -> String {
    if r.errors.is_empty() {
        note.to_string()
    } else {
        format!("{note} errors {:?}", r.errors)
    }
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

/// Ceilings (a), (b), (a′), (b′) and (c). (c) runs in the server's database, created
/// here (`bench_<ts>`); answers the ceilings and that database's URL.
pub async fn ceilings(
    s: &Settings,
    cpu: &mut Cpu,
    run_id: &str,
    ts: &str,
    out: &mut Output,
) -> anyhow::Result<(Refs, String)> {
    eprintln!("ceilings:");
    let js = ceilings::jetstream(&s.nats_url).await?;
    let scratch = format!("{}_CEILING", run_id.to_uppercase());
    let scratch_subject = format!("{run_id}.ceiling");
    out.cleanup_streams.push(scratch.clone());
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
    out.rows.push(row);
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
    out.rows.push(row_from(
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
                out.rows.push(row_from(
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
                out.rows.push(row_from(
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
    let (b_id, b_ref) = match ceil_b_nofsync {
        Some(v) => ("b′", v),
        None => ("b", ceil_b),
    };

    let db_name = format!("bench_{ts}");
    let db_url = server::create_database(&s.database_url, &db_name).await?;
    out.cleanup_dbs.push(db_name.clone());
    let raw_pool = server::pool(&db_url, 2).await?;
    // PostgreSQL's CPU from here on: the postmaster's children for `bench_<ts>…`.
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&raw_pool)
        .await?;
    match u32::try_from(backend).ok().and_then(stats::proc_ppid) {
        Some(postmaster) => cpu.pg = Some(stats::PgCpu::follow(postmaster, db_name.clone())),
        None => eprintln!(
            "  PostgreSQL is not on this machine (or not visible): its CPU is not counted"
        ),
    }
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
    out.rows.push(row);
    eprintln!("  (c) {:.0} rows/s", ceil_c);
    let refs = Refs {
        b_id,
        b: b_ref,
        c: ceil_c,
    };
    Ok((refs, db_url))
}

/// The world over HTTP, then the workloads in order (each bounded by the budget).
pub async fn workloads(
    s: &Settings,
    budget: Budget,
    cpu: Cpu,
    out: &mut Output,
    refs: Refs,
    target: &Target,
) -> anyhow::Result<()> {
    let api = crate::load::api(&target.base);
    let t = Instant::now();
    eprintln!("world:");
    let world = World::create(&api, s, &target.admin_email, &target.admin_password).await?;
    out.extra
        .insert("world_setup_secs".into(), json!(t.elapsed().as_secs_f64()));
    let log = EventLog::connect(&s.nats_url, LogConfig::isolated(&target.run_id))
        .await
        .context("connect to the server's log")?;
    let pool = server::pool(&target.db_url, 4).await?;
    let mut ctx = RunCtx {
        s,
        budget,
        cpu,
        out,
        refs,
        target,
        api,
        world: Arc::new(world),
        log,
        pool,
    };
    let w1 = intake(&mut ctx).await?;
    if s.runs("overload") {
        overload(&mut ctx, &w1).await?;
    }
    if s.runs("lifecycle") {
        lifecycle(&mut ctx, &w1).await?;
    }
    if s.runs("webhooks") && s.webhooks > 0 {
        webhooks(&mut ctx).await?;
    }
    if s.runs("rebuild") {
        let head = seed(&mut ctx, &w1).await?;
        let reports_rows_live = rebuild(&mut ctx, head).await?;
        if s.runs("queries") {
            queries(&mut ctx, reports_rows_live).await?;
        }
        if s.runs("export") {
            export(&mut ctx).await?;
        }
    }
    if s.runs("locations") {
        locations(&mut ctx).await?;
    }
    ctx.pool.close().await;
    Ok(())
}

impl RunCtx<'_> {
    /// Time kept for what follows the seed/catch-up/rebuild phases: queries
    /// (~6 × query_secs + 15 s), locations (~workload + paced + 15 s), results (~20 s).
    fn reserve_after_rebuild(&self) -> Duration {
        let s = self.s;
        s.query_secs * 6 + s.workload_secs + s.paced_secs + Duration::from_secs(60)
    }
}

/// Workload 1 (intake) and 3 (projection lag under it).
pub async fn intake(ctx: &mut RunCtx<'_>) -> anyhow::Result<IntakeOut> {
    let (s, cpu) = (ctx.s, ctx.cpu.clone());
    eprintln!(
        "workload 1: intake ({} connections, {} s) with projection lag",
        s.intake_connections,
        s.workload_secs.as_secs()
    );
    let profile = perf(s, "intake", cpu.pids.server, s.workload_secs);
    let c0 = cpu.snap();
    let w1 = intake::run(
        &ctx.api,
        &ctx.world,
        &ctx.log,
        &ctx.target.db_url,
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
    let b_id = ctx.refs.b_id;
    ratio(&mut row, b_id, Some(ctx.refs.b));
    row.target = format!("≥ 0.5× {b_id}, p99 < 50 ms");
    row.pass = Some(
        row.ratio.as_ref().is_some_and(|(_, x)| *x >= 0.5)
            && row.latency.is_some_and(|l| l.p99_ms < 50.0),
    );
    ctx.out.rows.push(row);
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
    ctx.out.rows.push(row);
    // Every acknowledged report is in the read model (its row read, not a checkpoint).
    let top = w1.reports.iter().map(|(_, p)| *p).max().unwrap_or(0);
    precinct_readmodel::wait_for_position(&ctx.pool, top, Duration::from_secs(60))
        .await
        .ok();
    let ids: Vec<uuid::Uuid> = w1
        .reports
        .iter()
        .filter_map(|(id, _)| id.parse().ok())
        .collect();
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM reports WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_one(&ctx.pool)
        .await?;
    ctx.out.check(
        "intake: every acknowledged report's row is in the read model",
        found == w1.reports.len() as i64 && !w1.reports.is_empty() && w1.lag_unseen == 0,
        format!(
            "{found} of {} acknowledged reports found; {} of {} lag samples never seen",
            w1.reports.len(),
            w1.lag_unseen,
            w1.lag_samples
        ),
    );
    Ok(w1)
}

/// The overload phase: intake open loop at `BENCH_OVERLOAD_FACTOR` (2) × the rate the
/// intake phase sustained; the excess must be shed with 503 + `Retry-After`, nothing
/// else may fail, nothing acknowledged may be lost.
pub async fn overload(ctx: &mut RunCtx<'_>, w1: &IntakeOut) -> anyhow::Result<()> {
    let (s, cpu) = (ctx.s, ctx.cpu.clone());
    let sustained = w1.load.throughput();
    let rate = sustained * s.overload_factor;
    eprintln!(
        "overload: POST /crimes open loop at {rate:.0}/s ({:.1}× the intake's {sustained:.0}/s, {} s)",
        s.overload_factor,
        s.workload_secs.as_secs()
    );
    let c0 = cpu.snap();
    let o = overload::run(
        &ctx.api,
        &ctx.world,
        &ctx.pool,
        rate,
        s.workload_secs,
        s.max_ops,
    )
    .await?;
    let shares = cpu.shares(&c0, &cpu.snap());
    let mut row = Row::new(
        "1 overload",
        &format!(
            "intake at {:.1}× its rate, open loop ({rate:.0} req/s offered)",
            s.overload_factor
        ),
    );
    row.throughput = Some(o.accepted_rate());
    row.unit = "req/s".into();
    row.latency = Some(o.accepted_latency);
    row.cpu = shares;
    row.ops = Some(o.accepted);
    row.errors = o.other_errors() + o.lost;
    row.target = "only 503 shed, p99 accepted < 200 ms, 0 lost".into();
    row.pass = Some(
        o.other_errors() == 0
            && o.lost == 0
            && o.unacknowledged_applied == 0
            && o.accepted_latency.p99_ms < 200.0,
    );
    row.note = format!(
        "{} sent, {} accepted, {} shed (503 + Retry-After: {:.1}%), {} other errors {:?}, \
         {} lost, {} applied without a 201; latency columns: accepted requests",
        o.sent,
        o.accepted,
        o.shed,
        100.0 * o.shed_share(),
        o.other_errors(),
        o.other,
        o.lost,
        o.unacknowledged_applied
    );
    ctx.out.rows.push(row);
    ctx.out.check(
        "overload: no error but 503 + Retry-After",
        o.other_errors() == 0,
        format!("{} other errors {:?}", o.other_errors(), o.other),
    );
    ctx.out.check(
        "overload: every accepted report is in the read model, and nothing else",
        o.lost == 0 && o.unacknowledged_applied == 0 && o.accepted > 0,
        format!(
            "{} accepted, {} lost, {} applied without a 201",
            o.accepted, o.lost, o.unacknowledged_applied
        ),
    );
    eprintln!(
        "  accepted {:.0} req/s (p99 {:.1} ms), {:.1}% shed, {} other errors, {} lost",
        o.accepted_rate(),
        o.accepted_latency.p99_ms,
        100.0 * o.shed_share(),
        o.other_errors(),
        o.lost
    );
    ctx.out.extra.insert("overload".into(), json!(o));
    Ok(())
}

/// Webhook delivery under intake load (issue 18): for `BENCH_WEBHOOKS` subscriptions to
/// every report event, the append → delivered latency under a paced intake
/// (`BENCH_WEBHOOK_RATE` reports/s, open loop) and the most deliveries per second under
/// the closed-loop intake; every delivery checked (none missing, none repeated, log
/// order, signatures).
pub async fn webhooks(ctx: &mut RunCtx<'_>) -> anyhow::Result<()> {
    let s = ctx.s;
    let admin = ctx
        .api
        .login(&ctx.target.admin_email, &ctx.target.admin_password)
        .await?;
    let loads = [
        (
            "paced",
            webhooks::Load::Paced {
                rate: s.webhook_rate,
            },
        ),
        (
            "max",
            webhooks::Load::Closed {
                connections: s.intake_connections,
            },
        ),
    ];
    for (label, load) in loads {
        let secs = ctx.budget.cap(
            s.webhook_secs,
            s.webhook_drain_secs + ctx.reserve_after_rebuild(),
        );
        let offered = match load {
            webhooks::Load::Paced { rate } => format!("{rate:.0} reports/s, open loop"),
            webhooks::Load::Closed { connections } => {
                format!("closed loop, {connections} connections")
            }
        };
        eprintln!(
            "webhooks ({label}): {} subscriptions to every report event; intake {offered}, {} s",
            s.webhooks,
            secs.as_secs()
        );
        let c0 = ctx.cpu.snap();
        let w = webhooks::run(
            &ctx.api,
            &ctx.world,
            &ctx.log,
            &ctx.target.db_url,
            &ctx.pool,
            &admin.token,
            s.webhooks,
            load,
            secs,
            s.max_ops,
            s.lag_sample_every,
            s.webhook_drain_secs,
        )
        .await?;
        let shares = ctx.cpu.shares(&c0, &ctx.cpu.snap());
        let mut row = Row::new(
            &format!("W {label}"),
            &format!(
                "webhook deliveries, {} subscriptions, intake {offered} (append → delivered)",
                w.subscriptions
            ),
        );
        row.throughput = Some(w.throughput());
        row.unit = "deliveries/s".into();
        row.latency = Some(w.latency);
        row.cpu = shares;
        row.ops = Some(w.deliveries as u64);
        row.errors = (w.missing + w.repeats + w.out_of_order + w.unverified + w.id_clashes) as u64;
        let delivered = row.errors == 0 && w.deliveries > 0;
        if matches!(load, webhooks::Load::Paced { .. }) {
            row.target = "every event to every subscription; p99 < 1 s".into();
            row.pass = Some(delivered && w.latency.p99_ms < 1000.0);
        } else {
            row.target = "every event to every subscription".into();
            row.pass = Some(delivered);
        }
        row.note = format!(
            "{} reports acknowledged at {:.0}/s (p99 {:.1} ms, {} errors); {} report events × \
             {} subscriptions; {:.0} deliveries/s during the load, {:.0}/s in the drain \
             ({:.1} s after it); {} missing, {} repeated, {} out of order, {} unverified \
             signatures; latency over {} sampled positions; CPU columns: load and drain",
            w.acked,
            w.intake_rate,
            w.intake_latency.p99_ms,
            w.intake_errors,
            w.expected_positions,
            w.subscriptions,
            w.during_rate,
            w.drain_rate,
            w.drain.as_secs_f64(),
            w.missing,
            w.repeats,
            w.out_of_order,
            w.unverified,
            w.sampled_positions
        );
        ctx.out.rows.push(row);
        ctx.out.check(
            &format!(
                "webhooks ({label}): every report event reached every subscription once, in \
                 log order, signed"
            ),
            w.deliveries > 0
                && w.missing == 0
                && w.repeats == 0
                && w.out_of_order == 0
                && w.unverified == 0
                && w.id_clashes == 0,
            format!(
                "{} deliveries of {} events × {}: {} missing, {} repeated, {} out of order, \
                 {} unverified, {} webhook-id clashes",
                w.deliveries,
                w.expected_positions,
                w.subscriptions,
                w.missing,
                w.repeats,
                w.out_of_order,
                w.unverified,
                w.id_clashes
            ),
        );
        eprintln!(
            "  {:.0} deliveries/s ({:.0}/s during the load, {:.0}/s draining), p99 {:.1} ms; \
             intake {:.0} req/s",
            w.throughput(),
            w.during_rate,
            w.drain_rate,
            w.latency.p99_ms,
            w.intake_rate
        );
        ctx.out.extra.insert(
            format!("webhooks_{label}"),
            json!({
                "subscriptions": w.subscriptions,
                "acked": w.acked,
                "intake_rate": w.intake_rate,
                "deliveries": w.deliveries,
                "elapsed_secs": w.elapsed.as_secs_f64(),
                "drain_secs": w.drain.as_secs_f64(),
                "during_rate": w.during_rate,
                "drain_rate": w.drain_rate,
                "expected_positions": w.expected_positions,
                "missing": w.missing,
                "repeats": w.repeats,
                "out_of_order": w.out_of_order,
                "unverified": w.unverified,
                "id_clashes": w.id_clashes,
            }),
        );
    }
    Ok(())
}

/// Workload 2: the lifecycle over the intake's reports (more submitted first if it made
/// too few).
pub async fn lifecycle(ctx: &mut RunCtx<'_>, w1: &IntakeOut) -> anyhow::Result<()> {
    let (s, cpu, world) = (ctx.s, ctx.cpu.clone(), ctx.world.clone());
    let mut pool_ids: Vec<String> = w1.reports.iter().map(|(id, _)| id.clone()).collect();
    let need = (s.lifecycle_patrols * 200).min(s.max_ops as usize);
    if pool_ids.len() < need / 4 {
        // Intake made too few: submit more first (not measured).
        let more = (need / 4).saturating_sub(pool_ids.len()).min(5_000);
        eprintln!("  lifecycle: submitting {more} more reports first");
        let extra_ids =
            futures::StreamExt::collect::<Vec<_>>(futures::StreamExt::buffer_unordered(
                futures::stream::iter((0..more).map(|n| {
                    let (api, token) = (&ctx.api, &world.citizens[n % world.citizens.len()].token);
                    async move {
                        let call = world::report(n as u64, world::LAT, world::LON);
                        api.run(&call, Some(token))
                            .await
                            .ok()
                            .and_then(|b| b["id"].as_str().map(|s| s.to_string()))
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
    let w2 = lifecycle::run(&ctx.api, &world, pool_ids, s.workload_secs, s.max_ops).await?;
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
    let b_id = ctx.refs.b_id;
    ratio(&mut row, b_id, Some(ctx.refs.b));
    let v = &w2.verification;
    row.target = format!("≥ 0.3× {b_id}; 0 lost / doubled");
    row.pass = Some(
        row.ratio.as_ref().is_some_and(|(_, x)| *x >= 0.3)
            && v.lost == 0
            && v.doubled == 0
            && v.patrols_wrong == 0
            && v.complete,
    );
    append_note(&mut row, format!(
        "{} reports closed ({:.1}/s); {} steps shed (503) and sent again after Retry-After; verified {} reports: {} lost, {} doubled; {} patrols: {} not AVAILABLE/0 open; {} drives stopped at a failed step; per step p99 ms: {}",
        w2.reports_done,
        w2.reports_done as f64 / w2.load.elapsed.as_secs_f64().max(1e-9),
        w2.shed,
        v.reports_checked, v.lost, v.doubled, v.patrols_checked, v.patrols_wrong, v.incomplete,
        w2.per_step.iter().map(|(k, p)| format!("{k} {:.1}", p.p99_ms)).collect::<Vec<_>>().join(", ")
    ));
    ctx.out.rows.push(row);
    ctx.out.check(
        "lifecycle: every driven report closed once, no effect lost or doubled",
        v.lost == 0
            && v.doubled == 0
            && v.unreadable == 0
            && v.patrols_wrong == 0
            && v.complete
            && w2.reports_done > 0,
        format!(
            "{} reports verified: {} lost, {} doubled, {} unreadable; {} patrols wrong; \
             verification {}",
            v.reports_checked,
            v.lost,
            v.doubled,
            v.unreadable,
            v.patrols_wrong,
            if v.complete { "complete" } else { "incomplete" }
        ),
    );
    ctx.out
        .extra
        .insert("lifecycle_per_step".into(), json!(w2.per_step));
    ctx.out
        .extra
        .insert("lifecycle_verification".into(), json!(w2.verification));
    eprintln!(
        "  {:.0} cmd/s, {} reports closed",
        w2.load.throughput(),
        w2.reports_done
    );
    Ok(())
}

/// Workload 3: seeding the log (from templates of the intake's reports) and the live
/// projectors catching up; answers the log head.
pub async fn seed(ctx: &mut RunCtx<'_>, w1: &IntakeOut) -> anyhow::Result<u64> {
    let (s, cpu, budget) = (ctx.s, ctx.cpu.clone(), ctx.budget);
    let reserve_after = ctx.reserve_after_rebuild();
    let templates = rebuild::templates(
        &ctx.log,
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
        &ctx.log,
        templates,
        s.rebuild_events,
        s.seed_batch,
        s.seed_appenders,
        s.seed_days,
        seed_bound,
    )
    .await;
    let seed_shares = cpu.shares(&c0, &cpu.snap());
    let catch_bound = budget.cap(
        phase_bound(240, s.rebuild_events),
        reserve_after + Duration::from_secs(60),
    );
    let caught = rebuild::wait_caught_up(&ctx.pool, seed.head, catch_bound).await;
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
    row.ops = Some(seed.events);
    row.errors = seed.errors;
    row.note = format!(
        "{} events in {:.1} s; log head {}",
        seed.events, seed.secs, seed.head
    );
    ctx.out.rows.push(row);
    let mut row = Row::new(
        "3 catch-up",
        "live projectors catching up with the seeded log",
    );
    let caught_events = rebuild::lowest_checkpoint(&ctx.pool).await.max(0) as f64;
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
    row.ops = Some(if caught {
        seed.events
    } else {
        caught_events as u64
    });
    ratio(&mut row, "c", Some(ctx.refs.c));
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
    ctx.out.rows.push(row);
    let head = seed.head;
    ctx.out.extra.insert("seed".into(), json!(seed));
    // A steady state is vacuumed and analyzed: with PostgreSQL's defaults, autovacuum
    // does both within a minute or so of a bulk insert (`autovacuum_vacuum_insert_*`).
    // The queries below should run neither on the empty-table estimates nor on tables
    // whose visibility map was never set, where every index-only scan visits the heap
    // (a server with autovacuum off, as this machine's CI configuration has it, never
    // sets it). Simple protocol: VACUUM cannot run in a transaction.
    let vacuum = Instant::now();
    match sqlx::raw_sql("VACUUM (ANALYZE)").execute(&ctx.pool).await {
        Ok(_) => eprintln!(
            "  VACUUM (ANALYZE) of the live database: {:.1} s",
            vacuum.elapsed().as_secs_f64()
        ),
        Err(e) => eprintln!("  VACUUM (ANALYZE): {e}"),
    }
    Ok(head)
}

/// Workload 3: every read model rebuilt from the log of `head` events into a fresh
/// database; answers the live `reports` rows.
pub async fn rebuild(ctx: &mut RunCtx<'_>, head: u64) -> anyhow::Result<i64> {
    let (s, cpu, budget) = (ctx.s, ctx.cpu.clone(), ctx.budget);
    let reserve_after = ctx.reserve_after_rebuild();
    let rebuild_db = format!(
        "bench_{}_rebuild",
        ctx.target.run_id.trim_start_matches("bench")
    );
    let rebuild_url = server::create_database(&s.database_url, &rebuild_db).await?;
    ctx.out.cleanup_dbs.push(rebuild_db.clone());
    let rebuild_pool = server::pool(&rebuild_url, 16).await?;
    precinct_readmodel::migrate(&rebuild_pool)
        .await
        .map_err(|e| anyhow::anyhow!("migrate: {e}"))?;
    let master = precinct_vault::MasterKeys::parse(&ctx.target.master_key, "")
        .map_err(|e| anyhow::anyhow!("master key: {e}"))?;
    let vault = precinct_vault::Vault::open(&ctx.log, &ctx.log.config().keys_bucket, 1, master)
        .await
        .map_err(|e| anyhow::anyhow!("vault: {e}"))?;
    let open_log = ctx.log.clone().with_opener(Arc::new(vault));
    let rebuild_bound = budget.cap(phase_bound(240, s.rebuild_events), reserve_after);
    eprintln!(
        "workload 3: rebuild of every read model from {} events (bound {} s)",
        head,
        rebuild_bound.as_secs()
    );
    let c0 = cpu.snap();
    let mut rb = rebuild::rebuild(&rebuild_pool, &open_log, rebuild_bound).await?;
    let shares = cpu.shares(&c0, &cpu.snap());
    rb.reports_rows_live = sqlx::query_scalar("SELECT count(*) FROM reports")
        .fetch_one(&ctx.pool)
        .await
        .unwrap_or(0);
    // Rebuilt = live, row for row: a hash of each table in both databases.
    let hash_started = Instant::now();
    let rebuilt = rebuild::table_hashes(&rebuild_pool).await?;
    let live = rebuild::table_hashes(&ctx.pool).await?;
    let differ: Vec<String> = live
        .keys()
        .chain(rebuilt.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|t| live.get(*t) != rebuilt.get(*t))
        .map(|t| {
            let rows = |m: &std::collections::BTreeMap<String, (i64, String)>| {
                m.get(t).map(|(n, _)| *n).unwrap_or(-1)
            };
            format!(
                "{t} ({} rebuilt / {} live rows)",
                rows(&rebuilt),
                rows(&live)
            )
        })
        .collect();
    ctx.out.check(
        "rebuild: every read-model table rebuilt = live (hash of all rows)",
        rb.finished && differ.is_empty() && !live.is_empty(),
        format!(
            "{} tables compared ({}){}; differ: {}",
            live.len(),
            live.iter()
                .map(|(t, (n, _))| format!("{t} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            if rb.finished {
                ""
            } else {
                "; the rebuild did not finish within its bound"
            },
            if differ.is_empty() {
                "none".to_string()
            } else {
                differ.join(", ")
            }
        ),
    );
    ctx.out.extra.insert(
        "rebuild_hash_secs".into(),
        json!(hash_started.elapsed().as_secs_f64()),
    );
    rebuild_pool.close().await;
    // Dropped now rather than at the end (it holds a second copy of every read model),
    // unless asked to keep it for a look afterwards.
    if !s.keep {
        server::drop_database(&s.database_url, &rebuild_db).await;
    }
    let mut row = Row::new(
        "3 rebuild",
        &format!("rebuild all read models from a log of {} events", rb.events),
    );
    row.throughput = Some(rb.events as f64 / rb.secs.max(1e-9));
    row.unit = "ev/s".into();
    row.cpu = shares;
    row.ops = Some(rb.events);
    ratio(&mut row, "c", Some(ctx.refs.c));
    row.target = "≥ 0.5× c".into();
    row.pass = Some(rb.finished && row.ratio.as_ref().is_some_and(|(_, x)| *x >= 0.5));
    row.note = format!(
        "{:.1} s{}; rebuilt reports rows {} vs live {}; the rebuild runs in the bench process (CPU under 'bench')",
        rb.secs,
        if rb.finished { "" } else { " (time bound hit: events = lowest checkpoint reached)" },
        rb.reports_rows,
        rb.reports_rows_live
    );
    ctx.out.rows.push(row);
    ctx.out.extra.insert("rebuild".into(), json!(rb));
    eprintln!("  rebuild {:.0} ev/s", rb.events as f64 / rb.secs.max(1e-9));
    Ok(rb.reports_rows_live)
}

/// Sample points of the `near` brute-force check.
const NEAR_CHECK_POINTS: u64 = 25;

/// Workload 5: the query cases over the `reports_rows_live` projected reports.
pub async fn queries(ctx: &mut RunCtx<'_>, reports_rows_live: i64) -> anyhow::Result<()> {
    let (s, cpu, budget) = (ctx.s, ctx.cpu.clone(), ctx.budget);
    eprintln!("workload 5: queries over {reports_rows_live} projected reports");
    let (hist_id, middle) = queries::report_with_history(&ctx.api, &ctx.world, 50).await?;
    for case in queries::cases(&ctx.world, &hist_id, middle) {
        let dur = budget.cap(
            s.query_secs,
            s.workload_secs + s.paced_secs + Duration::from_secs(40),
        );
        let c0 = cpu.snap();
        let r = queries::run_case(&ctx.api, &case, s.query_connections, dur, s.max_ops).await;
        let shares = cpu.shares(&c0, &cpu.snap());
        let (id, name, limit) = match case.name {
            "queue" => ("5 queue", "GET /queues/reports (staff)".to_string(), 10.0),
            "near" => (
                "5 near",
                "GET /crimes?near=…&radius_m=500 (public)".to_string(),
                10.0,
            ),
            "workloads" => ("5 workloads", "GET /workloads (staff)".to_string(), 10.0),
            "analytics_sla" => (
                "5 analytics sla",
                "GET /analytics/sla (staff, 30 days)".to_string(),
                50.0,
            ),
            "analytics_volume" => (
                "5 analytics volume",
                "GET /analytics/volume?bucket=day (staff, 30 days)".to_string(),
                50.0,
            ),
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
            format!("over {reports_rows_live} projected reports"),
        );
        if case.spread {
            // Every answer the load got must be the brute force's: check a sample.
            let check = queries::check_near(&ctx.api, &ctx.pool, NEAR_CHECK_POINTS).await?;
            row.target.push_str("; = brute force");
            row.pass = row.pass.map(|p| p && check.mismatched == 0);
            ctx.out.check(
                "near: the API's answers equal a brute-force scan",
                check.mismatched == 0 && check.points > 0,
                format!(
                    "{} points ({} reports within {} m): {} differ",
                    check.points,
                    check.within,
                    queries::NEAR_RADIUS_M,
                    check.mismatched
                ),
            );
            append_note(
                &mut row,
                format!(
                    "at points spread over the city; brute-force check at {} points \
                     ({} reports within {} m in all): {} differ, {} only at the edge",
                    check.points,
                    check.within,
                    queries::NEAR_RADIUS_M,
                    check.mismatched,
                    check.on_the_edge
                ),
            );
            ctx.out.extra.insert("near_check".into(), json!(check));
        }
        ctx.out.rows.push(row);
        eprintln!("  {}: {:.0} req/s", case.name, r.throughput());
    }
    Ok(())
}

/// Workload 5 (export): the station's reports as one CSV export (`GET /crimes`,
/// `Accept: text/csv`, staff view), every row checked against the read model's count,
/// with the server's memory sampled while it streams (issue 17 item 5, ADR 0030).
pub async fn export(ctx: &mut RunCtx<'_>) -> anyhow::Result<()> {
    let (s, cpu) = (ctx.s, ctx.cpu.clone());
    let desk = &ctx.world.dispatcher;
    let station: uuid::Uuid = sqlx::query_scalar("SELECT station_id FROM accounts WHERE id = $1")
        .bind(desk.id.parse::<uuid::Uuid>()?)
        .fetch_one(&ctx.pool)
        .await?;
    let expected: i64 = sqlx::query_scalar("SELECT count(*) FROM reports WHERE station_id = $1")
        .bind(station)
        .fetch_one(&ctx.pool)
        .await?;
    eprintln!("workload 5: CSV export of {expected} reports");
    let limit = ctx.budget.cap(
        Duration::from_secs(120),
        s.workload_secs + s.paced_secs + Duration::from_secs(40),
    );
    let c0 = cpu.snap();
    let run = queries::export_csv(&ctx.api, "/crimes", &desk.token, cpu.pids.server, limit).await?;
    let shares = cpu.shares(&c0, &cpu.snap());
    let mut row = Row::new(
        "5 export",
        "GET /crimes as CSV (staff, one station, streamed)",
    );
    row.throughput = Some(run.rows as f64 / run.secs.max(1e-9));
    row.unit = "rows/s".into();
    row.cpu = shares;
    row.ops = Some(run.rows);
    row.target = "≥ 50,000 rows/s, flat memory".into();
    let whole = run.complete && i64::try_from(run.rows).ok() == Some(expected);
    let growth = run.rss_peak_mib - run.rss_before_mib;
    row.pass = Some(whole && row.throughput.is_some_and(|t| t >= 50_000.0));
    append_note(
        &mut row,
        format!(
            "{} rows, {:.1} MB in {:.2} s; server RSS {:.0} MiB before, peak {:.0} MiB \
             (+{:.0} MiB)",
            run.rows,
            run.bytes as f64 / 1e6,
            run.secs,
            run.rss_before_mib,
            run.rss_peak_mib,
            growth
        ),
    );
    ctx.out.check(
        "export: every report of the station, once, in a body that ends cleanly",
        whole,
        format!("{} rows exported, {expected} in the read model", run.rows),
    );
    ctx.out.extra.insert("export".into(), json!(run));
    ctx.out.rows.push(row);
    eprintln!(
        "  export: {:.0} rows/s",
        run.rows as f64 / run.secs.max(1e-9)
    );
    Ok(())
}

/// Workload 4: location updates at the maximum rate, then paced, with SSE subscribers
/// measuring the fan-out.
pub async fn locations(ctx: &mut RunCtx<'_>) -> anyhow::Result<()> {
    let (s, cpu, budget, world) = (ctx.s, ctx.cpu.clone(), ctx.budget, ctx.world.clone());
    eprintln!(
        "workload 4: locations ({} patrols, {} SSE subscribers)",
        world.location_patrols.len(),
        s.sse_subscribers
    );
    if world.location_patrols.is_empty() || world.location_stations.is_empty() {
        anyhow::bail!("no location patrols");
    }
    let subs =
        locations::Subscribers::connect(&ctx.target.live_base, &world, s.sse_subscribers).await?;
    // Let the hub register everyone before the first move.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_station = subs.per_station.clone();
    subs.set_phase(0);
    let dur = budget.cap(s.workload_secs, s.paced_secs + Duration::from_secs(20));
    let profile = perf(s, "locations", cpu.pids.server, dur);
    let c0 = cpu.snap();
    let (r_max, sent_max) = locations::max_rate(
        &ctx.api,
        world.clone(),
        s.location_connections,
        dur,
        s.max_ops,
        1,
    )
    .await;
    let shares_max = cpu.shares(&c0, &cpu.snap());
    perf_done(profile);
    // Frames in flight land before the phase changes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The same closed loops with several fixes per request (left out when 1).
    let per = s.fixes_per_request.clamp(1, 100);
    subs.set_phase(1);
    let (r_batch, sent_batch, shares_batch) = if per > 1 {
        let dur = budget.cap(s.workload_secs, s.paced_secs + Duration::from_secs(15));
        let c0 = cpu.snap();
        let (r, sent) = locations::max_rate(
            &ctx.api,
            world.clone(),
            s.location_connections,
            dur,
            s.max_ops / per as u64,
            per,
        )
        .await;
        let shares = cpu.shares(&c0, &cpu.snap());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        (r, sent, shares)
    } else {
        Default::default()
    };
    subs.set_phase(2);
    let dur = budget.cap(s.paced_secs, Duration::from_secs(15));
    let c0 = cpu.snap();
    let (r_paced, sent_paced) = locations::paced(&ctx.api, world.clone(), s.paced_rate, dur).await;
    let shares_paced = cpu.shares(&c0, &cpu.snap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let outs = subs.finish().await;
    let dropped = outs.iter().filter(|o| o.ended).count();
    let delivery = locations::check_delivery(&outs, &[&sent_max, &sent_batch, &sent_paced]);
    ctx.out.check(
        "fan-out: each subscriber got exactly its station's acknowledged updates",
        delivery.missing == 0
            && delivery.extra == 0
            && dropped == 0
            && outs.len() == s.sse_subscribers,
        format!(
            "{} subscribers ({} ended early): {} frames missing, {} extra or doubled",
            delivery.subscribers, dropped, delivery.missing, delivery.extra
        ),
    );
    ctx.out
        .extra
        .insert("fan_out_delivery".into(), json!(delivery));
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
        locations::expected_frames(&sent_batch, &per_station),
        locations::expected_frames(&sent_paced, &per_station),
    ];
    let subs_per_station = s.sse_subscribers as f64 / world.location_stations.len() as f64;
    for (p, (r, shares, label)) in [
        (&r_max, shares_max, "max".to_string()),
        (&r_batch, shares_batch, format!("max ×{per}")),
        (&r_paced, shares_paced, "paced".to_string()),
    ]
    .into_iter()
    .enumerate()
    {
        if p == 1 && per == 1 {
            continue;
        }
        let mut row = row_from(
            &format!("4 {label}"),
            &match p {
                0 => format!(
                    "PUT /patrols/{{id}}/location, {} patrols, {} conns",
                    world.location_patrols.len(),
                    s.location_connections
                ),
                1 => format!(
                    "POST /patrols/{{id}}/locations, {per} fixes per request, {} conns",
                    s.location_connections
                ),
                _ => format!("PUT location paced at {}/s", s.paced_rate),
            },
            "upd/s",
            r,
            shares,
        );
        if p == 1 {
            // Updates, not requests: the throughput and the CPU per operation count
            // fixes; the latency is per request.
            row.throughput = Some(r.throughput() * per as f64);
            row.ops = Some(r.ok * per as u64);
            row.note = format!(
                "{} requests of {per} fixes; latency per request{}",
                r.ok,
                if row.note.is_empty() {
                    String::new()
                } else {
                    format!("; {}", row.note)
                }
            );
        }
        if p < 2 {
            row.target = "≥ 20,000 upd/s".into();
            row.pass = row.throughput.map(|t| t >= 20_000.0);
        }
        ctx.out.rows.push(row);
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
        ctx.out.rows.push(row);
    }
    eprintln!(
        "  max {:.0} upd/s, max ×{per} {:.0} upd/s, paced {:.0} upd/s",
        r_max.throughput(),
        r_batch.throughput() * per as f64,
        r_paced.throughput()
    );
    Ok(())
}
