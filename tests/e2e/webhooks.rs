//! Outbound webhooks (issue 18 item 1, ADR 0028) against a real HTTP receiver on
//! 127.0.0.1 started by each test: signatures checked here and by an independent
//! implementation (the PyPI package `standardwebhooks`, tests/webhooks/verify.py),
//! retries in order, dead letters and disabling, replay, secret rotation, SSRF
//! refusals, supervisor scoping, personal data, and a restart of the deliverer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as AxPath, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use precinct_tests::app::{Options, TestApp};
use precinct_tests::chaos::procs::PrecinctProc;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    /// What the receiver answered.
    status: u16,
    /// When it arrived.
    at: Instant,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
    fn position(&self) -> u64 {
        self.json()["position"].as_u64().expect("position")
    }
}

#[derive(Default)]
struct Inner {
    got: Vec<Got>,
    /// `/hook` answers 500 this many more times.
    fail: usize,
    /// `/hook` takes this long to answer.
    delay: Duration,
    /// `/busy` answers 503 with `Retry-After: 2` this many more times, then 204.
    busy: usize,
}

/// A webhook receiver on 127.0.0.1: `/hook` (204, after `fail` failures and `delay`),
/// `/ok-<anything>` (204),
/// `/down` (500), `/redirect` (302 to `/hook`), `/hang` (answers after 60 s), `/gone`
/// (410), `/busy` (503 with `Retry-After: 2` while `busy` lasts, then 204). It records
/// every request.
#[derive(Clone, Default)]
struct Receiver {
    inner: Arc<Mutex<Inner>>,
    base: String,
}

