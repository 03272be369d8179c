//! The public list's `near=` (`GET /crimes?near=lat,lon&radius_m=500`, anonymous) timed
//! in PostgreSQL alone: `tools/near-sql/run.sh` builds a database of synthetic reports
//! spread over the bench's city and runs this against it. For the statement of today's
//! [`queries::list_reports`] (sent by that very function: the server's SQL, prepared and
//! bound as the server does) and for the statement before the public-cell index (commit
//! dafb9c5: one walk of `geo_cell` per cell, a page each, then the newest page), and for
//! [`queries::list_public_reports`] (the same statement selecting the public columns
//! alone: what the server sends for an anonymous caller since 2026-11-30), it
//! prints the plan at one point, then `CLIENTS` connections asking at random points of
//! the city for `SECONDS`: queries per second, latency percentiles and the CPU of the
//! PostgreSQL backends per query (from `/proc/<pid>/stat` of each connection's
//! backend: PostgreSQL must run on this machine). Last, it checks the first page of
//! the three statements at 25 points against a brute-force scan of the table.
//!
//!     cargo run -q -p precinct-readmodel --example near_sql -- DATABASE_URL [CLIENTS] [SECONDS]
//!
//! Loopback only; bounded by SECONDS.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use precinct_domain::values::ReportStatus;
use precinct_readmodel::queries::{
    self, Coordinates, Near, PageRequest, ReportFilter, ReportRow, REPORT_COLUMNS,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

/// The bench's city (`precinct-bench`'s `world`): its centre and half side in degrees.
const LAT: f64 = 7.07;
const LON: f64 = 125.61;
const HALF_SIDE: f64 = 0.05;
const RADIUS_M: f64 = 500.0;
const EARTH_RADIUS_M: f64 = 6_371_008.8;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Commit dafb9c5's statement.
    Before,
    /// `queries::list_reports`: every column.
    Now,
    /// `queries::list_public_reports`: the public columns.
    Public,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .ok_or("usage: near_sql DATABASE_URL [CLIENTS] [SECONDS]")?;
    let clients: usize = args.get(2).map_or(Ok(2), |a| a.parse())?;
    let seconds: u64 = args.get(3).map_or(Ok(10), |a| a.parse())?;
    let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
    let (total, listed): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status <> 'WITHDRAWN') FROM reports",
    )
    .fetch_one(&pool)
    .await?;
    println!(
        "{total} reports ({listed} publicly listed) over ({LAT}, {LON}) ± {HALF_SIDE}°; \
         r = {RADIUS_M} m, the public list's first page (20 + 1 rows)"
    );
    let (lat, lon) = point(0);
    let filter = public_filter(lat, lon);
    println!(
        "\nEXPLAIN (ANALYZE, BUFFERS) of list_public_reports at ({lat:.5}, {lon:.5}), {} cells:",
        queries::near_cells(filter.near.as_ref().ok_or("near")?).map_or(0, |c| c.len())
    );
    for _ in 0..6 {
        // Warm the caches. The EXPLAIN below is a statement of its own, so PostgreSQL
        // plans it for these parameters (a custom plan); `list_public_reports` runs on
        // its generic plan after five executions: the same walks, the cells as parameters.
        queries::list_public_reports(&pool, &filter, &PageRequest::default()).await?;
    }
    for line in queries::explain_list_reports(&pool, &filter, &PageRequest::default(), true).await?
    {
        println!("  {line}");
    }
    pool.close().await;

    println!("\n{clients} connections × {seconds} s at random points of the city:");
    for shape in [Shape::Before, Shape::Now, Shape::Public] {
        let run = load(url, shape, clients, Duration::from_secs(seconds)).await?;
        println!("  {run}");
    }
    check(url).await
}

/// A point of the city for `n`, spread evenly by a hash (SplitMix64's finaliser).
fn point(n: u64) -> (f64, f64) {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let unit = |z: u64| (z >> 11) as f64 / (1u64 << 53) as f64;
    let a = mix(n ^ 0x6E65_6172);
    let b = mix(a);
    (
        LAT + (unit(a) * 2.0 - 1.0) * HALF_SIDE,
        LON + (unit(b) * 2.0 - 1.0) * HALF_SIDE,
    )
}

/// What `GET /crimes?near=lat,lon&radius_m=500` asks for an anonymous caller.
fn public_filter(lat: f64, lon: f64) -> ReportFilter {
    ReportFilter {
        status: Some(
            ReportStatus::ALL
                .iter()
                .filter(|s| **s != ReportStatus::Withdrawn)
                .map(|s| s.as_str().to_owned())
                .collect(),
        ),
        near: Some(Near {
            coordinates: Coordinates::Public,
            ..Near::new(lat, lon, RADIUS_M)
        }),
        ..ReportFilter::default()
    }
}

