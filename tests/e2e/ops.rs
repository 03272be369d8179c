//! The operations listener through the real binary (ADR 0025; issue 20, items 1 and 4):
//! a `precinct serve --roles projector,sla` process, which has no API, is probed and
//! scraped on `PRECINCT_OPS_ADDR` — readiness that means its dependencies, projections
//! and workers, the projection gauges and SLA families of that process, the API's token
//! rule for `/metrics` — and serves nothing else there.

use std::time::{Duration, Instant};

use precinct_tests::chaos::procs::PrecinctProc;
use precinct_tests::client::{Call, Client, NewAccount, NewReport};
use precinct_tests::prometheus::sample;
use reqwest::StatusCode;
use serde_json::Value;

const METRICS_TOKEN: &str = "ops-listener-scraper-token-0123";
const ADMIN_EMAIL: &str = "ops-admin@precinct.test";
const ADMIN_PASSWORD: &str = "a long ops passphrase 42";

/// `GET <base><path>` with an optional bearer token: status and body text.
async fn get(http: &reqwest::Client, url: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (res.status(), res.text().await.unwrap_or_default())
}

/// The environment of one test's processes: a fresh database and stream prefix on
/// `nats_url`, one JWT secret and the scrapers' token.
async fn process_env(nats_url: &str) -> Vec<(String, String)> {
    let (_, database_url) = precinct_tests::pg::fresh_database()
        .await
        .expect("database");
    let mut env: Vec<(String, String)> = [
        ("NATS_URL", nats_url.to_string()),
        ("DATABASE_URL", database_url),
        ("PRECINCT_STREAM_PREFIX", precinct_tests::unique_prefix()),
        (
            "PRECINCT_MASTER_KEY",
            format!("test-k1:{}", "01".repeat(32)),
        ),
        // One secret for every process: an ADMIN token the API issues is checked by
        // the projector's operations listener.
        (
            "PRECINCT_JWT_SECRET",
            format!("ops-test-secret-{}", "ab".repeat(16)),
        ),
        ("PRECINCT_METRICS_TOKEN", METRICS_TOKEN.to_string()),
        ("RUST_LOG", "warn".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Ok(r) = std::env::var("PRECINCT_TEST_NATS_REPLICAS") {
        env.push(("PRECINCT_NATS_REPLICAS".into(), r));
    }
    env
}

/// Polls `GET <url>` until it answers `want` (bounded): the last body.
async fn until_status(http: &reqwest::Client, url: &str, want: StatusCode) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last = match http.get(url).send().await {
            Ok(res) => {
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                if status == want {
                    return body;
                }
                format!("{status} {body}")
            }
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "GET {url} never answered {want}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_process_is_probed_and_scraped_on_its_operations_listener() {
    let dir = std::env::temp_dir().join(format!("precinct-ops-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let env = process_env(&precinct_tests::nats::shared_url()).await;
    let mut api_env = env.clone();
    api_env.push(("PRECINCT_ADMIN_EMAIL".into(), ADMIN_EMAIL.into()));
    api_env.push(("PRECINCT_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
    let api_port = precinct_tests::nats::free_port().expect("port");
    let ops_port = precinct_tests::nats::free_port().expect("port");
    let mut projector_env = env;
    projector_env.push(("PRECINCT_OPS_ADDR".into(), format!("127.0.0.1:{ops_port}")));
    let dir2 = dir.clone();
    let (_api, _projector) = tokio::task::spawn_blocking(move || {
        let api = PrecinctProc::start(
            "api,live",
            api_env,
            Some(api_port),
            dir2.join("precinct-api.log"),
        )
        .expect("precinct serve --roles api,live");
        let projector = PrecinctProc::start(
            "projector,sla",
            projector_env,
            None,
            dir2.join("precinct-projector.log"),
        )
        .expect("precinct serve --roles projector,sla");
        precinct_tests::chaos::pg::wait_listening(ops_port, Duration::from_secs(60))
            .expect("the projector's operations listener");
        (api, projector)
    })
    .await
    .expect("join");

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let api = Client::new(format!("http://127.0.0.1:{api_port}"), http.clone());
    let ops = format!("http://127.0.0.1:{ops_port}");

    // Commands through the API (a station, then a report in its area); the projector
    // process projects them.
    let admin = api
        .login(ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect("admin login");
    let station = api
        .call(
            &Call::precinct("Ops Precinct", 7.07, 125.61),
            Some(&admin.token),
        )
        .await
        .expect("POST a station");
    assert!(
        station.status.is_success(),
        "{}: {}",
        station.status,
        station.body
    );
    api.caught_up(station.position(), Duration::from_secs(30))
        .await
        .expect("the station projected");
    let submitted = api
        .call(&Call::submit(&NewReport::bike(7.07, 125.61)), None)
        .await
        .expect("POST /crimes");
    assert!(
        submitted.status.is_success(),
        "{}: {}",
        submitted.status,
        submitted.body
    );
    let position = submitted.position();
    assert!(position > 0, "no position: {}", submitted.body);

    // The projector's own scrape shows the report projected (the gauges are read from
    // the checkpoints at the scrape, by the process scraped), and it is then ready.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (status, text) = get(&http, &format!("{ops}/metrics"), Some(METRICS_TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let reached = sample(
            &text,
            "precinct_projection_position{projection=\"reports\"}",
        )
        .is_some_and(|p| p >= position as f64);
        if reached {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the reports projection did not reach {position} in the projector's scrape:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let names = precinct_readmodel::EVENT_PROJECTIONS.iter().chain(&[
        precinct_readmodel::names::REQUEST_LOG,
        precinct_readmodel::names::PATROL_POSITIONS,
    ]);
    for projection in names {
        for family in [
            "precinct_projection_position",
            "precinct_projection_lag_positions",
            "precinct_projection_lag_seconds",
            "precinct_projection_quarantined",
        ] {
            let series = format!("{family}{{projection=\"{projection}\"}}");
            assert!(sample(&metrics, &series).is_some(), "{series} missing");
        }
        assert_eq!(
            sample(
                &metrics,
                &format!("precinct_projection_quarantined{{projection=\"{projection}\"}}")
            ),
            Some(0.0)
        );
    }
    for kind in ["accept", "respond"] {
        // Registered at zero: nothing is overdue with the default deadlines.
        assert_eq!(
            sample(
                &metrics,
                &format!("precinct_sla_breaches_total{{kind=\"{kind}\"}}")
            ),
            Some(0.0),
            "precinct_sla_breaches_total{{kind={kind}}}"
        );
        assert!(
            sample(
                &metrics,
                &format!("precinct_sla_overdue_reports{{kind=\"{kind}\"}}")
            )
            .is_some(),
            "precinct_sla_overdue_reports{{kind={kind}}}"
        );
    }
    assert!(sample(&metrics, "precinct_log_head").is_some_and(|h| h >= position as f64));

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(&http, &format!("{ops}/health/ready"), None).await;
        if status == StatusCode::OK {
            // Without a token: the status only.
            let body: Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(body, serde_json::json!({"status": "ready"}));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the projector never became ready: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = get(&http, &format!("{ops}/health/live"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The token rule of the API's /metrics: none or an unknown one is 401, a token of a
    // non-ADMIN account 403, an ADMIN's 200. An ADMIN also sees the readiness details,
    // this process's workers among them.
    let (status, _) = get(&http, &format!("{ops}/metrics"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get(&http, &format!("{ops}/metrics"), Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let citizen = NewAccount {
        email: "ops-citizen@precinct.test",
        password: "a citizen passphrase 42",
        name: "Ops Citizen".into(),
        role: None,
        station_id: None,
    };
    api.run(&Call::register(&citizen), None)
        .await
        .expect("register");
    let citizen = api
        .login(citizen.email, citizen.password)
        .await
        .expect("citizen login");
    let (status, body) = get(&http, &format!("{ops}/metrics"), Some(&citizen.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, text) = get(&http, &format!("{ops}/metrics"), Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("precinct_sla_breaches_total"));
    let (status, body) = get(&http, &format!("{ops}/health/ready"), Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        body["workers"],
        serde_json::json!([
            {"name": "projector", "running": true},
            {"name": "sla", "running": true},
        ]),
        "{body}"
    );
    assert_eq!(body["postgres"]["ok"], true);
    assert_eq!(body["nats"]["ok"], true);

    // Nothing but the operations routes: API routes, the API's own health path and the
    // document are 404 there, problem+json; other methods 405.
    for path in [
        "/crimes",
        "/health",
        "/openapi.json",
        "/users/me",
        "/patrols/stream",
    ] {
        let res = http
            .get(format!("{ops}{path}"))
            .bearer_auth(&admin.token)
            .send()
            .await
            .expect("GET");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{path}"
        );
    }
    let res = http
        .post(format!("{ops}/crimes"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = http
        .post(format!("{ops}/metrics"))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Readiness means the dependencies: a projector process whose NATS is gone is not
/// ready, but still live (restarting it would not bring NATS back), and ready again
/// once NATS is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_without_nats_is_not_ready_but_still_live() {
    let mut nats = tokio::task::spawn_blocking(precinct_tests::nats::PrivateNats::start)
        .await
        .expect("join")
        .expect("nats-server");
    let mut env = process_env(&nats.url()).await;
    // A private server has one node.
    env.retain(|(k, _)| k != "PRECINCT_NATS_REPLICAS");
    let ops_port = precinct_tests::nats::free_port().expect("port");
    env.push(("PRECINCT_OPS_ADDR".into(), format!("127.0.0.1:{ops_port}")));
    let dir = std::env::temp_dir().join(format!("precinct-ops-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let log = dir.join("precinct-projector.log");
    let _projector = tokio::task::spawn_blocking(move || {
        let p = PrecinctProc::start("projector,sla", env, None, log)
            .expect("precinct serve --roles projector,sla");
        precinct_tests::chaos::pg::wait_listening(ops_port, Duration::from_secs(60))
            .expect("the operations listener");
        p
    })
    .await
    .expect("join");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let ops = format!("http://127.0.0.1:{ops_port}");
    until_status(&http, &format!("{ops}/health/ready"), StatusCode::OK).await;

    tokio::task::block_in_place(|| nats.kill());
    let body = until_status(
        &http,
        &format!("{ops}/health/ready"),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON"),
        serde_json::json!({"status": "not_ready"})
    );
    let (status, body) = get(&http, &format!("{ops}/health/live"), None).await;
    assert_eq!(status, StatusCode::OK, "live without NATS: {body}");
    let (status, metrics) = get(&http, &format!("{ops}/metrics"), Some(METRICS_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sample(&metrics, "precinct_nats_connected"), Some(0.0));

    tokio::task::block_in_place(|| nats.restart()).expect("nats-server again");
    until_status(&http, &format!("{ops}/health/ready"), StatusCode::OK).await;
    let (status, _) = get(&http, &format!("{ops}/health/live"), None).await;
    assert_eq!(status, StatusCode::OK);
    let _ = std::fs::remove_dir_all(&dir);
}
