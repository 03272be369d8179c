//! The live path end to end: `PUT /patrols/{id}/location` → the positions stream →
//! the live hub → Server-Sent Events, the latest-position and track reads, the roster
//! in PostgreSQL, and the officer's inbox stream. Real NATS and PostgreSQL; every wait
//! is bounded.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use precinct_api::live::LiveConfig;
use precinct_projections::RosterOptions;
use precinct_tests::app::{Options, TestApp};
use precinct_tests::nats::PrivateNats;
use precinct_tests::prometheus;
use precinct_tests::sse::{SseClient, SseEvent};
use precinct_tests::unique_prefix;
use precinct_tests::world::{Spec, StationSpec};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;
const LAT_B: f64 = 9.0;
const LON_B: f64 = 127.0;
/// How long a subscriber may take to see a move before the test fails.
const MOVE_BOUND: Duration = Duration::from_secs(2);

struct World {
    app: TestApp,
    admin: String,
    station_a: String,
    station_b: String,
    dispatcher_a: String,
    dispatcher_b: String,
    officer_a_id: String,
    officer_a: String,
    patrol_a: String,
    officer_b: String,
    patrol_b: String,
}

async fn world_with(opts: Options) -> World {
    let app = TestApp::spawn_with(opts).await.expect("spawn");
    let spec = Spec {
        stations: vec![
            StationSpec::new("PS-A", LAT, LON)
                .dispatchers(1)
                .crews(&["ALPHA-1"]),
            StationSpec::new("PS-B", LAT_B, LON_B)
                .dispatchers(1)
                .crews(&["BRAVO-1"]),
        ],
        citizens: 0,
    };
    let built = app.world(&spec).await;
    let [a, b] = [&built.stations[0], &built.stations[1]];
    World {
        admin: built.admin.token.clone(),
        station_a: a.id().to_string(),
        station_b: b.id().to_string(),
        dispatcher_a: a.dispatchers[0].token.clone(),
        dispatcher_b: b.dispatchers[0].token.clone(),
        officer_a_id: a.crews[0].officer.id.clone(),
        officer_a: a.crews[0].officer.token.clone(),
        patrol_a: a.crews[0].patrol.clone(),
        officer_b: b.crews[0].officer.token.clone(),
        patrol_b: b.crews[0].patrol.clone(),
        app,
    }
}

async fn world() -> World {
    world_with(Options::default()).await
}

fn live(f: impl FnOnce(&mut LiveConfig)) -> Options {
    let mut opts = Options::default();
    f(&mut opts.live);
    opts
}

/// A position update; answers the positions-stream sequence.
async fn move_to(app: &TestApp, token: &str, patrol: &str, body: Value) -> u64 {
    let r = app
        .put(&format!("/patrols/{patrol}/location"), Some(token), body)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["patrol_id"], patrol);
    r.position()
}

async fn fix(app: &TestApp, token: &str, patrol: &str, lat: f64, lon: f64) -> u64 {
    move_to(
        app,
        token,
        patrol,
        json!({"latitude": lat, "longitude": lon}),
    )
    .await
}

fn position_ids(events: &[SseEvent]) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e.event == "position")
        .filter_map(|e| e.data["position"].as_u64())
        .collect()
}