/// The ids of the first page (each shape decodes its whole rows first, as its caller would).
async fn first_page(pool: &PgPool, shape: Shape, lat: f64, lon: f64) -> Res<Vec<Uuid>> {
    let filter = public_filter(lat, lon);
    let page = PageRequest::default();
    Ok(match shape {
        Shape::Now => ids(queries::list_reports(pool, &filter, &page)
            .await?
            .items
            .iter()
            .map(|r| r.id)),
        Shape::Public => ids(queries::list_public_reports(pool, &filter, &page)
            .await?
            .items
            .iter()
            .map(|r| r.id)),
        Shape::Before => ids(before(pool, &filter).await?.iter().take(20).map(|r| r.id)),
    })
}

fn ids(rows: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    rows.collect()
}

/// Commit dafb9c5's statement for the public list's first page (its `list_reports`
/// with `near` in public coordinates, within its 100-cell limit).
async fn before(pool: &PgPool, filter: &ReportFilter) -> Res<Vec<ReportRow>> {
    let near = filter.near.ok_or("near")?;
    let angular = near.radius_m / EARTH_RADIUS_M;
    let dlat = angular.to_degrees() * 1.0001;
    let dlon = (angular.sin() / near.latitude.to_radians().cos())
        .asin()
        .to_degrees()
        * 1.0001;
    let (lat_min, lat_max) = (near.latitude - dlat, near.latitude + dlat);
    let (lon_min, lon_max) = (near.longitude - dlon, near.longitude + dlon);
    // Its `near_cells`: 0.0025° cells of the exact location, the box widened by the
    // public rounding, less the cells clearly outside the circle.
    let margin = 0.000_51;
    let idx = |v: f64| (v * 400.0).floor() as i64;
    let keep_within = near.radius_m + (near.radius_m * 1e-3).max(1.0);
    let mut cells = Vec::new();
    for i in idx(lat_min - margin)..=idx(lat_max + margin) {
        for j in idx(lon_min - margin)..=idx(lon_max + margin) {
            let (lo_lat, hi_lat) = (i as f64 / 400.0 - margin, (i + 1) as f64 / 400.0 + margin);
            let (lo_lon, hi_lon) = (j as f64 / 400.0 - margin, (j + 1) as f64 / 400.0 + margin);
            let (clat, clon) = (
                near.latitude.clamp(lo_lat, hi_lat),
                near.longitude.clamp(lo_lon, hi_lon),
            );
            if haversine_m(near.latitude, near.longitude, clat, clon) <= keep_within {
                cells.push(i * 144_001 + j);
            }
        }
    }
    let sql = format!(
        "SELECT {REPORT_COLUMNS} FROM reports WHERE id IN (SELECT k.id FROM unnest($1::bigint[]) \
         AS c(cell) CROSS JOIN LATERAL (SELECT id, submitted_at FROM reports WHERE geo_cell = \
         c.cell AND status = ANY($2) AND public_latitude BETWEEN $3 AND $4 AND \
         public_longitude BETWEEN $5 AND $6 AND 2 * $7 * asin(least(1.0, sqrt(power(sin(\
         radians(public_latitude - $8) / 2), 2) + cos(radians($9)) * cos(radians(\
         public_latitude)) * power(sin(radians(public_longitude - $10) / 2), 2)))) <= $11 \
         ORDER BY submitted_at DESC, id DESC LIMIT $12) k ORDER BY k.submitted_at DESC, \
         k.id DESC LIMIT $13) ORDER BY submitted_at DESC, id DESC LIMIT $14"
    );
    Ok(sqlx::query_as(&sql)
        .bind(cells)
        .bind(filter.status.clone())
        .bind(lat_min)
        .bind(lat_max)
        .bind(lon_min)
        .bind(lon_max)
        .bind(EARTH_RADIUS_M)
        .bind(near.latitude)
        .bind(near.latitude)
        .bind(near.longitude)
        .bind(near.radius_m)
        .bind(21i64)
        .bind(21i64)
        .bind(21i64)
        .fetch_all(pool)
        .await?)
}

fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let h = ((p2 - p1) / 2.0).sin().powi(2)
        + p1.cos() * p2.cos() * ((lon2 - lon1).to_radians() / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

struct Run {
    shape: Shape,
    queries: usize,
    seconds: f64,
    latencies_ms: Vec<f64>,
    backend_cpu_ms: f64,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |p: f64| {
            let i = ((self.latencies_ms.len() as f64 * p) as usize)
                .min(self.latencies_ms.len().saturating_sub(1));
            self.latencies_ms.get(i).copied().unwrap_or(f64::NAN)
        };
        let name = match self.shape {
            Shape::Before => "before (dafb9c5)",
            Shape::Now => "now (list_reports)",
            Shape::Public => "public columns (list_public_reports)",
        };
        write!(
            f,
            "{name:<37} {:>6} queries, {:>6.0} q/s, p50 {:>6.2} ms, p99 {:>6.2} ms, \
             PostgreSQL CPU {:.3} ms/query",
            self.queries,
            self.queries as f64 / self.seconds,
            pct(0.5),
            pct(0.99),
            self.backend_cpu_ms / self.queries.max(1) as f64,
        )
    }
}

