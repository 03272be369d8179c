//! Officer notifications (issue 18 item 2, ADR 0032) against a real HTTP receiver on
//! 127.0.0.1 standing in for the push service: every device of every crew member gets
//! a Web Push message on assignment, reassignment and the desk's "Notify officer"; each
//! message is decrypted with the subscription's private key and its VAPID JWT verified
//! by implementations independent of Precinct's (the PyPI packages `http_ece` and
//! `cryptography`, tests/push/webpush.py); a hanging push service holds back only its
//! own device; a 410 removes the device (an event); strict refusals of malformed
//! subscriptions and forbidden endpoints; devices are their owner's alone.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as AxPath, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine as _;
use precinct_tests::app::{Options, TestApp, TEST_VAPID_SUBJECT};
use reqwest::StatusCode;
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

/// One request the push service got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    content_encoding: String,
    authorization: String,
    ttl: String,
    body: Vec<u8>,
}

/// A push service on 127.0.0.1: `/push/hang` answers after 60 s, `/push/gone` 410,
/// any other `/push/{name}` 201. It records every request.
#[derive(Clone)]
struct PushService {
    got: Arc<Mutex<Vec<Got>>>,
    base: String,
}

impl PushService {
    async fn start() -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let router = axum::Router::new()
            .route("/push/{name}", post(receive))
            .with_state(got.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        PushService {
            got,
            base: format!("http://{addr}"),
        }
    }

    fn endpoint(&self, name: &str) -> String {
        format!("{}/push/{name}", self.base)
    }

    fn got(&self, name: &str) -> Vec<Got> {
        let path = format!("/push/{name}");
        let got = self.got.lock().expect("lock");
        got.iter().filter(|g| g.path == path).cloned().collect()
    }

