//! Workload 5: queries over the projected reports (after seeding): the station's queue,
//! the public list with `near=` (at points spread over the city, checked against a
//! brute-force scan on a sample), workloads, and `as_of` on a report with 50 events.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use precinct_tests::client::{Call, Client};

use crate::load::{closed_loop, LoadResult};
use crate::world::{city_point, report, World, LAT, LON};

/// The radius of the `near` queries (metres).
pub const NEAR_RADIUS_M: u32 = 500;

/// Where `near` query `n` asks (a different place of the city each time).
pub fn near_point(n: u64) -> (f64, f64) {
    city_point(n ^ 0x6E65_6172)
}

/// A report with `events` events (submitted, then notes by the desk), and a moment in
/// the middle of its history.
pub async fn report_with_history(
    api: &Client,
    world: &World,
    events: usize,
) -> anyhow::Result<(String, DateTime<Utc>)> {
    let citizen = &world.citizens[0].token;
    let r = api.run(&report(7, LAT, LON), Some(citizen)).await?;
    let id = r["id"].as_str().unwrap_or_default().to_string();
    let mut middle = Utc::now();
    for i in 1..events {
        let note = format!("Follow-up note {i}: witness called back");
        api.run(&Call::note(&id, &note), Some(&world.dispatcher.token))
            .await?;
        if i == events / 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            middle = Utc::now();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok((id, middle))
}

pub struct QueryCase {
    pub name: &'static str,
    pub call: Call,
    pub token: Option<String>,
    /// `near=` at a new point of the city per request ([`near_point`]).
    pub spread: bool,
}

pub fn cases(world: &World, as_of_id: &str, as_of: DateTime<Utc>) -> Vec<QueryCase> {
    let desk = Some(world.dispatcher.token.clone());
    vec![
        QueryCase {
            name: "queue",
            call: Call::queue(),
            token: desk.clone(),
            spread: false,
        },
        QueryCase {
            name: "near",
            call: Call::near(LAT, LON, NEAR_RADIUS_M),
            token: None,
            spread: true,
        },
        QueryCase {
            name: "workloads",
            call: Call::workloads(None, None),
            token: desk.clone(),
            spread: false,
        },
        QueryCase {
            name: "as_of",
            call: Call::report_as_of(as_of_id, as_of),
            token: desk.clone(),
            spread: false,
        },
        // The analytics over the last 30 days of the dispatcher's station (issue 17
        // item 5): the SLA percentiles and KPIs, and the volume per day.
        QueryCase {
            name: "analytics_sla",
            call: Call::get(format!("/analytics/sla?{}", last_30_days())),
            token: desk.clone(),
            spread: false,
        },
        QueryCase {
            name: "analytics_volume",
            call: Call::get(format!("/analytics/volume?bucket=day&{}", last_30_days())),
            token: desk,
            spread: false,
        },
    ]
}

/// `from` and `to` of the 30 days up to now, URL-encoded.
fn last_30_days() -> String {
    let to = Utc::now() + chrono::Duration::minutes(5);
    let from = to - chrono::Duration::days(30);
    let f = |t: DateTime<Utc>| {
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .replace('+', "%2B")
    };
    format!("from={}&to={}", f(from), f(to))
}

pub async fn run_case(
    api: &Client,
    case: &QueryCase,
    connections: usize,
    duration: Duration,
    max_ops: u64,
) -> LoadResult {
    let shared = Arc::new((api.clone(), case.call.clone(), case.token.clone()));
    let spread = case.spread;
    closed_loop(connections, duration, max_ops, move |_, n| {
        let shared = shared.clone();
        async move {
            let (api, call, token) = &*shared;
            let near;
            let call = if spread {
                let (lat, lon) = near_point(n);
                near = Call::near(lat, lon, NEAR_RADIUS_M);
                &near
            } else {
                call
            };
            let status = api.status(call, token.as_deref()).await?;
            if !status.is_success() {
                anyhow::bail!("HTTP {status}");
            }
            Ok(())
        }
    })
    .await
}

/// What the brute-force check of `near` found.
#[derive(Debug, Default, serde::Serialize)]
pub struct NearCheck {
    /// Sample points checked.
    pub points: usize,
    /// Reports the brute force found within the radius, over all points.
    pub within: usize,
    /// Points whose first page differs from the brute force's.
    pub mismatched: usize,
    /// Points that differ only by reports within 1 cm of the radius (float rounding).
    pub on_the_edge: usize,
}

/// Great-circle distance in metres (haversine; written out here, not the server's).
fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    const R: f64 = 6_371_008.8;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().min(1.0).asin()
}