/// `clients` connections, each asking at the next random point until `time` is up.
async fn load(url: &str, shape: Shape, clients: usize, time: Duration) -> Res<Run> {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .connect(&url)
                .await?;
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&pool)
                .await?;
            let mut n = (c as u64 + 1) << 32;
            // Warm the connection: prepared statements, PostgreSQL's plan cache.
            for _ in 0..20 {
                n += 1;
                let (lat, lon) = point(n);
                first_page(&pool, shape, lat, lon).await?;
            }
            let cpu0 = backend_cpu_ms(pid)?;
            let start = Instant::now();
            let mut latencies = Vec::new();
            while start.elapsed() < time {
                n += 1;
                let (lat, lon) = point(n);
                let t = Instant::now();
                first_page(&pool, shape, lat, lon).await?;
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let cpu = backend_cpu_ms(pid)? - cpu0;
            pool.close().await;
            Res::Ok((latencies, cpu, start.elapsed().as_secs_f64()))
        }));
    }
    let mut run = Run {
        shape,
        queries: 0,
        seconds: 0.0,
        latencies_ms: Vec::new(),
        backend_cpu_ms: 0.0,
    };
    for t in tasks {
        let (latencies, cpu, secs) = t.await??;
        run.queries += latencies.len();
        run.latencies_ms.extend(latencies);
        run.backend_cpu_ms += cpu;
        run.seconds = run.seconds.max(secs);
    }
    run.latencies_ms.sort_by(f64::total_cmp);
    Ok(run)
}

/// User + system CPU of a process so far, in milliseconds (`/proc/<pid>/stat`, in
/// clock ticks of 10 ms: `getconf CLK_TCK` is 100 on Linux).
fn backend_cpu_ms(pid: i32) -> Res<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat (is PostgreSQL on this machine?): {e}"))?;
    let rest = stat.rsplit_once(") ").ok_or("stat")?.1;
    let fields: Vec<&str> = rest.split(' ').collect();
    // After "(comm) ": state is field 3, utime 14 and stime 15 of the whole line.
    let ticks: u64 = fields.get(11).ok_or("utime")?.parse::<u64>()?
        + fields.get(12).ok_or("stime")?.parse::<u64>()?;
    Ok(ticks as f64 * 10.0)
}

/// The three statements' first page at 25 points against a scan of the whole table (as
/// precinct-bench's `queries::check_near`: differences only among reports within 1 cm
/// of the circle would be float rounding, and are counted apart).
async fn check(url: &str) -> Res<()> {
    type Row = (Uuid, f64, f64, DateTime<Utc>);
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, public_latitude, public_longitude, submitted_at FROM reports \
         WHERE status <> 'WITHDRAWN'",
    )
    .fetch_all(&pool)
    .await?;
    let (mut equal, mut edge, mut within) = (0, 0, 0);
    let points = 25u64;
    for k in 0..points {
        let (lat, lon) = point(k.wrapping_mul(7919) + 1_000_000);
        let mut want: Vec<(&Row, f64)> = rows
            .iter()
            .map(|r| (r, haversine_m(lat, lon, r.1, r.2)))
            .filter(|(_, d)| *d <= RADIUS_M + 0.01)
            .collect();
        within += want.iter().filter(|(_, d)| *d <= RADIUS_M).count();
        want.sort_by_key(|(r, _)| std::cmp::Reverse((r.3, r.0)));
        let on_edge = want.iter().any(|(_, d)| (d - RADIUS_M).abs() <= 0.01);
        let strict: Vec<Uuid> = want
            .iter()
            .filter(|(_, d)| *d <= RADIUS_M)
            .take(20)
            .map(|(r, _)| r.0)
            .collect();
        let now = first_page(&pool, Shape::Now, lat, lon).await?;
        let public = first_page(&pool, Shape::Public, lat, lon).await?;
        let was = first_page(&pool, Shape::Before, lat, lon).await?;
        if now == strict && public == strict && was == strict {
            equal += 1;
        } else if on_edge {
            edge += 1;
        } else {
            return Err(format!(
                "({lat}, {lon}): list_reports {now:?}, list_public_reports {public:?}, \
                 before {was:?}, brute force {strict:?}"
            )
            .into());
        }
    }
    println!(
        "\ncheck: {equal} of {points} points' first pages equal to a brute-force scan for \
         the three statements ({edge} differing only within 1 cm of the circle; {} reports \
         per circle on average)",
        within / points as usize
    );
    Ok(())
}
