//! Officer notifications (issue 18 item 2, ADR 0032) against a real HTTP receiver on
//! 127.0.0.1 standing in for the push service: every device of every crew member gets
//! a Web Push message on assignment, reassignment and the desk's "Notify officer"; each
//! message is decrypted with the subscription's private key and its VAPID JWT verified
//! by implementations independent of Precinct's (the PyPI packages `http_ece` and
//! `cryptography`, tests/push/webpush.py); a hanging push service holds back only its
//! own device; a 404 or 410 removes the device (an event); strict refusals of malformed
//! subscriptions and forbidden endpoints; devices are their owner's alone. A device
//! gateway (ADR 0038) gets the same notifications as JSON signed under its own secret,
//! verified by the `standardwebhooks` package (tests/webhooks/verify.py).

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
    content_type: String,
    /// A device gateway's Standard Webhooks headers.
    webhook_id: String,
    webhook_timestamp: String,
    webhook_signature: String,
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
        content_type: header("content-type"),
        webhook_id: header("webhook-id"),
        webhook_timestamp: header("webhook-timestamp"),
        webhook_signature: header("webhook-signature"),
        body: body.to_vec(),
    });
    match name.as_str() {
        "hang" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            AxStatus::CREATED.into_response()
        }
        "gone" => AxStatus::GONE.into_response(),
        "missing" => AxStatus::NOT_FOUND.into_response(),
        _ => AxStatus::CREATED.into_response(),
    }
}