/// Compares the public `near=` list's first page at `points` sample points of the city
/// with a brute-force scan of every projected report (public coordinates, every status
/// the public list shows, newest first).
pub async fn check_near(
    api: &Client,
    pool: &sqlx::PgPool,
    points: u64,
) -> anyhow::Result<NearCheck> {
    type Row = (uuid::Uuid, f64, f64, DateTime<Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, public_latitude, public_longitude, submitted_at FROM reports \
         WHERE status <> 'WITHDRAWN'",
    )
    .fetch_all(pool)
    .await?;
    let radius = f64::from(NEAR_RADIUS_M);
    let mut out = NearCheck::default();
    for k in 0..points {
        let (lat, lon) = near_point(k.wrapping_mul(7919));
        let page = api.run(&Call::near(lat, lon, NEAR_RADIUS_M), None).await?;
        let got: Vec<uuid::Uuid> = page["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["id"].as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let mut within: Vec<(&Row, f64)> = rows
            .iter()
            .map(|r| (r, haversine_m(lat, lon, r.1, r.2)))
            .filter(|(_, d)| *d <= radius + 0.01)
            .collect();
        out.points += 1;
        out.within += within.iter().filter(|(_, d)| *d <= radius).count();
        within.sort_by_key(|(r, _)| std::cmp::Reverse((r.3, r.0)));
        let strict: Vec<uuid::Uuid> = within
            .iter()
            .filter(|(_, d)| *d <= radius)
            .take(got.len().max(20))
            .map(|(r, _)| r.0)
            .collect();
        if got == strict {
            continue;
        }
        // Differences only among reports within 1 cm of the edge are float rounding.
        let edge = |id: &uuid::Uuid| {
            within
                .iter()
                .any(|(r, d)| r.0 == *id && (*d - radius).abs() <= 0.01)
        };
        let differs_off_edge = got
            .iter()
            .filter(|id| !strict.contains(id))
            .any(|id| !edge(id))
            || strict
                .iter()
                .filter(|id| !got.contains(id))
                .any(|id| !edge(id));
        if differs_off_edge {
            out.mismatched += 1;
        } else {
            out.on_the_edge += 1;
        }
    }
    Ok(out)
}

/// What one CSV export measured.
#[derive(Debug, Default, serde::Serialize)]
pub struct ExportRun {
    /// Data rows received (records after the header).
    pub rows: u64,
    pub bytes: u64,
    pub secs: f64,
    /// The server's resident memory before the export, and the most seen while it ran
    /// (sampled every 20 ms from `/proc`), in MiB.
    pub rss_before_mib: f64,
    pub rss_peak_mib: f64,
    /// Whether the body ended cleanly (a cut-off export is an error, never short).
    pub complete: bool,
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Streams `GET {path}` with `Accept: text/csv` as `token`, counting records by their
/// CRLF ends (the bench's titles hold no line breaks), while sampling the server's
/// memory.
pub async fn export_csv(
    api: &Client,
    path: &str,
    token: &str,
    server_pid: Option<u32>,
    limit: Duration,
) -> anyhow::Result<ExportRun> {
    use futures::StreamExt as _;
    let mut out = ExportRun {
        rss_before_mib: server_pid.and_then(rss_mib).unwrap_or(0.0),
        ..ExportRun::default()
    };
    out.rss_peak_mib = out.rss_before_mib;
    let started = std::time::Instant::now();
    let res = api
        .http
        .get(format!("{}{path}", api.base))
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, "text/csv")
        .timeout(limit)
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "export: HTTP {}", res.status());
    let mut body = res.bytes_stream();
    let mut lines = 0u64;
    let mut sampled = std::time::Instant::now();
    let mut prev_cr = false;
    loop {
        match body.next().await {
            None => {
                out.complete = true;
                break;
            }
            Some(Err(e)) => {
                eprintln!("  export: the body broke off: {e}");
                break;
            }
            Some(Ok(chunk)) => {
                out.bytes += chunk.len() as u64;
                for &b in chunk.iter() {
                    if b == b'\n' && prev_cr {
                        lines += 1;
                    }
                    prev_cr = b == b'\r';
                }
            }
        }
        if sampled.elapsed() >= Duration::from_millis(20) {
            sampled = std::time::Instant::now();
            if let Some(rss) = server_pid.and_then(rss_mib) {
                out.rss_peak_mib = out.rss_peak_mib.max(rss);
            }
        }
    }
    out.secs = started.elapsed().as_secs_f64();
    out.rows = lines.saturating_sub(1);
    Ok(out)
}
