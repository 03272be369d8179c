//! The world the workloads run in, created over HTTP exactly as a client would (the same
//! calls as `tests/src/app.rs`): stations, accounts (registered by the ADMIN, then
//! logged in), patrols.

use std::time::Instant;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::load::Http;

pub const PASSWORD: &str = "bench-passw0rd-123";
/// Centre of the intake/lifecycle/query precinct.
pub const LAT: f64 = 7.07;
pub const LON: f64 = 125.61;
/// Half the side of every precinct's square, in degrees.
pub const HALF: f64 = 0.05;
/// Requests in flight while setting up.
const SETUP_CONCURRENCY: usize = 16;

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub token: String,
}

#[derive(Debug, Clone)]
pub struct Patrol {
    pub id: String,
    pub station: String,
    /// A member's token.
    pub token: String,
}

#[derive(Debug, Clone)]
pub struct World {
    pub dispatcher: Account,
    pub supervisor: Account,
    pub citizens: Vec<Account>,
    /// Lifecycle patrols of `station`, one officer each.
    pub lifecycle: Vec<Patrol>,
    /// Location stations and one dispatcher (SSE watcher) of each.
    pub location_stations: Vec<(String, Account)>,
    pub location_patrols: Vec<Patrol>,
}

/// The centre of location station `i`.
pub fn location_centre(i: usize) -> (f64, f64) {
    (8.0 + 0.2 * (i % 10) as f64, 124.0 + 0.2 * (i / 10) as f64)
}

pub async fn login(http: &Http, email: &str, password: &str) -> anyhow::Result<Account> {
    let body = http
        .post(
            "/users/login",
            None,
            &json!({"email": email, "password": password}),
        )
        .await?
        .ok("login")?;
    Ok(Account {
        id: body["user"]["id"].as_str().unwrap_or_default().to_string(),
        token: body["access_token"]
            .as_str()
            .context("login without access_token")?
            .to_string(),
    })
}

pub async fn precinct(
    http: &Http,
    admin: &str,
    name: &str,
    lat: f64,
    lon: f64,
) -> anyhow::Result<String> {
    let d = HALF;
    let ring = json!([
        [lon - d, lat - d],
        [lon + d, lat - d],
        [lon + d, lat + d],
        [lon - d, lat + d],
        [lon - d, lat - d]
    ]);
    let body = http
        .post(
            "/stations",
            Some(admin),
            &json!({"name": name, "kind": "PRECINCT", "latitude": lat, "longitude": lon,
                   "area": {"type": "Polygon", "coordinates": [ring]}}),
        )
        .await?
        .ok("create station")?;
    Ok(body["id"].as_str().unwrap_or_default().to_string())
}

/// Registers an account (staff by the ADMIN) and logs it in.
pub async fn account(
    http: &Http,
    admin: &str,
    tag: &str,
    role: &str,
    station: Option<&str>,
) -> anyhow::Result<Account> {
    let email = format!("{}-{tag}@bench.precinct.test", role.to_lowercase());
    let mut body = json!({"email": email, "password": PASSWORD, "name": format!("{role} {tag}")});
    let token = if role == "CITIZEN" {
        None
    } else {
        body["role"] = json!(role);
        if let Some(s) = station {
            body["station_id"] = json!(s);
        }
        Some(admin)
    };
    http.post("/users/register", token, &body)
        .await?
        .ok(&format!("register {role}"))?;
    login(http, &email, PASSWORD).await
}

pub async fn patrol(
    http: &Http,
    desk: &str,
    station: &str,
    call_sign: &str,
    officers: &[&str],
) -> anyhow::Result<String> {
    let body = http
        .post(
            "/patrols/register",
            Some(desk),
            &json!({"call_sign": call_sign, "station_id": station, "officer_ids": officers}),
        )
        .await?
        .ok("register patrol")?;
    Ok(body["id"].as_str().unwrap_or_default().to_string())
}

/// A report body inside the square of the precinct centred at (lat, lon).
pub fn report_body(n: u64, lat: f64, lon: f64) -> Value {
    // A deterministic spread over ±0.04° (inside the ±0.05° precinct).
    let fx = ((n.wrapping_mul(2_654_435_761) % 10_000) as f64 / 10_000.0 - 0.5) * 0.08;
    let fy = ((n.wrapping_mul(40_503) % 10_000) as f64 / 10_000.0 - 0.5) * 0.08;
    json!({
        "title": "Bike stolen",
        "description": "My blue bike was taken from the rack outside the market",
        "crime_types": ["Theft"],
        "location": {"latitude": lat + fy, "longitude": lon + fx,
                     "street": "1 Main St", "city": "Davao"},
        "contact": "+63 900 000 0000"
    })
}