/// Runs tests/push/webpush.py with `request`; its answer.
fn webpush(request: &Value) -> Value {
    precinct_tests::python::run_json("push/webpush.py", request, "http-ece")
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
    station: String,
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
        station,
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

    /// "Notify officer" by the desk: 202.
    async fn notify(&self, report: &str) -> precinct_tests::app::Res {
        let r = self
            .app
            .post(
                &format!("/crimes/{report}/notify"),
                Some(&self.dispatcher),
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        r
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

/// What a payload may say: nothing personal, nothing more (a gateway's also names the
/// device; see `a_device_gateway_gets…`).
fn assert_minimal(payload: &Value, report: &str, kind: &str) {
    let keys: Vec<&str> = payload
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "device_id")
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
        assert!(payloads[0].get("device_id").is_none(), "{}", payloads[0]);
    }
    w.push.wait("hang", 1, fast).await;
    assert!(w.push.got("c1").is_empty(), "BRAVO is not assigned");

    // "Notify officer": the same devices again, while the hanging request still hangs.
    let r = w.notify(&report).await;
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
    // A Web Push service answering 404: the subscription does not exist (RFC 8030).
    let (missing, _) = w.device(0, "missing").await;
    let (kept, _) = w.device(0, "kept").await;
    let report = w.report().await;
    w.dispatch(&report, &w.alpha).await;
    w.push.wait("gone", 1, Duration::from_secs(10)).await;
    w.push.wait("missing", 1, Duration::from_secs(10)).await;
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
    let mut removed: Vec<(String, u64)> = removed
        .iter()
        .map(|d| {
            assert_eq!(d["reason"], "EXPIRED", "{d}");
            (
                d["device_id"].as_str().unwrap_or_default().to_owned(),
                d["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    removed.sort_by_key(|(_, status)| *status);
    assert_eq!(removed, [(missing.clone(), 404), (gone.clone(), 410)]);
    // A notify later goes to the device that is left only.
    w.notify(&report).await;
    w.push.wait("kept", 2, Duration::from_secs(10)).await;
    assert_eq!(w.push.got("gone").len(), 1);
    assert_eq!(w.push.got("missing").len(), 1);
}

/// A device gateway: each notification as JSON with Standard Webhooks headers, signed
/// under the secret answered once at registration and verified independently; the
/// secret sealed in the log and never listed; a gateway answering 410 is removed.
#[tokio::test]
async fn a_device_gateway_gets_each_notification_signed_under_its_own_secret() {
    let w = world().await;
    let gateway = |name: &str| json!({"kind": "gateway", "endpoint": w.push.endpoint(name)});
    let r = w
        .app
        .post("/me/devices", Some(w.officer(0)), gateway("gw"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["kind"], "GATEWAY");
    assert_eq!(r.body["endpoint"], w.push.endpoint("gw"));
    let secret = r.body["secret"]
        .as_str()
        .expect("the secret, once")
        .to_owned();
    let gw_position = r.body["position"].as_u64().expect("position");
    let gw_id = r.body["id"].as_str().expect("id").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed = w.devices(w.officer(0)).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["kind"], "GATEWAY");
    assert!(listed[0].get("secret").is_none(), "{}", listed[0]);
    assert!(!Value::Array(listed).to_string().contains(&secret));
    let r = w
        .app
        .post("/me/devices", Some(w.officer(1)), gateway("gone"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let other_secret = r.body["secret"].as_str().expect("secret").to_owned();
    let gone_position = r.body["position"].as_u64().expect("position");
    // A gateway answering 404 (a routing mistake on its side) keeps its device.
    let r = w
        .app
        .post("/me/devices", Some(w.officer(1)), gateway("missing"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let missing = r.body["id"].clone();

    let report = w.report().await;
    w.dispatch(&report, &w.alpha).await;
    w.push.wait("gw", 1, Duration::from_secs(10)).await;
    w.notify(&report).await;
    let got = w.push.wait("gw", 2, Duration::from_secs(10)).await;
    for (g, kind) in got.iter().zip(["ASSIGNED", "NOTIFY"]) {
        assert_eq!(g.content_type, "application/json");
        assert!(g.content_encoding.is_empty() && g.authorization.is_empty());
        assert!(g.webhook_id.starts_with("msg_"), "{}", g.webhook_id);
        let payload: Value = serde_json::from_slice(&g.body).expect("JSON");
        assert_minimal(&payload, &report, kind);
        assert_eq!(payload["device_id"], gw_id.as_str(), "{payload}");
    }
    assert_ne!(
        got[0].webhook_id, got[1].webhook_id,
        "one id per notification"
    );
    let signed: Vec<precinct_tests::python::Signed<'_>> = got
        .iter()
        .map(|g| {
            (
                std::str::from_utf8(&g.body).expect("utf-8"),
                g.webhook_id.as_str(),
                g.webhook_timestamp.as_str(),
                g.webhook_signature.as_str(),
            )
        })
        .collect();
    assert_eq!(
        precinct_tests::python::standard_webhooks_verify(&secret, &signed),
        [true, true]
    );
    assert_eq!(
        precinct_tests::python::standard_webhooks_verify(&other_secret, &signed),
        [false, false],
        "signed under this device's secret, not another's"
    );

    // The gateway that answered 410 is removed by an event.
    w.push.wait("gone", 1, Duration::from_secs(10)).await;
    w.push.wait("missing", 1, Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ids: Vec<Value> = w
            .devices(w.officer(1))
            .await
            .iter()
            .map(|d| d["id"].clone())
            .collect();
        if ids == vec![missing.clone()] {
            break;
        }
        assert!(Instant::now() < deadline, "listed: {ids:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // …and keeps being tried (the failed notification again, and the next one).
    w.push.wait("missing", 2, Duration::from_secs(10)).await;
    assert_eq!(w.devices(w.officer(1)).await.len(), 1);
    // The secret never entered the log in the clear: the stored event holds it sealed.
    for position in [gw_position, gone_position] {
        let raw = crate::store::jetstream(&w.app.config.nats_url)
            .await
            .get_stream(&w.app.log.config().stream)
            .await
            .expect("stream")
            .direct_get(position)
            .await
            .expect("raw message");
        let text = String::from_utf8_lossy(&raw.payload);
        assert!(
            !text.contains(&secret) && !text.contains(&other_secret),
            "a secret in the clear: {text}"
        );
        let raw: Value = serde_json::from_slice(&raw.payload).expect("json");
        assert_eq!(raw["data"]["keys"]["sealed"], "A256GCM", "{raw}");
    }
}

/// Without a VAPID key a gateway is still registered; Web Push is 503.
#[tokio::test]
async fn a_gateway_needs_no_vapid_key() {
    let mut opts = Options::default();
    opts.push.vapid = None;
    let app = TestApp::spawn_with(opts).await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, officer) = app.account(&admin, "PATROL", Some(&station)).await;
    let r = app
        .post(
            "/me/devices",
            Some(&officer),
            json!({"kind": "gateway", "endpoint": "http://127.0.0.1:9/gw"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(
            "/me/devices",
            Some(&officer),
            Subscription::new("http://127.0.0.1:9/push".into()).body(),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
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
            "a gateway over plain http",
            json!({"kind": "gateway", "endpoint": "http://127.0.0.1:9/gw"}),
            "endpoint",
        ),
        (
            "a gateway on a private address",
            json!({"kind": "gateway", "endpoint": "https://10.1.2.3/gw"}),
            "endpoint",
        ),
        (
            "a gateway with keys",
            json!({"kind": "gateway", "endpoint": "https://1.1.1.1/gw", "keys": keys}),
            "keys",
        ),
        (
            "web push without keys",
            json!({"kind": "web_push", "endpoint": "https://1.1.1.1/p"}),
            "keys",
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

#[tokio::test]
async fn the_crew_is_pushed_the_sla_warning_and_the_stations_supervisors_the_warning_breach_and_escalation(
) {
    let w = world().await;
    let (_, supervisor) = w
        .app
        .account(&w.admin, "SUPERVISOR", Some(&w.station))
        .await;
    let r = w
        .app
        .put(
            &format!("/stations/{}/sla-policy", w.station),
            Some(&supervisor),
            json!({"deadlines": {"CRITICAL": {"accept_secs": 2}}, "warn_at_percent": 50,
                "unaccepted": {"action": "REQUEUE", "after_secs": 1}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (_, officer) = w.device(2, "bravo-officer").await;
    let sup = Subscription::new(w.push.endpoint("supervisor"));
    let r = w
        .app
        .post("/me/devices", Some(&supervisor), sup.body())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let report = w.report().await;
    let t = w
        .app
        .post(
            &format!("/crimes/{report}/triage"),
            Some(&w.dispatcher),
            json!({"priority": "CRITICAL"}),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    w.dispatch(&report, &w.bravo).await;

    let kinds = |payloads: &[Value]| -> Vec<String> {
        payloads
            .iter()
            .map(|p| {
                assert_eq!(p["report_id"], report.as_str(), "{p}");
                assert_eq!(p["priority"], "CRITICAL", "{p}");
                p["kind"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    };
    let got = w
        .push
        .wait("bravo-officer", 2, Duration::from_secs(20))
        .await;
    assert_eq!(
        kinds(&officer.open(&got, &w.vapid_key)),
        ["ASSIGNED", "SLA_WARNING"]
    );
    let got = w.push.wait("supervisor", 3, Duration::from_secs(20)).await;
    assert_eq!(
        kinds(&sup.open(&got, &w.vapid_key)),
        ["SLA_WARNING", "SLA_BREACH", "SLA_ESCALATION"]
    );
    // The breach and the escalation (the assignment back to the queue) go to the
    // supervisors, not to the crew; nothing is sent twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.push.got("bravo-officer").len(), 2);
    assert_eq!(w.push.got("supervisor").len(), 3);
    let (status, text) = precinct_tests::prometheus::scrape(&w.app, Some(&w.admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        precinct_tests::prometheus::sample(
            &text,
            r#"precinct_push_attempts_total{outcome="delivered"}"#
        ),
        Some(5.0),
        "{text}"
    );
}
