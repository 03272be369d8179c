//! The world the workloads run in, made with the shared world builder
//! (`precinct_tests::world`, the same one as the e2e suite and the chaos campaign): the
//! bench's precinct with its desk, citizens and lifecycle patrols, and the location
//! stations with their patrols (an officer may serve several of them).

use std::time::Instant;

use precinct_tests::client::{Call, Client, NewReport, Role, Session};
use precinct_tests::world::{many, Builder, Crew};

/// Centre of the intake/lifecycle/query precinct.
pub const LAT: f64 = 7.07;
pub const LON: f64 = 125.61;
/// Requests in flight while setting up.
const SETUP_CONCURRENCY: usize = 16;

#[derive(Debug, Clone)]
pub struct World {
    pub dispatcher: Session,
    pub supervisor: Session,
    pub citizens: Vec<Session>,
    /// Lifecycle patrols of the precinct, one officer each.
    pub lifecycle: Vec<Crew>,
    /// Location stations and one dispatcher (SSE watcher) of each.
    pub location_stations: Vec<(String, Session)>,
    pub location_patrols: Vec<Crew>,
}

/// The centre of location station `i`.
pub fn location_centre(i: usize) -> (f64, f64) {
    (8.0 + 0.2 * (i % 10) as f64, 124.0 + 0.2 * (i / 10) as f64)
}

/// Half the side of the city the seeded reports and the `near` queries spread over
/// (degrees; ±0.05° is about 11 km × 11 km, the bench precinct's square).
pub const CITY_HALF_SIDE: f64 = 0.05;

/// Point `n` of the city: spread over the whole square by a hash of `n` (SplitMix64),
/// every `n` its own place, no lattice and no copies.
pub fn city_point(n: u64) -> (f64, f64) {
    let a = mix(n);
    let b = mix(a);
    (
        LAT + (unit(a) * 2.0 - 1.0) * CITY_HALF_SIDE,
        LON + (unit(b) * 2.0 - 1.0) * CITY_HALF_SIDE,
    )
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash's top 53 bits as a number in [0, 1).
fn unit(z: u64) -> f64 {
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A number in [0, 1) for `n`, spread evenly by a hash (independent of `city_point`).
pub fn spread(n: u64) -> f64 {
    unit(mix(mix(mix(n))))
}

/// Report `n`, inside the square of the precinct centred at (lat, lon).
pub fn report(n: u64, lat: f64, lon: f64) -> Call {
    // A deterministic spread over ±0.04° (inside the ±0.05° precinct).
    let fx = ((n.wrapping_mul(2_654_435_761) % 10_000) as f64 / 10_000.0 - 0.5) * 0.08;
    let fy = ((n.wrapping_mul(40_503) % 10_000) as f64 / 10_000.0 - 0.5) * 0.08;
    let mut r = NewReport::bike(lat + fy, lon + fx);
    r.description = "My blue bike was taken from the rack outside the market";
    Call::submit(&r)
}

impl World {
    pub async fn create(
        api: &Client,
        s: &crate::config::Settings,
        admin_email: &str,
        admin_password: &str,
    ) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        let b = Builder::new(api, admin_email, admin_password, "bench.precinct.test")
            .await?
            .concurrency(SETUP_CONCURRENCY);
        let station = b.precinct("Bench Precinct", LAT, LON).await?.id;
        let dispatcher = b.account(Role::Dispatcher, Some(&station)).await?;
        let supervisor = b.account(Role::Supervisor, Some(&station)).await?;
        let citizens = b.accounts(Role::Citizen, None, s.citizens).await?;
        eprintln!(
            "  world: precinct, desk and {} citizens in {:.1} s",
            citizens.len(),
            t0.elapsed().as_secs_f64()
        );

        let t1 = Instant::now();
        let call_signs: Vec<String> = (0..s.lifecycle_patrols)
            .map(|i| format!("LC-{i}"))
            .collect();
        let lifecycle = b.crews(&dispatcher.token, &station, &call_signs).await?;
        eprintln!(
            "  world: {} lifecycle officers and patrols in {:.1} s",
            lifecycle.len(),
            t1.elapsed().as_secs_f64()
        );

        let t2 = Instant::now();
        let n_st = s.location_stations.max(1);
        let location_stations = many(SETUP_CONCURRENCY, n_st, |i| {
            let b = &b;
            async move {
                let (lat, lon) = location_centre(i);
                let st = b.precinct(&format!("Bench Live {i}"), lat, lon).await?.id;
                let desk = b.account(Role::Dispatcher, Some(&st)).await?;
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
        let loc_officers = many(SETUP_CONCURRENCY, officer_slots.len(), |j| {
            let (b, stations, (st, k)) = (&b, &location_stations, officer_slots[j]);
            async move {
                let a = b.account(Role::Patrol, Some(&stations[st].0)).await?;
                Ok(((st, k), a))
            }
        })
        .await?;
        let officer_of = |st: usize, k: usize| -> &Session {
            &loc_officers
                .iter()
                .find(|((s2, k2), _)| *s2 == st && *k2 == k)
                .expect("officer slot")
                .1
        };
        let location_patrols = many(SETUP_CONCURRENCY, n_patrols, |p| {
            let st = p % n_st;
            let officer = officer_of(st, (p / n_st) / per_officer).clone();
            let (b, (station, desk)) = (&b, &location_stations[st]);
            async move {
                let call_sign = format!("LIVE-{p}");
                let patrol = b
                    .patrol(&desk.token, station, &call_sign, &[&officer.id])
                    .await?;
                Ok(Crew {
                    patrol,
                    station: station.clone(),
                    officer,
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