async fn many<T, F, Fut>(n: usize, f: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    futures::stream::iter((0..n).map(f))
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await
}

impl World {
    pub async fn create(
        http: &Http,
        s: &crate::config::Settings,
        admin_email: &str,
        admin_password: &str,
        run: &str,
    ) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        let admin = login(http, admin_email, admin_password).await?.token;
        let station = precinct(http, &admin, "Bench Precinct", LAT, LON).await?;
        let dispatcher = account(
            http,
            &admin,
            &format!("{run}-desk"),
            "DISPATCHER",
            Some(&station),
        )
        .await?;
        let supervisor = account(
            http,
            &admin,
            &format!("{run}-sup"),
            "SUPERVISOR",
            Some(&station),
        )
        .await?;
        let citizens = many(s.citizens, |i| {
            let admin = &admin;
            async move { account(http, admin, &format!("{run}-{i}"), "CITIZEN", None).await }
        })
        .await?;
        eprintln!(
            "  world: precinct, desk and {} citizens in {:.1} s",
            citizens.len(),
            t0.elapsed().as_secs_f64()
        );

        let t1 = Instant::now();
        let officers = many(s.lifecycle_patrols, |i| {
            let (admin, station) = (&admin, &station);
            async move {
                account(
                    http,
                    admin,
                    &format!("{run}-lc{i}"),
                    "PATROL",
                    Some(station),
                )
                .await
            }
        })
        .await?;
        let lifecycle = many(s.lifecycle_patrols, |i| {
            let (officers, station, desk) = (&officers, &station, &dispatcher.token);
            async move {
                let id =
                    patrol(http, desk, station, &format!("LC-{i}"), &[&officers[i].id]).await?;
                Ok(Patrol {
                    id,
                    station: station.clone(),
                    token: officers[i].token.clone(),
                })
            }
        })
        .await?;
        eprintln!(
            "  world: {} lifecycle officers and patrols in {:.1} s",
            lifecycle.len(),
            t1.elapsed().as_secs_f64()
        );

        let t2 = Instant::now();
        let n_st = s.location_stations.max(1);
        let location_stations = many(n_st, |i| {
            let admin = &admin;
            async move {
                let (lat, lon) = location_centre(i);
                let st = precinct(http, admin, &format!("Bench Live {i}"), lat, lon).await?;
                let desk = account(
                    http,
                    admin,
                    &format!("{run}-live{i}"),
                    "DISPATCHER",
                    Some(&st),
                )
                .await?;
                Ok((st, desk))
            }
        })
        .await?;
        // Patrol p belongs to station p % n_st; officer o serves patrols of one station.
        let per_officer = s.patrols_per_officer.max(1);
        let n_patrols = s.location_patrols;
        let per_station: Vec<usize> = (0..n_st)
            .map(|st| (0..n_patrols).filter(|p| p % n_st == st).count())
            .collect();
        let officer_slots: Vec<(usize, usize)> = (0..n_st)
            .flat_map(|st| {
                let n = per_station[st].div_ceil(per_officer);
                (0..n).map(move |k| (st, k))
            })
            .collect();
        let loc_officers = many(officer_slots.len(), |j| {
            let (admin, stations, slots) = (&admin, &location_stations, &officer_slots);
            async move {
                let (st, k) = slots[j];
                let a = account(
                    http,
                    admin,
                    &format!("{run}-lo{st}-{k}"),
                    "PATROL",
                    Some(&stations[st].0),
                )
                .await?;
                Ok(((st, k), a))
            }
        })
        .await?;
        let officer_of = |st: usize, k: usize| -> &Account {
            &loc_officers
                .iter()
                .find(|((s2, k2), _)| *s2 == st && *k2 == k)
                .expect("officer slot")
                .1
        };
        let location_patrols = many(n_patrols, |p| {
            let st = p % n_st;
            let k = (p / n_st) / per_officer;
            let officer = officer_of(st, k).clone();
            let (stations, _) = (&location_stations, ());
            async move {
                let (station, desk) = &stations[st];
                let id = patrol(
                    http,
                    &desk.token,
                    station,
                    &format!("LIVE-{p}"),
                    &[&officer.id],
                )
                .await?;
                Ok(Patrol {
                    id,
                    station: station.clone(),
                    token: officer.token,
                })
            }
        })
        .await?;
        eprintln!(
            "  world: {} location stations, {} officers, {} patrols in {:.1} s",
            location_stations.len(),
            loc_officers.len(),
            location_patrols.len(),
            t2.elapsed().as_secs_f64()
        );
        Ok(Self {
            dispatcher,
            supervisor,
            citizens,
            lifecycle,
            location_stations,
            location_patrols,
        })
    }
}