impl Receiver {
    async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let router = axum::Router::new()
            .route("/{path}", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver {
            inner,
            base: format!("http://{addr}"),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    fn set(&self, fail: usize, delay: Duration) {
        let mut i = self.inner.lock().expect("lock");
        i.fail = fail;
        i.delay = delay;
    }

    fn got(&self, path: &str) -> Vec<Got> {
        let i = self.inner.lock().expect("lock");
        i.got.iter().filter(|g| g.path == path).cloned().collect()
    }

    /// The 2xx-answered requests to `path`.
    fn delivered(&self, path: &str) -> Vec<Got> {
        self.got(path)
            .into_iter()
            .filter(|g| (200..300).contains(&g.status))
            .collect()
    }

    /// Waits (up to 20 s) until `path` has answered 2xx to `n` requests.
    async fn wait_delivered(&self, path: &str, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.delivered(path);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {} of {n} deliveries after 20 s: {:#?}",
                got.len(),
                self.got(path)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    AxPath(path): AxPath<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, delay) = {
        let mut i = inner.lock().expect("lock");
        let status = match path.as_str() {
            "hook" if i.fail > 0 => {
                i.fail -= 1;
                500
            }
            "busy" if i.busy > 0 => {
                i.busy -= 1;
                503
            }
            "hook" | "hang" | "busy" => 204,
            p if p.starts_with("ok-") => 204,
            "redirect" => 302,
            "gone" => 410,
            _ => 500,
        };
        i.got.push(Got {
            path: path.clone(),
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body,
            status,
            at: Instant::now(),
        });
        let delay = match path.as_str() {
            "hang" => Duration::from_secs(60),
            "hook" => i.delay,
            _ => Duration::ZERO,
        };
        (status, delay)
    };
    tokio::time::sleep(delay).await;
    let status = AxStatus::from_u16(status).expect("status");
    if status == AxStatus::FOUND {
        return (status, [("location", "/hook")]).into_response();
    }
    if status == AxStatus::SERVICE_UNAVAILABLE && path == "busy" {
        return (status, [("retry-after", "2")]).into_response();
    }
    status.into_response()
}

/// The signatures of `got` that `secret` makes (Rust: hmac + sha2 + base64).
fn signs(secret: &str, got: &Got) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix("whsec_").expect("whsec_"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{}.{}.{}", got.id, got.timestamp, got.body).as_bytes());
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    got.signature.split(' ').any(|s| s == expected)
}

/// Every request carried the id of its position (duplicates are the same message),
/// exactly `positions` were sent, and each was first sent only after every earlier one.
#[track_caller]
fn assert_one_id_each_first_sent_in_order(all: &[Got], positions: &[u64]) {
    let mut ids: BTreeMap<u64, String> = BTreeMap::new();
    for g in all {
        let id = ids.entry(g.position()).or_insert_with(|| g.id.clone());
        assert_eq!(*id, g.id, "position {} sent under two ids", g.position());
    }
    assert_eq!(
        ids.keys().copied().collect::<Vec<_>>(),
        positions,
        "nothing else, nothing missing"
    );
    let mut seen = std::collections::BTreeSet::new();
    let firsts: Vec<u64> = all
        .iter()
        .map(Got::position)
        .filter(|p| seen.insert(*p))
        .collect();
    assert_eq!(firsts, positions, "first sends in log order");
}

/// Verifies `messages` under `secret` with the independent implementation.
fn verify_independently(secret: &str, messages: &[Got]) -> Vec<bool> {
    let signed: Vec<precinct_tests::python::Signed<'_>> = messages
        .iter()
        .map(|g| {
            (
                g.body.as_str(),
                g.id.as_str(),
                g.timestamp.as_str(),
                g.signature.as_str(),
            )
        })
        .collect();
    precinct_tests::python::standard_webhooks_verify(secret, &signed)
}

struct World {
    app: TestApp,
    admin: String,
    station: String,
    citizen: String,
    citizen_id: String,
}

async fn world_with(opts: Options) -> World {
    let app = TestApp::spawn_with(opts).await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (citizen_id, citizen) = app.account(&admin, "CITIZEN", None).await;
    World {
        app,
        admin,
        station,
        citizen,
        citizen_id,
    }
}

async fn world() -> World {
    world_with(Options::default()).await
}

impl World {
    async fn subscribe(&self, token: &str, body: Value) -> (String, String) {
        let r = self.app.post("/webhooks", Some(token), body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let secret = r.body["secret"].as_str().expect("secret once").to_owned();
        (r.id(), secret)
    }

    /// Submits a report; its id and log position.
    async fn report(&self) -> (String, u64) {
        let r = self
            .app
            .report(Some(&self.citizen), LAT, LON, &["Theft"])
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        (r.id(), r.body["position"].as_u64().expect("position"))
    }

    /// The ledger once `settled` holds of it (it is written after the receiver
    /// answered, so it may trail what the receiver saw by a moment); waits up to 10 s,
    /// then answers it as it is.
    async fn deliveries_when(&self, hook: &str, settled: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rows = self.deliveries(hook).await;
            if settled(&rows) || Instant::now() >= deadline {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn deliveries(&self, hook: &str) -> Vec<Value> {
        let r = self
            .app
            .get(
                &format!("/webhooks/{hook}/deliveries?limit=100"),
                Some(&self.admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["items"].as_array().expect("items").clone()
    }
}

#[tokio::test]
async fn a_report_is_delivered_signed_with_its_position_and_verified_independently() {
    let w = world().await;
    let rx = Receiver::start().await;
    let (hook, secret) = w
        .subscribe(
            &w.admin,
            json!({"url": rx.url("hook"), "event_types": ["ReportSubmitted"],
                "station_id": w.station}),
        )
        .await;
    assert!(secret.starts_with("whsec_"));
    // The secret is never shown again.
    let r = w
        .app
        .get(&format!("/webhooks/{hook}"), Some(&w.admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("secret").is_none() && !r.body.to_string().contains(&secret));
    assert_eq!(r.body["station_id"], json!(w.station));
    let list = w.app.get("/webhooks", Some(&w.admin)).await;
    assert!(!list.body.to_string().contains(&secret));

    let (report, position) = w.report().await;
    let got = rx.wait_delivered("hook", 1).await;
    let g = &got[0];
    let body = g.json();
    assert_eq!(body["position"], json!(position));
    assert_eq!(body["type"], "ReportSubmitted");
    assert_eq!(body["report_id"], json!(report));
    assert!(body["occurred_at"].is_string() && body["timestamp"].is_string());
    assert_eq!(body["data"]["title"], "Bike stolen");
    assert!(
        body["data"].get("personal").is_none(),
        "no personal data: {body}"
    );
    assert!(
        body["data"].get("reporter").is_none(),
        "no reporter: {body}"
    );
    let hook_id: uuid::Uuid = hook.parse().expect("uuid");
    assert_eq!(g.id, precinct::webhooks::message_id(hook_id, position));
    let ts: i64 = g.timestamp.parse().expect("unix seconds");
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    assert_eq!(g.signature.split(' ').count(), 1);
    assert!(signs(&secret, g), "the signature verifies in Rust");
    // The independent implementation agrees, and refuses a tampered body or another key.
    let mut tampered = g.clone();
    tampered.body = tampered.body.replace("Bike stolen", "Bike found!");
    assert_eq!(
        verify_independently(&secret, &[g.clone(), tampered]),
        vec![true, false]
    );
    assert_eq!(
        verify_independently(
            "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk=",
            std::slice::from_ref(g)
        ),
        vec![false]
    );
    // Only the filtered type: a triage is not delivered.
    let r = w
        .app
        .post(
            &format!("/crimes/{report}/triage"),
            Some(&w.admin),
            json!({"priority": "HIGH"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (_, second) = w.report().await;
    let got = rx.wait_delivered("hook", 2).await;
    assert_eq!(got[1].position(), second);
    assert_eq!(got.len(), 2, "the triage is not delivered");
    let ledger = w.deliveries_when(&hook, |l| l.len() >= 2).await;
    assert_eq!(ledger.len(), 2, "{ledger:?}");
    assert_eq!(ledger[0]["position"], json!(position));
    assert_eq!(ledger[0]["status"], "DELIVERED");
    assert_eq!(ledger[0]["attempts"], 1);
    assert_eq!(ledger[0]["message_id"], json!(g.id));
    assert!(ledger[0]["latency_ms"].as_i64().is_some());
}

#[tokio::test]
async fn a_receiver_failing_then_recovering_gets_everything_in_order() {
    let w = world().await;
    let rx = Receiver::start().await;
    rx.set(4, Duration::ZERO);
    let (hook, secret) = w.subscribe(&w.admin, json!({"url": rx.url("hook")})).await;
    let mut positions = Vec::new();
    for _ in 0..3 {
        positions.push(w.report().await.1);
    }
    let got = rx.wait_delivered("hook", 3).await;
    let delivered: Vec<u64> = got.iter().map(Got::position).collect();
    assert_eq!(delivered, positions, "in log order, none missing");
    // The failed attempts were all at the first event, under the same id.
    let all = rx.got("hook");
    assert_eq!(all.len(), 3 + 4, "{all:#?}");
    assert!(all[..5]
        .iter()
        .all(|g| g.id == got[0].id && g.position() == positions[0]));
    assert!(all.iter().all(|g| signs(&secret, g)));
    assert!(verify_independently(&secret, &all).iter().all(|v| *v));
    let ledger = w.deliveries_when(&hook, |l| l.len() >= 3).await;
    assert_eq!(ledger[0]["attempts"], 5);
    assert_eq!(ledger[0]["status"], "DELIVERED");
    assert_eq!(ledger[0]["last_status"], 204);
    assert_eq!(ledger[1]["attempts"], 1);
}

#[tokio::test]
async fn a_receiver_that_asks_to_retry_after_two_seconds_is_left_alone_that_long() {
    let w = world().await;
    let rx = Receiver::start().await;
    rx.inner.lock().expect("lock").busy = 1;
    let (hook, _) = w.subscribe(&w.admin, json!({"url": rx.url("busy")})).await;
    let (_, position) = w.report().await;
    let got = rx.wait_delivered("busy", 1).await;
    assert_eq!(got[0].position(), position);
    let all = rx.got("busy");
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].status, 503);
    assert_eq!(all[1].id, all[0].id, "the same message again");
    // The test's own back-off is far shorter (Options: milliseconds); only the
    // receiver's Retry-After explains the wait.
    let waited = all[1].at - all[0].at;
    assert!(
        waited >= Duration::from_millis(1900),
        "Retry-After: 2 was not honoured: the retry came after {waited:?}"
    );
    let ledger = w
        .deliveries_when(&hook, |l| {
            l.first().is_some_and(|r| r["status"] == "DELIVERED")
        })
        .await;
    assert_eq!(ledger[0]["attempts"], 2);
    assert_eq!(ledger[0]["status"], "DELIVERED");
    // Counted by outcome.
    let (status, text) = precinct_tests::prometheus::scrape(&w.app, Some(&w.admin)).await;
    assert_eq!(status, StatusCode::OK);
    let count = |outcome: &str| {
        precinct_tests::prometheus::sample(
            &text,
            &format!("precinct_webhook_attempts_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(
        (count("retrying"), count("delivered"), count("dead")),
        (Some(1.0), Some(1.0), Some(0.0)),
        "{text}"
    );
}

#[tokio::test]
async fn a_run_of_failures_dead_letters_and_disables_until_enabled_again() {
    let w = world().await;
    let rx = Receiver::start().await;
    let (hook, _) = w.subscribe(&w.admin, json!({"url": rx.url("down")})).await;
    let (_, position) = w.report().await;
    // 10 failed attempts (the tests' PRECINCT_WEBHOOK_MAX_FAILURES), then disabled.
    let deadline = Instant::now() + Duration::from_secs(20);
    let view = loop {
        let r = w
            .app
            .get(&format!("/webhooks/{hook}"), Some(&w.admin))
            .await;
        if r.body["enabled"] == false {
            break r.body;
        }
        assert!(Instant::now() < deadline, "not disabled: {}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        view["disabled_reason"]
            .as_str()
            .expect("reason")
            .contains("HTTP 500"),
        "{view}"
    );
    assert_eq!(rx.got("down").len(), 10);
    let ledger = w.deliveries(&hook).await;
    assert_eq!(ledger[0]["status"], "DEAD");
    assert_eq!(ledger[0]["attempts"], 10);
    assert_eq!(ledger[0]["last_error"], "HTTP 500");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.got("down").len(), 10, "nothing sent while disabled");
    // Fixed and enabled again: delivery resumes at the event that failed.
    let r = w
        .app
        .patch(
            &format!("/webhooks/{hook}"),
            Some(&w.admin),
            json!({"url": rx.url("hook"), "enabled": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = rx.wait_delivered("hook", 1).await;
    assert_eq!(got[0].position(), position);
}

#[tokio::test]
async fn replay_delivers_again_from_a_position_under_the_same_ids() {
    let w = world().await;
    let rx = Receiver::start().await;
    let (hook, secret) = w.subscribe(&w.admin, json!({"url": rx.url("hook")})).await;
    let (_, p1) = w.report().await;
    let (_, p2) = w.report().await;
    let (_, p3) = w.report().await;
    let first = rx.wait_delivered("hook", 3).await;
    let r = w
        .app
        .post(
            &format!("/webhooks/{hook}/replay"),
            Some(&w.admin),
            json!({"from_position": p2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let all = rx.wait_delivered("hook", 5).await;
    let again: Vec<u64> = all[3..].iter().map(Got::position).collect();
    assert_eq!(again, vec![p2, p3]);
    assert_eq!(all[3].id, first[1].id);
    assert_eq!(all[4].id, first[2].id);
    assert!(verify_independently(&secret, &all).iter().all(|v| *v));
    assert!(p1 < p2);
    let r = w
        .app
        .post(
            &format!("/webhooks/{hook}/replay"),
            Some(&w.admin),
            json!({"from_position": 0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

#[tokio::test]
async fn a_rotated_secret_signs_next_to_the_old_one_during_the_overlap() {
    let w = world().await;
    let rx = Receiver::start().await;
    let (hook, old) = w.subscribe(&w.admin, json!({"url": rx.url("hook")})).await;
    let r = w
        .app
        .post(
            &format!("/webhooks/{hook}/rotate-secret"),
            Some(&w.admin),
            json!({"overlap_seconds": 3600}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new = r.body["secret"]
        .as_str()
        .expect("the new secret")
        .to_owned();
    assert_ne!(new, old);
    // Let the deliverer see the rotation before the event.
    w.app
        .caught_up(r.body["position"].as_u64().expect("position"))
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    w.report().await;
    let got = rx.wait_delivered("hook", 1).await;
    assert_eq!(
        got[0].signature.split(' ').count(),
        2,
        "{}",
        got[0].signature
    );
    assert!(signs(&old, &got[0]) && signs(&new, &got[0]));
    assert_eq!(verify_independently(&old, &got), vec![true]);
    assert_eq!(verify_independently(&new, &got), vec![true]);
    // Without overlap only the new secret signs.
    let r = w
        .app
        .post(
            &format!("/webhooks/{hook}/rotate-secret"),
            Some(&w.admin),
            json!({"overlap_seconds": 0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let newest = r.body["secret"].as_str().expect("secret").to_owned();
    w.app
        .caught_up(r.body["position"].as_u64().expect("position"))
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    w.report().await;
    let got = rx.wait_delivered("hook", 2).await;
    assert_eq!(got[1].signature.split(' ').count(), 1);
    assert_eq!(verify_independently(&newest, &got[1..]), vec![true]);
    assert_eq!(verify_independently(&new, &got[1..]), vec![false]);
    let r = w
        .app
        .post(
            &format!("/webhooks/{hook}/rotate-secret"),
            Some(&w.admin),
            json!({"overlap_seconds": 999_999_999}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

#[tokio::test]
async fn unsafe_targets_are_refused_and_redirects_are_not_followed() {
    let w = world().await;
    let rx = Receiver::start().await;
    let head = w.app.log.head().await.expect("head");
    for url in [
        "https://10.0.0.7/hook",
        "https://192.168.1.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://localhost:9/hook",
        "ftp://example.org/hook",
        "https://user:pw@example.org/hook",
        "not a url",
    ] {
        let r = w
            .app
            .post("/webhooks", Some(&w.admin), json!({"url": url}))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            r.body
        );
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap_or_default()
                .starts_with("application/problem+json"),
            "{url}"
        );
        assert!(r.body.to_string().contains("url"), "{url}: {}", r.body);
    }
    let r = w
        .app
        .post(
            "/webhooks",
            Some(&w.admin),
            json!({"url": rx.url("hook"),
            "event_types": ["NoSuchEvent"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = w
        .app
        .post(
            "/webhooks",
            Some(&w.admin),
            json!({"url": rx.url("hook"),
            "area": {"type": "Polygon", "coordinates": [[[1.0, 1.0]]]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    // Oversized filters: 51 event types, a 2,100-byte URL, an area of 10,001
    // positions — each 422 naming the field and its limit, nothing stored.
    let many = vec!["ReportSubmitted"; 51];
    let long_url = format!("{}?{}", rx.url("hook"), "a".repeat(2100));
    let mut ring: Vec<[f64; 2]> = (0..10_000)
        .map(|i| {
            let a = f64::from(i) / 10_000.0 * std::f64::consts::TAU;
            [125.61 + 0.01 * a.cos(), 7.07 + 0.01 * a.sin()]
        })
        .collect();
    ring.push(ring[0]);
    for (what, body, limit) in [
        (
            "event_types",
            json!({"url": rx.url("hook"), "event_types": many}),
            "at most 50",
        ),
        ("url", json!({"url": long_url}), "1 to 2048 bytes"),
        (
            "area",
            json!({"url": rx.url("hook"), "area": {"type": "Polygon", "coordinates": [ring]}}),
            "at most 10000",
        ),
    ] {
        let r = w.app.post("/webhooks", Some(&w.admin), body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            r.body
        );
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap_or_default()
                .starts_with("application/problem+json"),
            "{what}"
        );
        let text = r.body.to_string();
        assert!(
            text.contains(what) && text.contains(limit),
            "{what}: {text}"
        );
    }
    assert_eq!(
        w.app.log.head().await.expect("head"),
        head,
        "nothing stored"
    );
    let list = w.app.get("/webhooks", Some(&w.admin)).await;
    assert_eq!(list.body["items"], json!([]));

    // A redirect is a failure, never followed; a hanging receiver is cut off by the
    // timeout and holds back only its own subscription.
    let (redirect, _) = w
        .subscribe(&w.admin, json!({"url": rx.url("redirect")}))
        .await;
    let (hang, _) = w.subscribe(&w.admin, json!({"url": rx.url("hang")})).await;
    let (_, ok_secret) = w.subscribe(&w.admin, json!({"url": rx.url("hook")})).await;
    let started = Instant::now();
    w.report().await;
    let got = rx.wait_delivered("hook", 1).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the healthy receiver waited {:?} for the hanging one",
        started.elapsed()
    );
    assert!(signs(&ok_secret, &got[0]));
    // Each subscription has its own sender: the redirecting one may be a moment behind.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rx.got("redirect").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!rx.got("redirect").is_empty());
    assert_eq!(rx.got("hook").len(), 1, "the redirect was not followed");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ledger = w.deliveries(&redirect).await;
        let hung = w.deliveries(&hang).await;
        if let (Some(r), Some(h)) = (ledger.first(), hung.first()) {
            assert_eq!(r["last_status"], 302);
            assert!(r["last_error"]
                .as_str()
                .unwrap_or_default()
                .contains("redirect"));
            assert!(
                h["last_error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("timed out"),
                "{h}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no ledger rows: {ledger:?} {hung:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Plain HTTP only where the operator allows it (one process at a time: the shared
    // PostgreSQL has few connections to spare).
    w.app.stop().await.expect("stop");
    let mut strict = Options::default();
    strict.webhooks.targets.allow_http = false;
    let s = world_with(strict).await;
    let r = s
        .app
        .post("/webhooks", Some(&s.admin), json!({"url": rx.url("hook")}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.to_string().contains("https"), "{}", r.body);
}

#[tokio::test]
async fn a_supervisor_manages_only_their_stations_subscriptions() {
    let w = world().await;
    let rx = Receiver::start().await;
    let other = w.app.precinct(&w.admin, "PS2", 8.0, 126.0).await;
    let (_, sup_a) = w
        .app
        .account(&w.admin, "SUPERVISOR", Some(&w.station))
        .await;
    let (_, sup_b) = w.app.account(&w.admin, "SUPERVISOR", Some(&other)).await;
    let (_, dispatcher) = w
        .app
        .account(&w.admin, "DISPATCHER", Some(&w.station))
        .await;
    let (hook, _) = w.subscribe(&sup_a, json!({"url": rx.url("hook")})).await;
    let r = w.app.get(&format!("/webhooks/{hook}"), Some(&sup_a)).await;
    assert_eq!(
        r.body["station_id"],
        json!(w.station),
        "always their station"
    );
    let head = w.app.log.head().await.expect("head");
    for body in [
        json!({"url": rx.url("hook"), "station_id": other}),
        json!({"url": rx.url("hook"), "personal_data": true}),
    ] {
        let r = w.app.post("/webhooks", Some(&sup_a), body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{body}: {}", r.body);
    }
    let r = w
        .app
        .post(
            "/webhooks",
            Some(&dispatcher),
            json!({"url": rx.url("hook")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = w
        .app
        .patch(
            &format!("/webhooks/{hook}"),
            Some(&sup_a),
            json!({"personal_data": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    for (method, path, body) in [
        (reqwest::Method::GET, format!("/webhooks/{hook}"), None),
        (
            reqwest::Method::GET,
            format!("/webhooks/{hook}/deliveries"),
            None,
        ),
        (
            reqwest::Method::PATCH,
            format!("/webhooks/{hook}"),
            Some(json!({"enabled": false})),
        ),
        (reqwest::Method::DELETE, format!("/webhooks/{hook}"), None),
        (
            reqwest::Method::POST,
            format!("/webhooks/{hook}/replay"),
            Some(json!({"from_position": 1})),
        ),
        (
            reqwest::Method::POST,
            format!("/webhooks/{hook}/rotate-secret"),
            Some(json!({})),
        ),
    ] {
        let r = w
            .app
            .call(method.clone(), &path, Some(&sup_b), body, &[])
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            r.body
        );
    }
    assert_eq!(
        w.app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );
    let list_b = w.app.get("/webhooks", Some(&sup_b)).await;
    assert_eq!(list_b.body["items"], json!([]));
    let list_admin = w.app.get("/webhooks", Some(&w.admin)).await;
    assert_eq!(list_admin.body["items"].as_array().map(Vec::len), Some(1));

    // A subscription an ADMIN let receive personal data: its station's SUPERVISOR may
    // not move its target (and then replay the log into their own server).
    let (personal, _) = w
        .subscribe(
            &w.admin,
            json!({"url": rx.url("hook"), "personal_data": true, "station_id": w.station}),
        )
        .await;
    let head = w.app.log.head().await.expect("head");
    let r = w
        .app
        .patch(
            &format!("/webhooks/{personal}"),
            Some(&sup_a),
            json!({"url": rx.url("elsewhere")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(
        w.app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );
    let r = w
        .app
        .patch(
            &format!("/webhooks/{personal}"),
            Some(&w.admin),
            json!({"url": rx.url("elsewhere")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "the ADMIN may: {}", r.body);
    let vault = precinct_vault::Vault::open(
        &w.app.log,
        &w.app.log.config().keys_bucket,
        1,
        w.app.config.master_keys.clone().expect("master keys"),
    )
    .await
    .expect("vault");
    let hook_id: uuid::Uuid = hook.parse().expect("uuid");
    assert!(vault.has_key(hook_id).await.expect("key store"));
    let r = w
        .app
        .delete(&format!("/webhooks/{hook}"), Some(&sup_a))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Its signing secrets are shredded with their key: nobody reads them again.
    assert!(!vault.has_key(hook_id).await.expect("key store"));
    w.app
        .caught_up(r.body["position"].as_u64().expect("position"))
        .await;
    let r = w
        .app
        .get(&format!("/webhooks/{hook}"), Some(&w.admin))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

#[tokio::test]
async fn personal_data_goes_out_only_where_an_admin_allowed_it_and_never_after_erasure() {
    let w = world().await;
    let rx = Receiver::start().await;
    let (open, _) = w
        .subscribe(
            &w.admin,
            json!({"url": rx.url("hook"), "personal_data": true}),
        )
        .await;
    w.subscribe(
        &w.admin,
        json!({"url": rx.url("redirect"), "personal_data": false}),
    )
    .await;
    let (_, position) = w.report().await;
    let got = rx.wait_delivered("hook", 1).await;
    let body = got[0].json();
    assert_eq!(
        body["data"]["personal"]["description"], "My blue bike was taken from the rack",
        "{body}"
    );
    assert!(body["data"]["reporter"].is_object());
    let deadline = Instant::now() + Duration::from_secs(10);
    let without = loop {
        if let Some(g) = rx.got("redirect").first() {
            break g.json();
        }
        assert!(
            Instant::now() < deadline,
            "nothing sent to the closed subscription"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(without["data"].get("personal").is_none(), "{without}");
    assert!(without["data"].get("reporter").is_none(), "{without}");
    assert!(!without.to_string().contains("1 Main St"));
    // Erased: a replay carries nothing of it.
    let r = w
        .app
        .delete(
            &format!("/admin/data-subjects/{}", w.citizen_id),
            Some(&w.admin),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = w
        .app
        .post(
            &format!("/webhooks/{open}/replay"),
            Some(&w.admin),
            json!({"from_position": position}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let got = rx.wait_delivered("hook", 2).await;
    let again = got[1].json();
    assert_eq!(again["position"], json!(position));
    assert!(again["data"]["personal"].is_null(), "erased: {again}");
    assert!(!again.to_string().contains("blue bike was taken"));
}

#[tokio::test]
async fn a_restarted_deliverer_loses_nothing_and_repeats_with_the_same_ids() {
    let w = world().await;
    let rx = Receiver::start().await;
    rx.set(0, Duration::from_millis(1500));
    let (hook, secret) = w.subscribe(&w.admin, json!({"url": rx.url("hook")})).await;
    let mut positions = Vec::new();
    for _ in 0..6 {
        positions.push(w.report().await.1);
    }
    rx.wait_delivered("hook", 2).await;
    // The third request has arrived and waits for its answer: stop the process now,
    // mid-delivery, and start another.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rx.got("hook").len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the third delivery never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let World { app, .. } = w;
    let (config, prefix, db) = app.stop().await.expect("stop");
    let app = TestApp::start(config, prefix, db).await.expect("restart");
    rx.set(0, Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let delivered: std::collections::BTreeSet<u64> =
            rx.delivered("hook").iter().map(Got::position).collect();
        if positions.iter().all(|p| delivered.contains(p)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing after restart: {delivered:?} of {positions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = rx.got("hook");
    assert_one_id_each_first_sent_in_order(&all, &positions);
    // The delivery in flight at the stop was sent again, under its id; nothing else.
    let third = all.iter().filter(|g| g.position() == positions[2]).count();
    assert_eq!(
        third, 2,
        "the interrupted delivery is repeated once: {all:#?}"
    );
    assert_eq!(
        all.len(),
        positions.len() + 1,
        "only the in-flight one repeats"
    );
    assert!(verify_independently(&secret, &all).iter().all(|v| *v));
    let r = app
        .get(
            &format!("/webhooks/{hook}/deliveries?limit=100"),
            Some(&app.admin().await),
        )
        .await;
    let rows = r.body["items"].as_array().expect("items");
    assert_eq!(rows.len(), positions.len());
    assert!(rows.iter().all(|r| r["status"] == "DELIVERED"), "{rows:?}");
    app.stop().await.expect("stop");
}

/// A square GeoJSON polygon of half-side `d` degrees around (lat, lon).
fn square(lat: f64, lon: f64, d: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[
        [lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d],
        [lon - d, lat + d], [lon - d, lat - d]
    ]]})
}

/// Filters by station and by area through the real path: each subscription gets
/// exactly the report events its filter names, in log order — also for an event that
/// carries neither station nor place (a triage: the deliverer looks them up in the log).
#[tokio::test]
async fn station_and_area_filters_deliver_exactly_the_reports_they_name() {
    let w = world().await;
    let (far_lat, far_lon) = (9.0, 127.0);
    w.app.precinct(&w.admin, "PS2", far_lat, far_lon).await;
    let rx = Receiver::start().await;
    let types = json!(["ReportSubmitted", "ReportTriaged"]);
    w.subscribe(
        &w.admin,
        json!({"url": rx.url("ok-station"), "event_types": types, "station_id": w.station}),
    )
    .await;
    w.subscribe(
        &w.admin,
        json!({"url": rx.url("ok-area"), "event_types": types, "area": square(LAT, LON, 0.01)}),
    )
    .await;
    w.subscribe(
        &w.admin,
        json!({"url": rx.url("ok-far"), "event_types": types,
            "area": square(far_lat, far_lon, 0.01)}),
    )
    .await;
    let submit = |lat: f64, lon: f64| {
        let app = &w.app;
        let citizen = &w.citizen;
        async move {
            let r = app.report(Some(citizen), lat, lon, &["Theft"]).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            (r.id(), r.position())
        }
    };
    let triage = |id: String| {
        let app = &w.app;
        let admin = &w.admin;
        async move {
            let r = app
                .post(
                    &format!("/crimes/{id}/triage"),
                    Some(admin),
                    json!({"priority": "HIGH"}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.position()
        }
    };
    // In the first station and its area; in the first station outside the area; in
    // the second station, inside the far area.
    let (_, in_area) = submit(LAT, LON).await;
    let (station_only, station_only_at) = submit(LAT + 0.03, LON + 0.03).await;
    let (far, far_at) = submit(far_lat, far_lon).await;
    let station_only_triaged = triage(station_only).await;
    let far_triaged = triage(far).await;
    // Last, one for each filter: once it arrives, everything before it was decided.
    let (_, last_here) = submit(LAT, LON).await;
    let (_, last_far) = submit(far_lat, far_lon).await;

    let positions = |path: &str| -> Vec<u64> {
        let mut seen = std::collections::BTreeSet::new();
        rx.delivered(path)
            .iter()
            .map(Got::position)
            .filter(|p| seen.insert(*p))
            .collect()
    };
    rx.wait_delivered("ok-station", 4).await;
    rx.wait_delivered("ok-area", 2).await;
    rx.wait_delivered("ok-far", 3).await;
    assert_eq!(
        positions("ok-station"),
        [in_area, station_only_at, station_only_triaged, last_here],
        "the station's reports, a triage included, nothing of the other station"
    );
    assert_eq!(
        positions("ok-area"),
        [in_area, last_here],
        "inside the area only"
    );
    assert_eq!(
        positions("ok-far"),
        [far_at, far_triaged, last_far],
        "the far area only"
    );
    for path in ["ok-station", "ok-area", "ok-far"] {
        let types: Vec<String> = rx
            .delivered(path)
            .iter()
            .map(|g| g.json()["type"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(
            types
                .iter()
                .all(|t| t == "ReportSubmitted" || t == "ReportTriaged"),
            "{path}: {types:?}"
        );
    }
}

/// The delivering process — a real `precinct serve --roles webhooks` child — is killed
/// with SIGKILL while a delivery is in flight; a standby process takes over (the
/// deliverer's advisory lock goes with the dead process's connection): every event
/// arrives, first sends keep log order, and a repeat is only the delivery that was in
/// flight, under the same `webhook-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deliverer_killed_with_sigkill_mid_delivery_fails_over_losing_nothing() {
    let key = format!("test-k1:{}", "01".repeat(32));
    let w = world_with(Options {
        roles: precinct::Roles {
            webhooks: false,
            ..precinct::Roles::ALL
        },
        master_key: Some(key.clone()),
        ..Options::default()
    })
    .await;
    let rx = Receiver::start().await;
    rx.set(0, Duration::from_millis(800));
    let (hook, secret) = w.subscribe(&w.admin, json!({"url": rx.url("hook")})).await;
    let mut env: Vec<(String, String)> = [
        ("NATS_URL", w.app.config.nats_url.clone()),
        ("DATABASE_URL", w.app.database_url.clone()),
        ("PRECINCT_STREAM_PREFIX", w.app.prefix.clone()),
        ("PRECINCT_MASTER_KEY", key),
        (
            "PRECINCT_JWT_SECRET",
            format!("webhooks-kill-{}", "cd".repeat(16)),
        ),
        // Two deliverers on one host: no operations listener on the default port.
        ("PRECINCT_OPS_ADDR", "off".into()),
        ("PRECINCT_WEBHOOK_ALLOW", "127.0.0.1".into()),
        ("PRECINCT_WEBHOOK_ALLOW_HTTP", "1".into()),
        ("PRECINCT_WEBHOOK_RETRY_FIRST_MS", "50".into()),
        ("PRECINCT_WEBHOOK_RETRY_MAX_MS", "500".into()),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Ok(r) = std::env::var("PRECINCT_TEST_NATS_REPLICAS") {
        env.push(("PRECINCT_NATS_REPLICAS".into(), r));
    }
    let dir = std::env::temp_dir().join(format!("precinct-webhooks-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (log, standby_log) = (dir.join("active.log"), dir.join("standby.log"));
    let standby_env = env.clone();
    let mut deliverer = tokio::task::spawn_blocking(move || {
        PrecinctProc::start("webhooks", env, None, log).expect("precinct serve --roles webhooks")
    })
    .await
    .expect("join");

    let mut positions = vec![w.report().await.1];
    // The first process delivers: it is the active one. Then the standby starts.
    rx.wait_delivered("hook", 1).await;
    let mut standby = tokio::task::spawn_blocking(move || {
        PrecinctProc::start("webhooks", standby_env, None, standby_log)
            .expect("the standby deliverer")
    })
    .await
    .expect("join");
    for _ in 0..7 {
        positions.push(w.report().await.1);
    }
    // Two answered; the third has arrived and waits for its answer: SIGKILL now.
    let deadline = Instant::now() + Duration::from_secs(30);
    while rx.got("hook").len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the third delivery never started (log in {})",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::task::block_in_place(|| deliverer.kill());
    let in_flight = rx.got("hook")[2].position();
    rx.set(0, Duration::ZERO);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered: std::collections::BTreeSet<u64> =
            rx.delivered("hook").iter().map(Got::position).collect();
        if positions.iter().all(|p| delivered.contains(p)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing after the failover: {delivered:?} of {positions:?} (logs in {})",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = rx.got("hook");
    assert_one_id_each_first_sent_in_order(&all, &positions);
    let repeated: Vec<u64> = positions
        .iter()
        .copied()
        .filter(|p| all.iter().filter(|g| g.position() == *p).count() > 1)
        .collect();
    assert_eq!(
        repeated,
        [in_flight],
        "only the delivery in flight at the kill is sent again: {all:#?}"
    );
    assert!(verify_independently(&secret, &all).iter().all(|v| *v));
    let rows = w
        .deliveries_when(&hook, |rows| {
            rows.len() == positions.len() && rows.iter().all(|r| r["status"] == "DELIVERED")
        })
        .await;
    assert_eq!(rows.len(), positions.len(), "{rows:?}");
    assert!(rows.iter().all(|r| r["status"] == "DELIVERED"), "{rows:?}");
    assert!(standby.exited().is_none(), "the standby is still running");
    tokio::task::block_in_place(|| standby.stop());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A receiver that answers `410 Gone` wants no more: the subscription is disabled at
/// the first attempt, not after a run of failures.
#[tokio::test]
async fn a_410_gone_disables_the_subscription_at_once() {
    let w = world().await;
    let rx = Receiver::start().await;
    let (hook, _) = w.subscribe(&w.admin, json!({"url": rx.url("gone")})).await;
    w.report().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let view = loop {
        let r = w
            .app
            .get(&format!("/webhooks/{hook}"), Some(&w.admin))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body["enabled"] == false {
            break r.body;
        }
        assert!(Instant::now() < deadline, "not disabled: {}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        view["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("410")),
        "{view}"
    );
    // Later events are not attempted.
    w.report().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.got("gone").len(), 1, "one attempt, then nothing");
}

/// SLA warnings, breaches and escalations go out through webhooks like report
/// events: a station's subscription to them gets each once, in log order, with the
/// report, its position and the clock.
#[tokio::test]
async fn sla_warnings_breaches_and_escalations_are_delivered_to_a_stations_subscription() {
    let w = world().await;
    let app = &w.app;
    let (officer, _) = app.account(&w.admin, "PATROL", Some(&w.station)).await;
    let patrol = app
        .patrol(&w.admin, &w.station, "ALPHA-1", &[&officer])
        .await;
    let r = app
        .put(
            &format!("/stations/{}/sla-policy", w.station),
            Some(&w.admin),
            json!({
                "deadlines": {"CRITICAL": {"accept_secs": 2}},
                "warn_at_percent": 50,
                "unaccepted": {"action": "REQUEUE", "after_secs": 1}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.caught_up(r.position()).await;
    let rx = Receiver::start().await;
    w.subscribe(
        &w.admin,
        json!({"url": rx.url("ok-sla"), "station_id": w.station,
            "event_types": ["SlaWarned", "SlaBreached", "SlaEscalated"]}),
    )
    .await;
    let (report, _) = w.report().await;
    for (path, body) in [
        (
            format!("/crimes/{report}/triage"),
            json!({"priority": "CRITICAL"}),
        ),
        (
            "/dispatch".to_string(),
            json!({"crime_id": report, "patrol_id": patrol}),
        ),
    ] {
        let r = app.post(&path, Some(&w.admin), body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let got = rx.wait_delivered("ok-sla", 3).await;
    let bodies: Vec<Value> = got.iter().map(Got::json).collect();
    let kinds: Vec<&str> = bodies
        .iter()
        .map(|b| b["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["SlaWarned", "SlaBreached", "SlaEscalated"]);
    for b in &bodies {
        assert_eq!(b["report_id"], json!(report), "{b}");
        assert_eq!(b["data"]["kind"], "ACCEPT", "{b}");
    }
    assert_eq!(bodies[2]["data"]["action"], "REQUEUE", "{}", bodies[2]);
    let positions: Vec<u64> = got.iter().map(Got::position).collect();
    assert!(positions.windows(2).all(|p| p[0] < p[1]), "{positions:?}");
    // Exactly once each, whatever the SLA worker's later scans do.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.got("ok-sla").len(), 3, "{:#?}", rx.got("ok-sla"));
}