    /// Waits (up to `within`) until `name` got `n` requests.
    async fn wait(&self, name: &str, n: usize, within: Duration) -> Vec<Got> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.got(name);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {} of {n} pushes after {within:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(
    State(got): State<Arc<Mutex<Vec<Got>>>>,
    AxPath(name): AxPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    got.lock().expect("lock").push(Got {
        path: format!("/push/{name}"),
        content_encoding: header("content-encoding"),
        authorization: header("authorization"),
        ttl: header("ttl"),
        body: body.to_vec(),
    });
    match name.as_str() {
        "hang" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            AxStatus::CREATED.into_response()
        }
        "gone" => AxStatus::GONE.into_response(),
        _ => AxStatus::CREATED.into_response(),
    }
}

/// Runs tests/push/webpush.py with `request`; its answer.
fn webpush(request: &Value) -> Value {
    use std::io::Write;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("push/webpush.py");
    let mut child = std::process::Command::new(precinct_tests::python::venv_python())
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (make test's set-up installs http-ece: \
                 bash deploy/local/stack.sh up): {e}",
                precinct_tests::python::venv_python().display()
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("webpush.py");
    assert!(
        out.status.success(),
        "webpush.py failed (is http-ece installed? bash deploy/local/stack.sh up): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("webpush.py answers JSON")
}

/// A browser's subscription: its keys, and the private half only it knows.
#[derive(Debug, Clone)]
struct Subscription {
    endpoint: String,
    p256dh: String,
    auth: String,
    private: String,
}

impl Subscription {
    fn new(endpoint: String) -> Self {
        let k = webpush(&json!({"op": "keys"}));
        let s = |f: &str| k[f].as_str().expect(f).to_owned();
        Subscription {
            endpoint,
            p256dh: s("p256dh"),
            auth: s("auth"),
            private: s("private"),
        }
    }

    fn body(&self) -> Value {
        json!({"kind": "web_push", "endpoint": self.endpoint,
            "keys": {"p256dh": self.p256dh, "auth": self.auth}})
    }

    /// Each message decrypted (its JSON payload) after its VAPID JWT was verified to be
    /// signed with `vapid_key` for this endpoint's origin.
    fn open(&self, got: &[Got], vapid_key: &str) -> Vec<Value> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let answer = webpush(&json!({
            "op": "open", "private": self.private, "auth": self.auth,
            "endpoint": self.endpoint,
            "messages": got.iter().map(|g| json!({
                "body": b64.encode(&g.body), "authorization": g.authorization,
            })).collect::<Vec<_>>(),
        }));
        got.iter()
            .zip(answer["opened"].as_array().expect("opened"))
            .map(|(g, o)| {
                assert_eq!(g.content_encoding, "aes128gcm", "RFC 8291's encoding");
                assert!(g.ttl.parse::<u32>().is_ok_and(|t| t > 0), "TTL {:?}", g.ttl);
                assert_eq!(o["vapid"]["valid"], true, "VAPID: {o}");
                assert_eq!(o["vapid"]["k"], vapid_key, "signed with the server's key");
                assert_eq!(o["vapid"]["claims"]["sub"], TEST_VAPID_SUBJECT);
                let text = o["payload"]
                    .as_str()
                    .unwrap_or_else(|| panic!("not decrypted: {o}"));
                serde_json::from_str(text).expect("a JSON payload")
            })
            .collect()
    }
}

struct World {
    app: TestApp,
    push: PushService,
    admin: String,
    dispatcher: String,
    citizen: String,
    /// Patrol ALPHA (officers 0 and 1) and BRAVO (officer 2).
    alpha: String,
    bravo: String,
    officers: Vec<(String, String)>,
    vapid_key: String,
}

async fn world_with(opts: Options) -> World {
    let push = PushService::start().await;
    let app = TestApp::spawn_with(opts).await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let mut officers = Vec::new();
    for _ in 0..3 {
        officers.push(app.account(&admin, "PATROL", Some(&station)).await);
    }
    let alpha = app
        .patrol(
            &dispatcher,
            &station,
            "ALPHA-1",
            &[&officers[0].0, &officers[1].0],
        )
        .await;
    let bravo = app
        .patrol(&dispatcher, &station, "BRAVO-2", &[&officers[2].0])
        .await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    let r = app.get("/me/devices", Some(&officers[0].1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let vapid_key = r.body["vapid_public_key"]
        .as_str()
        .expect("the server's VAPID key")
        .to_owned();
    World {
        app,
        push,
        admin,
        dispatcher,
        citizen,
        alpha,
        bravo,
        officers,
        vapid_key,
    }
}

async fn world() -> World {
    world_with(Options::default()).await
}

impl World {
    fn officer(&self, i: usize) -> &str {
        &self.officers[i].1
    }

    /// Registers a device of officer `i` at push endpoint `name`.
    async fn device(&self, i: usize, name: &str) -> (String, Subscription) {
        let sub = Subscription::new(self.push.endpoint(name));
        let r = self
            .app
            .post("/me/devices", Some(self.officer(i)), sub.body())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["endpoint"], sub.endpoint.as_str());
        (r.body["id"].as_str().expect("id").to_owned(), sub)
    }

    async fn report(&self) -> String {
        self.app
            .report(Some(&self.citizen), LAT, LON, &["Theft"])
            .await
            .id()
    }

    async fn dispatch(&self, report: &str, patrol: &str) {
        let r = self
            .app
            .post(
                "/dispatch",
                Some(&self.dispatcher),
                json!({"crime_id": report, "patrol_id": patrol}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }

    async fn head(&self) -> u64 {
        self.app.log.head().await.expect("head")
    }

    async fn devices(&self, token: &str) -> Vec<Value> {
        let r = self.app.get("/me/devices", Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["items"].as_array().expect("items").clone()
    }
}

/// What a payload may say: nothing personal, nothing more.
fn assert_minimal(payload: &Value, report: &str, kind: &str) {
    let keys: Vec<&str> = payload
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{payload}");
    assert_eq!(payload["report_id"], report, "{payload}");
    assert_eq!(payload["kind"], kind, "{payload}");
    assert_eq!(payload["priority"], "MEDIUM", "{payload}");
    assert!(payload["position"].as_u64().is_some(), "{payload}");
}

#[tokio::test]
async fn every_crew_device_gets_an_encrypted_signed_push_on_assignment_notify_and_reassignment() {
    let mut opts = Options::default();
    // Long enough that a push service which hangs would visibly hold back the others
    // if it could.
    opts.push.timeout = Duration::from_secs(20);
    let w = world_with(opts).await;
    let (_, a1) = w.device(0, "a1").await;
    let (_, a2) = w.device(0, "a2").await;
    let (_, b1) = w.device(1, "b1").await;
    let (_, _hang) = w.device(1, "hang").await;
    let (_, c1) = w.device(2, "c1").await;

    // A new assignment: both ALPHA officers, every device, the hanging one included.
    let report = w.report().await;
    w.dispatch(&report, &w.alpha).await;
    let fast = Duration::from_secs(10);
    for (name, sub) in [("a1", &a1), ("a2", &a2), ("b1", &b1)] {
        let got = w.push.wait(name, 1, fast).await;
        let payloads = sub.open(&got, &w.vapid_key);
        assert_minimal(&payloads[0], &report, "ASSIGNED");
    }
    w.push.wait("hang", 1, fast).await;
    assert!(w.push.got("c1").is_empty(), "BRAVO is not assigned");

    // "Notify officer": the same devices again, while the hanging request still hangs.
    let r = w
        .app
        .post(
            &format!("/crimes/{report}/notify"),
            Some(&w.dispatcher),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["patrol_id"], w.alpha.as_str());
    for (name, sub) in [("a1", &a1), ("a2", &a2), ("b1", &b1)] {
        let got = w.push.wait(name, 2, fast).await;
        let payloads = sub.open(&got, &w.vapid_key);
        assert_minimal(&payloads[1], &report, "NOTIFY");
    }
    assert_eq!(
        w.push.got("hang").len(),
        1,
        "the hanging device waits its turn"
    );

    // A reassignment to BRAVO: its officer hears of it.
    let r = w
        .app
        .post(
            &format!("/crimes/{report}/reassign"),
            Some(&w.dispatcher),
            json!({"from_patrol_id": w.alpha, "patrol_id": w.bravo, "reason": "nearer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = w.push.wait("c1", 1, fast).await;
    let payloads = c1.open(&got, &w.vapid_key);
    assert_minimal(&payloads[0], &report, "REASSIGNED");
    // Nothing personal of the reporter was in any payload (checked above: four keys);
    // and ALPHA's officers heard nothing of BRAVO's assignment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.push.got("a1").len(), 2);
}

#[tokio::test]
async fn a_subscription_its_push_service_says_is_gone_is_removed_by_an_event() {
    let w = world().await;
    let (gone, _) = w.device(0, "gone").await;
    let (kept, _) = w.device(0, "kept").await;
    let report = w.report().await;
    w.dispatch(&report, &w.alpha).await;
    w.push.wait("gone", 1, Duration::from_secs(10)).await;
    w.push.wait("kept", 1, Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ids: Vec<Value> = w
            .devices(w.officer(0))
            .await
            .iter()
            .map(|d| d["id"].clone())
            .collect();
        if ids == vec![json!(kept)] {
            break;
        }
        assert!(Instant::now() < deadline, "still listed: {ids:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stream =
        precinct_eventlog::StreamId::new("devices", w.officers[0].0.parse().expect("uuid"));
    let events = w.app.log.read(&stream).await.expect("read");
    let removed: Vec<&Value> = events
        .iter()
        .filter(|e| e.envelope.event_type == "DeviceRemoved")
        .map(|e| &e.data)
        .collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0]["device_id"], gone.as_str());
    assert_eq!(removed[0]["reason"], "EXPIRED");
    assert_eq!(removed[0]["status"], 410);
    // A notify later goes to the device that is left only.
    let r = w
        .app
        .post(
            &format!("/crimes/{report}/notify"),
            Some(&w.dispatcher),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    w.push.wait("kept", 2, Duration::from_secs(10)).await;
    assert_eq!(w.push.got("gone").len(), 1);
}

#[tokio::test]
async fn malformed_subscriptions_and_forbidden_endpoints_are_422_and_nothing_is_stored() {
    let mut opts = Options::default();
    // Production rules: https only, no allow-list.
    opts.webhooks.targets.allow_http = false;
    opts.webhooks.targets.allow = vec![];
    let w = world_with(opts).await;
    let officer = w.officer(0);
    let good = Subscription::new("https://127.0.0.1/push".into());
    let keys = json!({"p256dh": good.p256dh, "auth": good.auth});
    // 65 bytes from 0x04 that are not a point of the curve.
    let off_curve = format!(
        "BA{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 64])
    );
    let head = w.head().await;
    for (what, body, field) in [
        (
            "plain http",
            json!({"kind": "web_push", "endpoint": "http://127.0.0.1:9/push", "keys": keys}),
            "endpoint",
        ),
        (
            "loopback",
            json!({"kind": "web_push", "endpoint": "https://127.0.0.1/push", "keys": keys}),
            "endpoint",
        ),
        (
            "private address",
            json!({"kind": "web_push", "endpoint": "https://10.1.2.3/push", "keys": keys}),
            "endpoint",
        ),
        (
            "link-local v6",
            json!({"kind": "web_push", "endpoint": "https://[fe80::1]/push", "keys": keys}),
            "endpoint",
        ),
        (
            "not a URL",
            json!({"kind": "web_push", "endpoint": "ftp://push.example", "keys": keys}),
            "endpoint",
        ),
        (
            "p256dh not base64url",
            json!({"kind": "web_push", "endpoint": "https://1.1.1.1/p",
                "keys": {"p256dh": "not+base64/", "auth": good.auth}}),
            "keys.p256dh",
        ),
        (
            "p256dh too short",
            json!({"kind": "web_push", "endpoint": "https://1.1.1.1/p",
                "keys": {"p256dh": "BAAA", "auth": good.auth}}),
            "keys.p256dh",
        ),
        (
            "p256dh off the curve",
            json!({"kind": "web_push", "endpoint": "https://1.1.1.1/p",
                "keys": {"p256dh": off_curve, "auth": good.auth}}),
            "keys.p256dh",
        ),
        (
            "auth of 15 bytes",
            json!({"kind": "web_push", "endpoint": "https://1.1.1.1/p",
                "keys": {"p256dh": good.p256dh, "auth": "AAAAAAAAAAAAAAAAAAAA"}}),
            "keys.auth",
        ),
    ] {
        let r = w.app.post("/me/devices", Some(officer), body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            r.body
        );
        assert!(
            r.body["errors"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["field"] == field)),
            "{what}: {}",
            r.body
        );
        assert!(
            !r.body.to_string().contains("10.1.2.3:"),
            "{what}: a refusal names no resolved address"
        );
    }
    // Kinds not offered, unknown fields, missing keys: 422 too.
    for body in [
        json!({"kind": "webhook", "url": "https://1.1.1.1/gw"}),
        json!({"kind": "web_push", "endpoint": "https://1.1.1.1/p"}),
        json!({"kind": "web_push", "endpoint": "https://1.1.1.1/p", "keys": keys, "extra": 1}),
    ] {
        let r = w.app.post("/me/devices", Some(officer), body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
    }
    // A citizen has no devices to register.
    let r = w
        .app
        .post("/me/devices", Some(&w.citizen), good.body())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(w.head().await, head, "a refusal appended an event");
    assert!(w.devices(officer).await.is_empty());
}

#[tokio::test]
async fn notify_without_a_patrol_is_409_and_devices_are_their_owners_alone() {
    let w = world().await;
    // A NEW report has no patrol to notify.
    let report = w.report().await;
    let head = w.head().await;
    let r = w
        .app
        .post(
            &format!("/crimes/{report}/notify"),
            Some(&w.dispatcher),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    // Only the desk may ask: an officer or a citizen may not.
    w.dispatch(&report, &w.alpha).await;
    let head_after_dispatch = w.head().await;
    for token in [w.officer(0), w.citizen.as_str()] {
        let r = w
            .app
            .post(&format!("/crimes/{report}/notify"), Some(token), json!({}))
            .await;
        assert!(
            matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
            "{}",
            r.body
        );
    }
    assert_eq!(w.head().await, head_after_dispatch);
    assert!(head_after_dispatch > head);

    // Officer 0's device: officer 1 neither sees nor removes it; the ADMIN neither.
    let (mine, sub) = w.device(0, "mine").await;
    assert_eq!(w.devices(w.officer(0)).await.len(), 1);
    for other in [w.officer(1), w.admin.as_str()] {
        assert!(w.devices(other).await.is_empty());
        let r = w
            .app
            .delete(&format!("/me/devices/{mine}"), Some(other))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
        assert!(!r.body.to_string().contains(&sub.endpoint));
    }
    // The same endpoint twice is a conflict; the owner removes it (an event).
    let r = w
        .app
        .post("/me/devices", Some(w.officer(0)), sub.body())
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = w
        .app
        .delete(&format!("/me/devices/{mine}"), Some(w.officer(0)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(w.devices(w.officer(0)).await.is_empty());
    let r = w
        .app
        .delete(&format!("/me/devices/{mine}"), Some(w.officer(0)))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

#[tokio::test]
async fn an_erased_officer_is_notified_no_more_and_at_most_ten_devices_each() {
    let w = world().await;
    for i in 0..10 {
        w.device(1, &format!("d{i}")).await;
    }
    let extra = Subscription::new(w.push.endpoint("d10"));
    let r = w
        .app
        .post("/me/devices", Some(w.officer(1)), extra.body())
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    let (_, erased) = w.device(0, "erased").await;
    let r = w
        .app
        .delete(
            &format!("/admin/data-subjects/{}", w.officers[0].0),
            Some(&w.admin),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    // The endpoint reads as nothing in the log now.
    let stream =
        precinct_eventlog::StreamId::new("devices", w.officers[0].0.parse().expect("uuid"));
    let events = w.app.log.read(&stream).await.expect("read");
    let registered = &events[0].data;
    assert!(
        !registered.to_string().contains(&erased.endpoint),
        "{registered}"
    );
    let report = w.report().await;
    w.dispatch(&report, &w.alpha).await;
    // Officer 1's devices hear of it; the erased officer's does not (they also left the
    // crew with the erasure).
    w.push.wait("d9", 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(w.push.got("erased").is_empty());
}
