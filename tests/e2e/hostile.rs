//! Hostile input and misconfiguration (OWASP API Security Top 10, 2023): resource
//! limits on anonymous callers, CORS allow-list, security headers, no internals in
//! errors.

use precinct_tests::app::{Options, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

#[tokio::test]
async fn anonymous_reports_are_rate_limited_per_client_address() {
    let app = TestApp::spawn_with(Options {
        anonymous_reports_per_minute: 3,
        ..Options::default()
    })
    .await
    .expect("spawn");
    let admin = app.admin().await;
    app.precinct(&admin, "PS1", LAT, LON).await;
    let body = json!({"title": "t", "description": "d", "crime_types": ["Theft"],
                      "location": {"latitude": LAT, "longitude": LON}});
    for _ in 0..3 {
        assert_eq!(
            app.post("/crimes", None, body.clone()).await.status,
            StatusCode::CREATED
        );
    }
    let head = app.log.head().await.expect("head");
    let r = app.post("/crimes", None, body.clone()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );
    // Signed-in reporters are not limited by the anonymous quota.
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    assert_eq!(
        app.post("/crimes", Some(&citizen), body).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn cors_allows_only_configured_origins_and_headers_are_hardened() {
    let app = TestApp::spawn().await.expect("spawn");
    let allowed = app
        .call(
            Method::OPTIONS,
            "/crimes",
            None,
            None,
            &[
                ("Origin", "https://dispatch.precinct.test"),
                ("Access-Control-Request-Method", "POST"),
            ],
        )
        .await;
    assert_eq!(
        allowed
            .headers
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://dispatch.precinct.test")
    );
    let denied = app
        .call(
            Method::OPTIONS,
            "/crimes",
            None,
            None,
            &[
                ("Origin", "https://evil.example"),
                ("Access-Control-Request-Method", "POST"),
            ],
        )
        .await;
    assert!(denied.headers.get("access-control-allow-origin").is_none());

    let r = app.get("/health", None).await;
    for (h, v) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(
            r.headers.get(h).and_then(|x| x.to_str().ok()),
            Some(v),
            "{h}"
        );
    }
    assert!(r.headers.get("x-request-id").is_some());
    // Errors carry no internals.
    let r = app
        .http
        .post(format!("{}/users/login", app.base))
        .header("content-type", "application/json")
        .body("{\"email\": [")
        .send()
        .await
        .expect("send");
    let text = r.text().await.unwrap_or_default();
    for leak in ["panicked", "src/", ".rs:", "sqlx", "async_nats"] {
        assert!(!text.contains(leak), "error leaks {leak}: {text}");
    }
}
