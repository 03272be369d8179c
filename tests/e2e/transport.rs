//! The edge of the process: client addresses behind trusted proxies (request log and
//! per-address limits), HTTPS served directly with HSTS, the refusal to serve plain HTTP
//! on a non-loopback address, and credentials that must never reach the request log
//! (invite codes).

use std::time::Duration;

use precinct_tests::app::{Options, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

/// The request-log row of `request_id`: (path, status, client_addr), waiting (bounded)
/// for the group-committed record to be projected.
async fn logged(app: &TestApp, request_id: &str) -> (String, i32, Option<String>) {
    for _ in 0..100 {
        let row: Option<(String, i32, Option<String>)> = sqlx::query_as(
            "SELECT path, status, client_addr FROM request_log WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(&app.pool)
        .await
        .expect("request_log");
        if let Some(row) = row {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("request {request_id} never reached the request log");
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let proxied = TestApp::spawn_with(Options {
        anonymous_reports_per_minute: 1,
        ..Options::behind_loopback_proxy()
    })
    .await
    .expect("spawn proxied");
    let direct = TestApp::spawn_with(Options {
        anonymous_reports_per_minute: 1,
        ..Options::default()
    })
    .await
    .expect("spawn direct");
    // The client wrote a fake first hop; the trusted proxy appended the real one.
    let xff = ("X-Forwarded-For", "6.6.6.6, 198.51.100.77");
    let r = proxied
        .call(
            Method::GET,
            "/health",
            None,
            None,
            &[xff, ("X-Request-Id", "via-trusted-proxy")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let (_, _, addr) = logged(&proxied, "via-trusted-proxy").await;
    assert_eq!(addr.as_deref(), Some("198.51.100.77"));
    // From a peer that is not a trusted proxy, the same header is a lie and is ignored.
    let r = direct
        .call(
            Method::GET,
            "/health",
            None,
            None,
            &[xff, ("X-Request-Id", "spoofed-xff")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers.get("strict-transport-security").is_none(),
        "no HSTS over plain HTTP"
    );
    let (_, _, addr) = logged(&direct, "spoofed-xff").await;
    assert_eq!(addr.as_deref(), Some("127.0.0.1"));

    // Per-address limits use the same address: behind the trusted proxy each client has
    // its own anonymous-report quota; directly, a forged header does not buy a new one.
    let report = json!({"title": "t", "description": "d", "crime_types": ["Theft"],
                        "location": {"latitude": LAT, "longitude": LON}});
    for app in [&proxied, &direct] {
        let admin = app.admin().await;
        app.precinct(&admin, "PS1", LAT, LON).await;
    }
    assert_eq!(
        post(&proxied, &report, "198.51.100.1").await,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&proxied, &report, "198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        post(&proxied, &report, "198.51.100.2").await,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&direct, &report, "198.51.100.1").await,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&direct, &report, "198.51.100.2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn post(app: &TestApp, report: &serde_json::Value, from: &str) -> StatusCode {
    app.call(
        Method::POST,
        "/crimes",
        None,
        Some(report.clone()),
        &[("X-Forwarded-For", from)],
    )
    .await
    .status
}

#[tokio::test]
async fn https_is_served_with_hsts_when_a_certificate_is_configured() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let dir = std::env::temp_dir().join(format!("precinct-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).expect("cert");
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).expect("key");
    let app = TestApp::spawn_with(Options {
        tls: Some(precinct::TlsFiles {
            cert: cert_file,
            key: key_file,
        }),
        ..Options::default()
    })
    .await
    .expect("spawn");
    let addr: std::net::SocketAddr = app
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("root"),
        )
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let base = format!("https://localhost:{}", addr.port());
    let res = client
        .get(format!("{base}/health"))
        .header("X-Request-Id", "over-tls")
        .send()
        .await
        .expect("GET /health over TLS");
    assert_eq!(res.status(), StatusCode::OK);
    let hsts = res
        .headers()
        .get("strict-transport-security")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(hsts.starts_with("max-age="), "HSTS: {hsts:?}");
    let login = client
        .post(format!("{base}/users/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login over TLS");
    assert_eq!(login.status(), StatusCode::OK);
    // The peer address reaches the request log through the TLS listener too.
    let (_, status, client_addr) = logged(&app, "over-tls").await;
    assert_eq!((status, client_addr.as_deref()), (200, Some("127.0.0.1")));
    // Plain HTTP on the TLS port gets no answer from the API.
    let plain = app
        .http
        .get(format!("http://{addr}/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain
            .as_ref()
            .map(|r| r.status() != StatusCode::OK)
            .unwrap_or(true),
        "plain HTTP was served: {plain:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn plain_http_on_a_non_loopback_address_is_refused_at_start() {
    let app = TestApp::spawn().await.expect("spawn");
    let mut config = app.config.clone();
    config.http_addr = "0.0.0.0:0".parse().expect("addr");
    let err = precinct::server::start(config, CancellationToken::new())
        .await
        .expect_err("plain HTTP on every interface must be refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("PRECINCT_TLS_CERT") && msg.contains("PRECINCT_BEHIND_TLS_PROXY"),
        "{msg}"
    );
}

#[tokio::test]
async fn invite_codes_never_reach_the_request_log() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let r = app
        .post(
            "/invites",
            Some(&admin),
            json!({"email": "olga@precinct.test", "role": "PATROL", "station_id": station}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let code = r.body["code"].as_str().expect("code").to_string();
    let accept = |name: &'static str, password: &'static str, request_id: &'static str| {
        let code = code.clone();
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/invites/accept",
                None,
                Some(json!({"code": code, "name": name, "password": password})),
                &[("X-Request-Id", request_id)],
            )
            .await
            .status
        }
    };
    // A failed accept (password too short), the accept, a second accept (used).
    assert_eq!(
        accept("Olga", "short", "accept-invalid").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        accept("Olga", PASSWORD, "accept-ok").await,
        StatusCode::CREATED
    );
    assert_eq!(
        accept("Olga", PASSWORD, "accept-again").await,
        StatusCode::CONFLICT
    );
    // An old client still putting the code in the path: not routed, and redacted.
    let old = app
        .call(
            Method::POST,
            &format!("/invites/{code}/accept"),
            None,
            Some(json!({"name": "Olga", "password": PASSWORD})),
            &[("X-Request-Id", "accept-old-path")],
        )
        .await;
    assert_eq!(old.status, StatusCode::NOT_FOUND);
    app.login("olga@precinct.test", PASSWORD).await;
    for id in ["accept-invalid", "accept-ok", "accept-again"] {
        let (path, _, _) = logged(&app, id).await;
        assert_eq!(path, "/invites/accept");
    }
    let (path, status, _) = logged(&app, "accept-old-path").await;
    assert_eq!((path.as_str(), status), ("/invites/{code}/accept", 404));
    let leaked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM request_log WHERE strpos(path, $1) > 0")
            .bind(&code)
            .fetch_one(&app.pool)
            .await
            .expect("request_log");
    assert_eq!(leaked, 0, "an invite code is in the request log");
}