#[tokio::test]
async fn a_move_reaches_its_station_within_the_bound_and_nobody_else() {
    let w = world().await;
    let app = &w.app;
    let mut desk_a = SseClient::open(app, "/patrols/stream", &w.dispatcher_a, None).await;
    let mut desk_b = SseClient::open(app, "/patrols/stream", &w.dispatcher_b, None).await;
    let mut admin = SseClient::open(app, "/patrols/stream", &w.admin, None).await;

    let sent = Instant::now();
    let seq_a = move_to(
        app,
        &w.officer_a,
        &w.patrol_a,
        json!({"latitude": LAT + 0.001, "longitude": LON, "heading": 90.0, "speed_mps": 12.5}),
    )
    .await;
    let acked = sent.elapsed();
    let got = desk_a
        .next_of("position", MOVE_BOUND)
        .await
        .expect("station A's desk sees A's move within the bound");
    println!(
        "move → SSE latency: {:.1} ms (PUT acknowledged after {:.1} ms)",
        (got.at - sent).as_secs_f64() * 1000.0,
        acked.as_secs_f64() * 1000.0
    );
    assert_eq!(got.id.as_deref(), Some(format!("p{seq_a}").as_str()));
    assert_eq!(got.data["patrol_id"], w.patrol_a.as_str());
    assert_eq!(got.data["station_id"], w.station_a.as_str());
    assert_eq!(got.data["latitude"], json!(LAT + 0.001));
    assert_eq!(got.data["heading"], json!(90.0));
    assert_eq!(got.data["speed_mps"], json!(12.5));

    let seq_b = fix(app, &w.officer_b, &w.patrol_b, LAT_B, LON_B).await;
    // Station B's desk gets B's move and never saw A's (it would have come first).
    let first_b = desk_b
        .next_of("position", MOVE_BOUND)
        .await
        .expect("station B's desk sees B's move");
    assert_eq!(first_b.data["position"], seq_b);
    assert_eq!(first_b.data["patrol_id"], w.patrol_b.as_str());
    // ADMIN sees both, in order.
    let a = admin
        .next_of("position", MOVE_BOUND)
        .await
        .expect("admin: A");
    let b = admin
        .next_of("position", MOVE_BOUND)
        .await
        .expect("admin: B");
    assert_eq!(
        (a.data["position"].as_u64(), b.data["position"].as_u64()),
        (Some(seq_a), Some(seq_b))
    );
    // And A's desk does not get B's move.
    assert!(position_ids(&desk_a.drain(Duration::from_millis(300)).await).is_empty());

    // A dispatcher may not watch another station; a citizen may not watch at all.
    let other = SseClient::request(
        app,
        &format!("/patrols/stream?station_id={}", w.station_a),
        &w.dispatcher_b,
        None,
    )
    .await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    let (_, citizen) = app.account(&w.admin, "CITIZEN", None).await;
    let citizen_res = SseClient::request(app, "/patrols/stream", &citizen, None).await;
    assert_eq!(citizen_res.status(), StatusCode::FORBIDDEN);

    // ADMIN may narrow to one station.
    let mut admin_b = SseClient::open(
        app,
        &format!("/patrols/stream?station_id={}", w.station_a),
        &w.admin,
        None,
    )
    .await;
    // A new subscriber starts with the latest position of each patrol in scope.
    let snapshot = admin_b.drain(Duration::from_millis(300)).await;
    assert_eq!(position_ids(&snapshot), [seq_a]);
    let mut fresh_admin = SseClient::open(app, "/patrols/stream", &w.admin, None).await;
    let snapshot = fresh_admin.drain(Duration::from_millis(300)).await;
    assert_eq!(position_ids(&snapshot), [seq_a, seq_b]);

    // /metrics counts the accepted fixes and the open streams (desk A, desk B, three
    // admin streams); a dropped stream leaves the gauge.
    let gauge = |m: &str| prometheus::sample(m, "precinct_sse_subscribers");
    let m = metrics_text(app, &w.admin).await;
    assert_eq!(
        prometheus::sample(&m, "precinct_location_updates_total"),
        Some(2.0)
    );
    assert_eq!(gauge(&m), Some(5.0));
    drop(fresh_admin);
    // The server learns of the close when it next writes to that connection.
    let mut left = None;
    for i in 0..50 {
        if i % 10 == 0 {
            fix(app, &w.officer_a, &w.patrol_a, LAT, LON + 0.0001 * i as f64).await;
        }
        left = gauge(&metrics_text(app, &w.admin).await);
        if left == Some(4.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, Some(4.0), "a closed stream leaves the gauge");
}

async fn metrics_text(app: &TestApp, admin: &str) -> String {
    let (status, text) = prometheus::scrape(app, Some(admin)).await;
    assert_eq!(status, StatusCode::OK);
    text
}

#[tokio::test]
async fn status_changes_are_streamed_to_the_station() {
    let w = world().await;
    let app = &w.app;
    let mut desk_a = SseClient::open(app, "/patrols/stream", &w.dispatcher_a, None).await;
    let r = app
        .put(
            &format!("/patrols/{}/status", w.patrol_a),
            Some(&w.officer_a),
            json!({"status": "OFF_DUTY"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ev = desk_a
        .next_of("status", MOVE_BOUND)
        .await
        .expect("status change streamed");
    assert_eq!(ev.id, Some(format!("e{}", r.position())));
    assert_eq!(ev.data["patrol_id"], w.patrol_a.as_str());
    assert_eq!(ev.data["status"], "OFF_DUTY");
    assert_eq!(ev.data["cause"], "MANUAL");
}

/// Disconnects after some moves, misses some, reconnects with `Last-Event-ID`.
async fn resume_misses_nothing(opts: Options) {
    let w = world_with(opts).await;
    let app = &w.app;
    let mut first = SseClient::open(app, "/patrols/stream", &w.dispatcher_a, None).await;
    let mut seen = Vec::new();
    for i in 0..3 {
        seen.push(
            fix(
                app,
                &w.officer_a,
                &w.patrol_a,
                LAT + 0.001 * f64::from(i),
                LON,
            )
            .await,
        );
    }
    let mut last_id = None;
    for _ in 0..3 {
        let ev = first.next_of("position", MOVE_BOUND).await.expect("live");
        last_id = ev.id.clone();
    }
    assert_eq!(last_id, Some(format!("p{}", seen[2])));
    drop(first);

    let mut missed = Vec::new();
    for i in 0..5 {
        missed.push(
            fix(
                app,
                &w.officer_a,
                &w.patrol_a,
                LAT,
                LON + 0.001 * f64::from(i),
            )
            .await,
        );
        // Other stations' moves interleave; they must not be replayed to station A.
        fix(app, &w.officer_b, &w.patrol_b, LAT_B, LON_B).await;
    }
    let mut again =
        SseClient::open(app, "/patrols/stream", &w.dispatcher_a, last_id.as_deref()).await;
    let replayed = again.drain(Duration::from_millis(500)).await;
    assert_eq!(
        position_ids(&replayed),
        missed,
        "exactly the missed moves, in order"
    );
    // Then live again.
    let next = fix(app, &w.officer_a, &w.patrol_a, LAT, LON).await;
    let ev = again
        .next_of("position", MOVE_BOUND)
        .await
        .expect("live after resume");
    assert_eq!(ev.data["position"], next);
}

#[tokio::test]
async fn reconnecting_with_last_event_id_misses_nothing() {
    // The missed moves are still in the hub's ring of recent frames.
    resume_misses_nothing(Options::default()).await;
}

#[tokio::test]
async fn reconnecting_after_the_ring_moved_on_replays_from_jetstream() {
    // A ring of 2 frames: the missed moves must come from the positions stream.
    resume_misses_nothing(live(|l| l.recent = 2)).await;
}

async fn hub_stats(app: &TestApp, admin: &str) -> Value {
    app.get("/admin/live", Some(admin)).await.body
}

#[tokio::test]
async fn a_slow_subscriber_is_dropped_and_the_others_get_every_update() {
    let w = world_with(live(|l| l.client_buffer = 256)).await;
    let app = &w.app;
    let mut fast = SseClient::open(app, "/patrols/stream", &w.dispatcher_a, None).await;
    // A client that sends its request and never reads, with a tiny receive buffer.
    let addr: std::net::SocketAddr = app
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut slow = socket.connect(addr).await.expect("connect");
    slow.write_all(
        format!(
            "GET /patrols/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
            w.dispatcher_a
        )
        .as_bytes(),
    )
    .await
    .expect("request");

    // Filling the slow client's socket buffers takes thousands of frames: publish
    // straight to the positions stream (what the API does after its checks).
    let positions = app.log.positions();
    let patrol = uuid::Uuid::parse_str(&w.patrol_a).expect("uuid");
    let station = uuid::Uuid::parse_str(&w.station_a).expect("uuid");
    let officer = uuid::Uuid::parse_str(&w.officer_a_id).expect("uuid");
    let publish = |i: u32| {
        let positions = positions.clone();
        async move {
            let now = chrono::Utc::now();
            positions
                .publish(&precinct_eventlog::PatrolMoved {
                    patrol_id: patrol,
                    station_id: station,
                    officer_id: officer,
                    latitude: LAT + 0.000_001 * f64::from(i % 10_000),
                    longitude: LON,
                    heading: None,
                    speed_mps: None,
                    recorded_at: now,
                    received_at: now,
                })
                .await
                .expect("published")
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut published = Vec::new();
    let mut n = 0u32;
    loop {
        let seqs: Vec<u64> = futures::stream::iter(n..n + 1000)
            .map(publish)
            .buffer_unordered(32)
            .collect()
            .await;
        n += 1000;
        published.extend(seqs);
        let s = hub_stats(app, &w.admin).await;
        if s["dropped_slow_clients"].as_u64() >= Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slow client was not dropped after {} updates: {s}",
            published.len()
        );
    }
    let before_drop = published.len();
    // More updates after the drop, through the API this time.
    for i in 0..50 {
        published.push(
            fix(
                app,
                &w.officer_a,
                &w.patrol_a,
                LAT,
                LON + 0.00001 * f64::from(i),
            )
            .await,
        );
    }
    let s = hub_stats(app, &w.admin).await;
    println!("slow client dropped after about {before_drop} updates; hub: {s}");
    assert_eq!(
        s["dropped_slow_clients"], 1,
        "only the slow client was dropped: {s}"
    );
    assert_eq!(s["subscribers"], 1, "{s}");
    published.sort_unstable();
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.len() < published.len() && Instant::now() < deadline {
        match fast.next_of("position", Duration::from_secs(2)).await {
            Some(ev) => received.extend(ev.data["position"].as_u64()),
            None => break,
        }
    }
    assert_eq!(
        received.len(),
        published.len(),
        "the fast subscriber got every update"
    );
    assert!(received == published, "in stream order");
    // The server ended the slow client's response: once it reads, it reaches the end
    // of what was buffered for it (the last chunk of a chunked body).
    let mut sink = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tokio::io::AsyncReadExt::read(&mut slow, &mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => sink.extend_from_slice(&buf[..n]),
            }
            if sink.ends_with(b"\r\n0\r\n\r\n") {
                return true;
            }
        }
    })
    .await;
    assert_eq!(ended, Ok(true), "the slow client's response was ended");
    assert!(String::from_utf8_lossy(&sink).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn positions_are_validated_and_only_members_may_send_them() {
    let w = world().await;
    let app = &w.app;
    let positions = app.log.positions();
    let head = positions.head().await.expect("head");
    let url = format!("/patrols/{}/location", w.patrol_a);
    let future = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc3339();
    let ancient = (chrono::Utc::now() - chrono::Duration::hours(25)).to_rfc3339();
    for (body, field) in [
        (json!({"latitude": 90.5, "longitude": LON}), "latitude"),
        (json!({"latitude": LAT, "longitude": -181}), "longitude"),
        (
            json!({"latitude": LAT, "longitude": LON, "heading": 360}),
            "heading",
        ),
        (
            json!({"latitude": LAT, "longitude": LON, "heading": -1}),
            "heading",
        ),
        (
            json!({"latitude": LAT, "longitude": LON, "speed_mps": 151}),
            "speed_mps",
        ),
        (
            json!({"latitude": LAT, "longitude": LON, "recorded_at": future}),
            "recorded_at",
        ),
        (
            json!({"latitude": LAT, "longitude": LON, "recorded_at": ancient}),
            "recorded_at",
        ),
        (json!({"latitude": "north", "longitude": LON}), "latitude"),
        (json!({"longitude": LON}), "latitude"),
        (
            json!({"latitude": LAT, "longitude": LON, "altitude": 3}),
            "altitude",
        ),
    ] {
        let r = app.put(&url, Some(&w.officer_a), body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            fields.iter().any(|f| f.contains(field)),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(
        positions.head().await.expect("head"),
        head,
        "nothing appended"
    );

    // Not a member: an officer of the same station is refused (403); anyone who
    // may not see the patrol gets 404, as for an unknown patrol.
    let (_, same_station) = app.account(&w.admin, "PATROL", Some(&w.station_a)).await;
    let ok = json!({"latitude": LAT, "longitude": LON});
    let r = app.put(&url, Some(&same_station), ok.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app.put(&url, Some(&w.dispatcher_a), ok.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app.put(&url, Some(&w.officer_b), ok.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let (_, citizen) = app.account(&w.admin, "CITIZEN", None).await;
    let r = app.put(&url, Some(&citizen), ok.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app.put(&url, None, ok.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let unknown = format!("/patrols/{}/location", uuid::Uuid::new_v4());
    let r = app.put(&unknown, Some(&w.officer_a), ok.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(
        positions.head().await.expect("head"),
        head,
        "nothing appended"
    );

    // A member's valid fix is accepted; the body names its sequence and time.
    let at = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let r = app
        .put(
            &url,
            Some(&w.officer_a),
            json!({"latitude": LAT, "longitude": LON, "recorded_at": at}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.position(), head + 1);
    assert_eq!(
        r.body["recorded_at"]
            .as_str()
            .and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok()),
        at.parse().ok()
    );
}

/// A position update retried until it is accepted (the app reconnecting to NATS answers
/// 503 meanwhile); answers its sequence.
async fn fix_when_up(app: &TestApp, token: &str, patrol: &str, lon: f64) -> u64 {
    let url = format!("/patrols/{patrol}/location");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = json!({"latitude": LAT, "longitude": lon});
        let r = app.put(&url, Some(token), body).await;
        if r.status == StatusCode::ACCEPTED {
            return r.position();
        }
        assert!(
            Instant::now() < deadline,
            "not accepted within 20 s: {}",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The longitudes of the positions `watcher` receives until it has all of `want` or
/// `wait` passes.
async fn longitudes_until(watcher: &mut SseClient, want: &[f64], wait: Duration) -> Vec<f64> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    while !want.iter().all(|w| got.contains(w)) {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        let Some(ev) = watcher.next_of("position", left).await else {
            break;
        };
        got.extend(ev.data["longitude"].as_f64());
    }
    got
}

/// A single nats-server persisting positions asynchronously can come back from a kill
/// without its last positions, and gives their sequences to the next ones (ADR 0005,
/// issue 21 addendum). Made exact here: the store is copied while the server is
/// stopped, three more positions are fanned out, then the server is killed and the copy
/// put back. The watchers must still get the positions under the reused sequences.
#[tokio::test]
async fn positions_under_sequences_the_stream_lost_and_reused_still_reach_watchers() {
    let mut nats = PrivateNats::start().expect("private nats");
    let w = world_with(Options {
        nats_url: nats.url(),
        roster: RosterOptions {
            location_interval: Duration::from_millis(200),
            ..RosterOptions::default()
        },
        ..Options::default()
    })
    .await;
    let app = &w.app;
    let copy = std::env::temp_dir().join(format!("precinct-store-{}", unique_prefix()));
    let lon = |i: u32| LON + 0.000_01 * f64::from(i);
    let lons = |r: std::ops::Range<u32>| r.map(lon).collect::<Vec<_>>();
    let mut watcher = SseClient::open(app, "/patrols/stream", &w.dispatcher_a, None).await;
    let (officer, patrol) = (&w.officer_a, &w.patrol_a);
    for i in 0..3 {
        fix_when_up(app, officer, patrol, lon(i)).await;
    }
    let got = longitudes_until(&mut watcher, &lons(0..3), MOVE_BOUND).await;
    assert_eq!(got, lons(0..3));

    // Stopped cleanly (everything written), the store copied, started again: a
    // reconnect that lost nothing lets no watcher go.
    nats.stop().expect("stopped");
    nats.copy_store(&copy).expect("store copied");
    nats.start_again().expect("started");
    let mut lost = Vec::new();
    for i in 3..6 {
        lost.push(fix_when_up(app, officer, patrol, lon(i)).await);
    }
    let got = longitudes_until(&mut watcher, &lons(3..6), Duration::from_secs(10)).await;
    assert_eq!(got, lons(3..6), "the same stream, live across the restart");
    // The roster has consumed them too.
    roster_reaches(app, patrol, lon(5)).await;

    // Killed, and back without the last three: the next three get their sequences, and
    // two more go beyond them (a follower that looked only at the newest would see
    // its last sequence held, and skip the three).
    nats.kill();
    nats.restore_store(&copy).expect("store restored");
    nats.start_again().expect("started");
    let mut reused = Vec::new();
    for i in 6..11 {
        reused.push(fix_when_up(app, officer, patrol, lon(i)).await);
    }
    let _ = std::fs::remove_dir_all(&copy);
    assert_eq!(
        reused[..3],
        lost,
        "the stream gave the lost sequences to new positions"
    );

    // The hub rewinds and lets its watchers go; one coming back with its last id gets
    // the three new positions.
    assert!(
        watcher.ends_within(Duration::from_secs(10)).await,
        "the watcher's stream ends at the rewind"
    );
    let last = format!("p{}", lost[2]);
    let mut again = SseClient::open(app, "/patrols/stream", &w.dispatcher_a, Some(&last)).await;
    let got = longitudes_until(&mut again, &lons(6..11), Duration::from_secs(10)).await;
    assert!(
        lons(6..11).iter().all(|l| got.contains(l)),
        "the positions under reused sequences reach the watcher: got {got:?}"
    );
    // A fresh watcher's snapshot holds the patrol's newest position, and so does the
    // roster (which had consumed the lost sequences too).
    let mut fresh = SseClient::open(app, "/patrols/stream", &w.dispatcher_a, None).await;
    let got = longitudes_until(&mut fresh, &[lon(10)], MOVE_BOUND).await;
    assert_eq!(got, [lon(10)]);
    roster_reaches(app, patrol, lon(10)).await;
}

/// Waits (bounded, 15 s) for the roster to hold `lon` as `patrol`'s longitude.
async fn roster_reaches(app: &TestApp, patrol: &str, lon: f64) {
    let id = uuid::Uuid::parse_str(patrol).expect("uuid");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let held: Option<f64> = sqlx::query_scalar("SELECT longitude FROM patrols WHERE id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .expect("patrol row");
        if held == Some(lon) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the roster holds {held:?}, not {lon}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded, 15 s) for the roster's checkpoint to reach `seq`.
async fn roster_consumed(app: &TestApp, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let at: Option<i64> =
            sqlx::query_scalar("SELECT position FROM checkpoints WHERE projection = $1")
                .bind(precinct_projections::roster::NAME)
                .fetch_optional(&app.pool)
                .await
                .expect("checkpoint");
        if at.is_some_and(|at| at >= i64::try_from(seq).unwrap_or(i64::MAX)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the roster's checkpoint is at {at:?}, not {seq}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A message on a patrol's subject that is no position (a foreign publisher, a bug of
/// an old binary) stops nobody: watchers get the fix after it, the roster holds that
/// fix, and the roster's checkpoint moves past such a message even when it is the last
/// one of the stream (or every restart would read it again).
#[tokio::test]
async fn a_message_that_is_no_position_is_skipped_by_the_hub_and_the_roster() {
    let w = world_with(Options {
        roster: RosterOptions {
            location_interval: Duration::from_millis(200),
            ..RosterOptions::default()
        },
        ..Options::default()
    })
    .await;
    let app = &w.app;
    let mut watcher = SseClient::open(app, "/patrols/stream", &w.dispatcher_a, None).await;
    let nats = async_nats::connect(&app.config.nats_url)
        .await
        .expect("NATS");
    let js = async_nats::jetstream::new(nats);
    let subject = format!("{}.{}", app.config.log.positions_subject_prefix, w.patrol_a);
    let garbage = || async {
        js.publish(subject.clone(), "not a position".into())
            .await
            .expect("publish")
            .await
            .expect("stored")
            .sequence
    };
    let first = garbage().await;
    let lon = LON + 0.001;
    let seq = fix(app, &w.officer_a, &w.patrol_a, LAT, lon).await;
    assert!(seq > first);
    let got = longitudes_until(&mut watcher, &[lon], MOVE_BOUND).await;
    assert_eq!(got, [lon], "the fix after the message reaches the watcher");
    roster_reaches(app, &w.patrol_a, lon).await;

    // The stream's last message: the checkpoint still moves past it.
    let last = garbage().await;
    roster_consumed(app, last).await;
    let lon = LON + 0.002;
    fix(app, &w.officer_a, &w.patrol_a, LAT, lon).await;
    let got = longitudes_until(&mut watcher, &[lon], MOVE_BOUND).await;
    assert_eq!(got, [lon]);
    roster_reaches(app, &w.patrol_a, lon).await;
}

/// The hub checks, after a reconnect, that the stream still holds what it fanned out by
/// comparing the time its subscription reported with the time a direct get reads: the
/// two must agree to the nanosecond, or every reconnect would look like a loss.
#[tokio::test]
async fn a_subscription_and_a_direct_get_read_the_same_stored_time() {
    let w = world().await;
    let app = &w.app;
    let positions = app.log.positions();
    let head = positions.head().await.expect("head");
    let mut seqs = Vec::new();
    for i in 0..20 {
        let lon = LON + 0.000_01 * f64::from(i);
        seqs.push(fix(app, &w.officer_a, &w.patrol_a, LAT, lon).await);
    }
    let followed: Vec<_> = positions
        .subscribe(precinct_eventlog::positions::Start::Seq(head + 1))
        .await
        .expect("subscribed")
        .take(seqs.len())
        .collect()
        .await;
    let mut followed_seqs = Vec::new();
    for m in followed {
        let m = m.expect("a position");
        let read = positions.stored_at(m.seq).await.expect("direct get");
        assert_eq!(read, Some(m.stored_at), "position {}", m.seq);
        followed_seqs.push(m.seq);
    }
    assert_eq!(
        followed_seqs, seqs,
        "the test's stream holds its positions only"
    );
}

#[tokio::test]
async fn several_fixes_in_one_request_are_stored_in_order_or_none_is() {
    let w = world().await;
    let app = &w.app;
    let positions = app.log.positions();
    let head = positions.head().await.expect("head");
    let url = format!("/patrols/{}/locations", w.patrol_a);
    let mut stream = SseClient::open(app, "/patrols/stream", &w.dispatcher_a, None).await;

    // One bad fix among three: 422 names it by index, nothing is stored.
    let now = chrono::Utc::now();
    let at = |s: i64| (now - chrono::Duration::seconds(s)).to_rfc3339();
    let r = app
        .post(
            &url,
            Some(&w.officer_a),
            json!({"fixes": [
                {"latitude": LAT, "longitude": LON, "recorded_at": at(3)},
                {"latitude": 91, "longitude": LON, "recorded_at": at(2)},
                {"latitude": LAT, "longitude": LON, "heading": 400, "recorded_at": at(1)},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        fields,
        ["fixes[1].latitude", "fixes[2].heading"],
        "{}",
        r.body
    );
    // Empty and oversized batches are refused too.
    for n in [0usize, 101] {
        let fixes: Vec<Value> = (0..n)
            .map(|_| json!({"latitude": LAT, "longitude": LON}))
            .collect();
        let r = app
            .post(&url, Some(&w.officer_a), json!({ "fixes": fixes }))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{n}: {}",
            r.body
        );
    }
    // The same membership rule as a single fix.
    let ok = json!({"fixes": [{"latitude": LAT, "longitude": LON}]});
    let r = app.post(&url, Some(&w.dispatcher_a), ok.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app.post(&url, Some(&w.officer_b), ok.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app.post(&url, None, ok).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(
        positions.head().await.expect("head"),
        head,
        "nothing stored"
    );

    // Five good fixes: five sequences in order, each stored as sent, each streamed.
    let sent: Vec<Value> = (0..5)
        .map(|i| {
            json!({"latitude": LAT + 0.001 * f64::from(i), "longitude": LON,
                   "heading": f64::from(i), "recorded_at": at(10 - i64::from(i))})
        })
        .collect();
    let r = app
        .post(&url, Some(&w.officer_a), json!({ "fixes": sent }))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["patrol_id"], w.patrol_a.as_str());
    let seqs: Vec<u64> = r.body["positions"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    assert_eq!(
        seqs,
        (head + 1..=head + 5).collect::<Vec<_>>(),
        "{}",
        r.body
    );
    for (i, seq) in seqs.iter().enumerate() {
        let stored = positions
            .read_patrol(
                w.patrol_a.parse().expect("uuid"),
                precinct_eventlog::positions::WindowStart::After(*seq - 1),
                1,
            )
            .await
            .expect("read");
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].seq, *seq);
        assert_eq!(stored[0].moved.heading, Some(i as f64));
    }
    let mut heard = Vec::new();
    let deadline = Instant::now() + MOVE_BOUND * 2;
    while heard.len() < 5 && Instant::now() < deadline {
        match stream.next_of("position", MOVE_BOUND).await {
            Some(ev) => heard.extend(ev.data["position"].as_u64()),
            None => break,
        }
    }
    assert_eq!(heard, seqs, "every fix streamed once, in order");
}

#[tokio::test]
async fn the_stored_message_matches_its_schema_and_subject() {
    let w = world().await;
    let app = &w.app;
    let seq = move_to(
        app,
        &w.officer_a,
        &w.patrol_a,
        json!({"latitude": LAT, "longitude": LON, "heading": 10.5, "speed_mps": 3.0}),
    )
    .await;
    let cfg = app.log.config();
    let stream = crate::store::jetstream(&app.config.nats_url)
        .await
        .get_stream(&cfg.positions_stream)
        .await
        .expect("positions stream");
    let info = stream.cached_info();
    assert_eq!(info.config.max_age, Duration::from_secs(7 * 24 * 3600));
    assert!(info.config.allow_direct);
    let msg = stream.direct_get(seq).await.expect("stored");
    assert_eq!(
        msg.subject.as_str(),
        format!("{}.{}", cfg.positions_subject_prefix, w.patrol_a)
    );
    assert_eq!(
        msg.headers.get("Precinct-Event-Type").map(|v| v.as_str()),
        Some("PatrolMoved")
    );
    let body: Value = serde_json::from_slice(&msg.payload).expect("JSON body");
    assert_eq!(body["officer_id"], w.officer_a_id.as_str());
    let schema_path = precinct_tests::repo_root().join("schemas/positions/PatrolMoved.v1.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("schema"))
            .expect("schema JSON");
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{body}: {errors:?}");
}

#[tokio::test]
async fn latest_position_and_track_window_come_from_the_stream() {
    let w = world().await;
    let app = &w.app;
    let loc = format!("/patrols/{}/location", w.patrol_a);
    let r = app.get(&loc, Some(&w.dispatcher_a)).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "no position yet: {}",
        r.body
    );

    // Ten fixes, one a minute over the last ten minutes.
    let now = chrono::Utc::now();
    let mut fixes = Vec::new();
    for i in 0..10i64 {
        let at = now - chrono::Duration::minutes(10 - i);
        let seq = move_to(
            app,
            &w.officer_a,
            &w.patrol_a,
            json!({"latitude": LAT + 0.0001 * i as f64, "longitude": LON, "recorded_at": at.to_rfc3339()}),
        )
        .await;
        fixes.push((seq, at));
    }
    let last = app.get(&loc, Some(&w.dispatcher_a)).await;
    assert_eq!(last.status, StatusCode::OK, "{}", last.body);
    assert_eq!(last.body["position"], fixes[9].0);
    assert_eq!(last.body["latitude"], json!(LAT + 0.0009));
    assert_eq!(last.body["officer_id"], w.officer_a_id.as_str());
    assert_eq!(app.get(&loc, Some(&w.admin)).await.status, StatusCode::OK);
    assert_eq!(
        app.get(&loc, Some(&w.dispatcher_b)).await.status,
        StatusCode::NOT_FOUND
    );

    // The window [fix 2, fix 6] in pages of 2.
    let (from, to) = (fixes[2].1, fixes[6].1);
    let base = format!(
        "/patrols/{}/track?from={}&to={}&limit=2",
        w.patrol_a,
        urlencode(&from.to_rfc3339()),
        urlencode(&to.to_rfc3339())
    );
    let mut got = Vec::new();
    let mut path = base.clone();
    for _ in 0..10 {
        let page = app.get(&path, Some(&w.dispatcher_a)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let items = page.body["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 2);
        got.extend(items.iter().filter_map(|i| i["position"].as_u64()));
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("{base}&cursor={c}"),
            None => break,
        }
    }
    let expected: Vec<u64> = fixes[2..=6].iter().map(|(s, _)| *s).collect();
    assert_eq!(got, expected);
    // Default window: the last hour.
    let all = app
        .get(
            &format!("/patrols/{}/track?limit=1000", w.patrol_a),
            Some(&w.dispatcher_a),
        )
        .await;
    assert_eq!(
        all.body["items"].as_array().map(Vec::len),
        Some(10),
        "{}",
        all.body
    );
    assert!(all.body["next_cursor"].is_null());
    // Rules: staff of the station; sane limits and windows.
    let track = format!("/patrols/{}/track", w.patrol_a);
    assert_eq!(
        app.get(&track, Some(&w.dispatcher_b)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("{track}?limit=0"), Some(&w.dispatcher_a))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let backwards = format!(
        "{track}?from={}&to={}",
        urlencode(&to.to_rfc3339()),
        urlencode(&from.to_rfc3339())
    );
    assert_eq!(
        app.get(&backwards, Some(&w.dispatcher_a)).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn the_roster_gets_the_latest_location_at_a_lower_rate_and_a_track() {
    let opts = Options {
        roster: RosterOptions {
            location_interval: Duration::from_secs(1),
            ..RosterOptions::default()
        },
        ..Options::default()
    };
    let roster = opts.roster.clone();
    let w = world_with(opts).await;
    let app = &w.app;
    // 40 fixes, recorded 5 s apart (200 s: 7 to 8 track buckets of 30 s).
    let start = chrono::Utc::now() - chrono::Duration::minutes(10);
    let mut last = (0.0, start);
    let mut buckets = std::collections::BTreeSet::new();
    for i in 0..40i64 {
        let at = start + chrono::Duration::seconds(5 * i);
        let lat = LAT + 0.0001 * i as f64;
        move_to(
            app,
            &w.officer_a,
            &w.patrol_a,
            json!({"latitude": lat, "longitude": LON, "recorded_at": at.to_rfc3339()}),
        )
        .await;
        buckets.insert(at.timestamp().div_euclid(30));
        last = (lat, at);
    }
    // Two fixes recorded at the same moment (one request, consecutive sequences): the
    // later one is the location ("ties: the later sequence").
    let tie = last.1.to_rfc3339();
    let r = app
        .post(
            &format!("/patrols/{}/locations", w.patrol_a),
            Some(&w.officer_a),
            json!({"fixes": [
                {"latitude": LAT + 0.5, "longitude": LON, "recorded_at": tie},
                {"latitude": LAT + 0.6, "longitude": LON, "recorded_at": tie},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    last.0 = LAT + 0.6;
    // A late fix recorded earlier does not move the roster back.
    move_to(
        app,
        &w.officer_a,
        &w.patrol_a,
        json!({"latitude": 1.0, "longitude": 1.0, "recorded_at": start.to_rfc3339()}),
    )
    .await;
    let patrol = uuid::Uuid::parse_str(&w.patrol_a).expect("uuid");
    let row = |pool: sqlx::PgPool| async move {
        sqlx::query_as::<_, (Option<f64>, Option<chrono::DateTime<chrono::Utc>>)>(
            "SELECT latitude, location_at FROM patrols WHERE id = $1",
        )
        .bind(patrol)
        .fetch_optional(&pool)
        .await
        .ok()
        .flatten()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = None;
    while Instant::now() < deadline {
        seen = row(app.pool.clone()).await;
        if matches!(seen, Some((Some(lat), Some(_))) if lat == last.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (lat, at) = seen.expect("patrol row");
    assert_eq!(lat, Some(last.0), "latest location in the roster");
    assert_eq!(
        at.map(|t| t.timestamp_millis()),
        Some(last.1.timestamp_millis())
    );
    let track_rows = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM patrol_track WHERE patrol_id = $1")
            .bind(patrol)
            .fetch_one(&pool)
            .await
            .unwrap_or(-1)
    };
    assert_eq!(
        track_rows(app.pool.clone()).await,
        i64::try_from(buckets.len()).unwrap_or(0),
        "one track point per patrol per 30 s"
    );
    // The roster and the list view agree.
    let listed = app
        .get(&format!("/patrols/{}", w.patrol_a), Some(&w.dispatcher_a))
        .await;
    assert_eq!(listed.body["latitude"], json!(last.0), "{}", listed.body);

    // A rebuild gives the same rows.
    let summary = precinct_projections::rebuild_with(&app.pool, &app.log, roster)
        .await
        .expect("rebuild");
    assert!(summary.positions_head >= 41);
    let (lat, at) = row(app.pool.clone())
        .await
        .expect("patrol row after rebuild");
    assert_eq!(lat, Some(last.0));
    assert_eq!(
        at.map(|t| t.timestamp_millis()),
        Some(last.1.timestamp_millis())
    );
    assert_eq!(
        track_rows(app.pool.clone()).await,
        i64::try_from(buckets.len()).unwrap_or(0)
    );
}

#[tokio::test]
async fn the_officer_inbox_stream_gets_assignments_of_the_officers_patrols() {
    let w = world().await;
    let app = &w.app;
    let mut inbox = SseClient::open(app, "/me/assignments/stream", &w.officer_a, None).await;
    let mut other = SseClient::open(app, "/me/assignments/stream", &w.officer_b, None).await;
    assert_eq!(
        SseClient::request(app, "/me/assignments/stream", &w.dispatcher_a, None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let (_, citizen) = app.account(&w.admin, "CITIZEN", None).await;
    let report = app.report(Some(&citizen), LAT, LON, &["Theft"]).await.id();
    let r = app
        .post(
            "/dispatch",
            Some(&w.dispatcher_a),
            json!({"crime_id": report, "patrol_id": w.patrol_a}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut types = HashMap::new();
    let deadline = Instant::now() + MOVE_BOUND;
    while types.len() < 2 && Instant::now() < deadline {
        let Some(ev) = inbox.next_of("assignment", MOVE_BOUND).await else {
            break;
        };
        assert_eq!(ev.data["report_id"], report.as_str());
        assert_eq!(ev.data["patrol_id"], w.patrol_a.as_str());
        types.insert(
            ev.data["type"].as_str().unwrap_or_default().to_string(),
            ev.id,
        );
    }
    assert!(types.contains_key("ReportAssigned"), "{types:?}");
    assert!(types.contains_key("PatrolAssignmentOpened"), "{types:?}");
    // Later changes of that report arrive too.
    let r = app
        .post(
            &format!("/crimes/{report}/accept"),
            Some(&w.officer_a),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ev = inbox
        .next_of("assignment", MOVE_BOUND)
        .await
        .expect("acceptance streamed");
    assert_eq!(ev.data["type"], "AssignmentAccepted");
    assert_eq!(ev.id, Some(format!("e{}", r.position())));
    // Another patrol's officer gets none of it.
    assert!(other.drain(Duration::from_millis(300)).await.is_empty());
}

/// The `report` events of `desk` until `quiet` passes without one: (type, station).
async fn report_events(desk: &mut SseClient, quiet: Duration) -> Vec<(String, String)> {
    desk.drain(quiet)
        .await
        .into_iter()
        .filter(|e| e.event == "report")
        .map(|e| {
            let field = |k: &str| e.data[k].as_str().unwrap_or_default().to_string();
            (field("type"), field("station_id"))
        })
        .collect()
}

#[tokio::test]
async fn the_desk_stream_gets_its_stations_report_changes_and_a_transfer_reaches_both() {
    let w = world().await;
    let app = &w.app;
    let of_a = format!("/queues/reports/stream?station_id={}", w.station_a);
    let mut desk_a = SseClient::open(app, "/queues/reports/stream", &w.dispatcher_a, None).await;
    let mut desk_b = SseClient::open(app, "/queues/reports/stream", &w.dispatcher_b, None).await;
    let mut admin_a = SseClient::open(app, &of_a, &w.admin, None).await;
    let mut officer_a = SseClient::open(app, "/queues/reports/stream", &w.officer_a, None).await;
    // Another station's desk, or a citizen, is refused.
    let (_, citizen) = app.account(&w.admin, "CITIZEN", None).await;
    for (token, path) in [
        (&w.dispatcher_b, of_a.as_str()),
        (&citizen, "/queues/reports/stream"),
    ] {
        let refused = SseClient::request(app, path, token, None).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let anonymous = reqwest::Client::new()
        .get(format!("{}/queues/reports/stream", app.base))
        .send()
        .await
        .expect("answer");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // A report submitted at A reaches A's desks (ids only: no text of the report).
    let submitted = app.report(Some(&citizen), LAT, LON, &["Theft"]).await;
    let report = submitted.id();
    let ev = desk_a
        .next_of("report", MOVE_BOUND)
        .await
        .expect("the submission streamed");
    assert_eq!(ev.id, Some(format!("e{}", submitted.position())));
    let mut keys: Vec<&String> = ev.data.as_object().expect("an object").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["occurred_at", "position", "report_id", "station_id", "type"]
    );
    assert_eq!(ev.data["type"], "ReportSubmitted");
    assert_eq!(ev.data["report_id"], report.as_str());
    assert_eq!(ev.data["station_id"], w.station_a.as_str());
    assert_eq!(ev.data["position"], submitted.position());
    for other in [&mut admin_a, &mut officer_a] {
        let ev = other.next_of("report", MOVE_BOUND).await.expect("streamed");
        assert_eq!(ev.data["report_id"], report.as_str());
    }
    let r = app
        .post(
            &format!("/crimes/{report}/triage"),
            Some(&w.dispatcher_a),
            json!({"priority": "HIGH"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ev = desk_a.next_of("report", MOVE_BOUND).await.expect("triage");
    assert_eq!(ev.data["type"], "ReportTriaged");
    assert_eq!(ev.id, Some(format!("e{}", r.position())));

    // Transferred to B: A's desk hears it leave, B's desk hears it arrive, and from then
    // on only B's desk hears of it.
    let r = app
        .post(
            &format!("/crimes/{report}/transfer"),
            Some(&w.dispatcher_a),
            json!({"station_id": w.station_b, "reason": "their area"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let moved = ("ReportTransferred".to_string(), w.station_b.clone());
    let ev = desk_b.next_of("report", MOVE_BOUND).await.expect("arrived");
    assert_eq!(
        (ev.data["type"].as_str(), ev.data["report_id"].as_str()),
        (Some("ReportTransferred"), Some(report.as_str()))
    );
    let r = app
        .post(
            &format!("/crimes/{report}/triage"),
            Some(&w.dispatcher_b),
            json!({"priority": "LOW"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ev = desk_b
        .next_of("report", MOVE_BOUND)
        .await
        .expect("B's triage");
    assert_eq!(ev.data["type"], "ReportTriaged");
    assert_eq!(
        report_events(&mut desk_a, Duration::from_millis(500)).await,
        std::slice::from_ref(&moved),
        "A hears the report leave, then nothing"
    );

    // Resuming after the submission replays what A's desk missed since, once.
    let after = format!("e{}", submitted.position());
    let mut resumed =
        SseClient::open(app, "/queues/reports/stream", &w.dispatcher_a, Some(&after)).await;
    assert_eq!(
        report_events(&mut resumed, Duration::from_millis(800)).await,
        [("ReportTriaged".to_string(), w.station_a.clone()), moved]
    );
}

#[tokio::test]
async fn connections_are_capped_and_streams_close_on_shutdown() {
    let w = world_with(live(|l| l.max_connections = 1)).await;
    let mut only = SseClient::open(&w.app, "/patrols/stream", &w.dispatcher_a, None).await;
    let refused = SseClient::request(&w.app, "/patrols/stream", &w.admin, None).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let stats = w.app.get("/admin/live", Some(&w.admin)).await;
    assert_eq!(stats.body["connections"], 1, "{}", stats.body);
    let stopping = tokio::spawn(w.app.stop());
    assert!(
        only.ends_within(Duration::from_secs(5)).await,
        "the SSE stream ends on shutdown"
    );
    let stopped = tokio::time::timeout(Duration::from_secs(15), stopping).await;
    assert!(matches!(stopped, Ok(Ok(Ok(_)))), "the process stopped");
}
