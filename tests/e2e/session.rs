//! The console's browser session (ADR 0029), over HTTP against the real server: cookie
//! flags, CSRF refusals, logout revocation across replicas, the SSE streams with the
//! cookie, renewal and expiry. A bearer token keeps working unchanged beside it.

use std::time::{Duration, Instant};

use precinct::Roles;
use precinct_tests::app::{Res, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use precinct_tests::world::{Spec, StationSpec};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const LAT: f64 = 52.52;
const LON: f64 = 13.40;

/// A console session as a browser holds it.
struct Browser {
    /// `precinct_session=…; precinct_csrf=…`, as a `Cookie` header.
    cookie: String,
    session: String,
    csrf: String,
    origin: String,
}

/// The `Set-Cookie` header of `name` in `r`, whole.
fn set_cookie(r: &Res, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// The value of a `Set-Cookie` header.
fn value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|p| p.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

fn origin(app: &TestApp) -> String {
    app.base.clone()
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Browser {
    let r = app
        .call(
            Method::POST,
            "/session",
            None,
            Some(json!({"email": email, "password": password})),
            &[("Origin", &origin(app))],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let session = value(&set_cookie(&r, "precinct_session").expect("session cookie"));
    let csrf = value(&set_cookie(&r, "precinct_csrf").expect("csrf cookie"));
    assert_eq!(r.body["csrf_token"], csrf.as_str());
    Browser {
        cookie: format!("precinct_session={session}; precinct_csrf={csrf}"),
        session,
        csrf,
        origin: origin(app),
    }
}

/// A request of the browser: its cookie and, when `proofs`, its Origin and CSRF header.
async fn browse(
    app: &TestApp,
    b: &Browser,
    method: Method,
    path: &str,
    body: Option<Value>,
    proofs: bool,
) -> Res {
    let mut headers = vec![("Cookie", b.cookie.as_str())];
    if proofs {
        // The page is of the server it calls (each replica is an origin of its own here).
        headers.push(("Origin", app.base.as_str()));
        headers.push(("X-Precinct-CSRF", b.csrf.as_str()));
    }
    app.call(method, path, None, body, &headers).await
}

fn assert_problem(r: &Res, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.body);
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(ct, "application/problem+json", "{}", r.body);
    assert_eq!(r.body["status"], status.as_u16());
}

fn precinct_body(name: &str) -> Value {
    json!({"name": name, "kind": "PRECINCT", "latitude": LAT, "longitude": LON,
        "area": {"type": "Polygon", "coordinates": [[[LON - 0.05, LAT - 0.05],
            [LON + 0.05, LAT - 0.05], [LON + 0.05, LAT + 0.05], [LON - 0.05, LAT + 0.05],
            [LON - 0.05, LAT - 0.05]]]}})
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_that_authenticates_reads() {
    let app = TestApp::spawn().await.expect("spawn");
    let r = app
        .call(
            Method::POST,
            "/session",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
            &[("Sec-Fetch-Site", "same-origin")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let session = set_cookie(&r, "precinct_session").expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=900"] {
        assert!(session.contains(flag), "{session}");
    }
    // Plain HTTP on loopback (development): no `Secure`, or the browser would drop it.
    assert!(!session.contains("Secure"), "{session}");
    let csrf = set_cookie(&r, "precinct_csrf").expect("csrf cookie");
    assert!(
        !csrf.contains("HttpOnly") && csrf.contains("SameSite=Strict"),
        "{csrf}"
    );
    assert_eq!(r.body["user"]["role"], "ADMIN");
    assert_eq!(r.body["user"]["email"], ADMIN_EMAIL);
    assert_eq!(
        r.headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert!(
        !r.body.to_string().contains(&value(&session)),
        "the token is never in the body"
    );

    let b = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let me = browse(&app, &b, Method::GET, "/session", None, false).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["csrf_token"], b.csrf.as_str());
    let list = browse(&app, &b, Method::GET, "/users?limit=5", None, false).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    // Wrong password: the same 401 as `/users/login`, no cookie.
    let wrong = app
        .call(
            Method::POST,
            "/session",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": "not the password"})),
            &[("Origin", &origin(&app))],
        )
        .await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "precinct_session").is_none());
    // A bearer token pasted into the cookie is not a session.
    let bearer = app.admin().await;
    let pasted = app
        .call(
            Method::GET,
            "/users?limit=5",
            None,
            None,
            &[("Cookie", &format!("precinct_session={bearer}"))],
        )
        .await;
    assert_problem(&pasted, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_in_from_another_site_is_refused() {
    let app = TestApp::spawn().await.expect("spawn");
    let creds = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
    for headers in [
        vec![],
        vec![("Origin", "https://evil.test")],
        vec![("Origin", "null")],
        vec![
            ("Sec-Fetch-Site", "cross-site"),
            ("Origin", app.base.as_str()),
        ],
    ] {
        let r = app
            .call(
                Method::POST,
                "/session",
                None,
                Some(creds.clone()),
                &headers,
            )
            .await;
        assert_problem(&r, StatusCode::FORBIDDEN);
        assert!(set_cookie(&r, "precinct_session").is_none(), "{headers:?}");
    }
}

#[tokio::test]
async fn cookie_writes_need_this_origin_and_the_csrf_header_and_bearer_tokens_need_neither() {
    let app = TestApp::spawn().await.expect("spawn");
    let b = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let head = app.log.head().await.expect("head");
    let cookie_only = [("Cookie", b.cookie.as_str())];
    let refusals: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no proofs", cookie_only.to_vec()),
        (
            "origin without the header",
            vec![cookie_only[0], ("Origin", b.origin.as_str())],
        ),
        (
            "header without an origin",
            vec![cookie_only[0], ("X-Precinct-CSRF", b.csrf.as_str())],
        ),
        (
            "another site",
            vec![
                cookie_only[0],
                ("Origin", "https://evil.test"),
                ("X-Precinct-CSRF", b.csrf.as_str()),
            ],
        ),
        (
            "a wrong value",
            vec![
                cookie_only[0],
                ("Origin", b.origin.as_str()),
                ("X-Precinct-CSRF", "00"),
            ],
        ),
    ];
    for (why, headers) in &refusals {
        let r = app
            .call(
                Method::POST,
                "/stations",
                None,
                Some(precinct_body("Mitte")),
                headers,
            )
            .await;
        assert_problem(&r, StatusCode::FORBIDDEN);
        assert!(r.body["detail"].is_string(), "{why}: {}", r.body);
    }
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "a refused request appended an event"
    );
    // Another session's CSRF value does not open this one.
    let other = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let crossed = app
        .call(
            Method::POST,
            "/stations",
            None,
            Some(precinct_body("Mitte")),
            &[
                ("Cookie", &b.cookie),
                ("Origin", &b.origin),
                ("X-Precinct-CSRF", &other.csrf),
            ],
        )
        .await;
    assert_problem(&crossed, StatusCode::FORBIDDEN);
    // With both proofs the write goes through; Sec-Fetch-Site alone stands for Origin.
    let ok = browse(
        &app,
        &b,
        Method::POST,
        "/stations",
        Some(precinct_body("Mitte")),
        true,
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let fetch = app
        .call(
            Method::POST,
            "/stations",
            None,
            Some(precinct_body("Tiergarten")),
            &[
                ("Cookie", &b.cookie),
                ("Sec-Fetch-Site", "same-origin"),
                ("X-Precinct-CSRF", &b.csrf),
            ],
        )
        .await;
    assert_eq!(fetch.status, StatusCode::CREATED, "{}", fetch.body);
    // A bearer token: unchanged, no proofs needed.
    let admin = app.admin().await;
    let bearer = app
        .post("/stations", Some(&admin), precinct_body("Wedding"))
        .await;
    assert_eq!(bearer.status, StatusCode::CREATED, "{}", bearer.body);
}

#[tokio::test]
async fn logout_revokes_the_session_in_every_replica() {
    let app = TestApp::spawn().await.expect("spawn");
    let (config, prefix, database) = app.stop().await.expect("stop");
    let first = TestApp::start(config.clone(), prefix.clone(), database.clone())
        .await
        .expect("first process");
    let second = TestApp::start(
        precinct::Config {
            roles: Roles::parse("api").expect("roles"),
            ..config
        },
        prefix,
        database,
    )
    .await
    .expect("second process");
    let b = sign_in(&first, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // The second replica honours the first one's session.
    let r = browse(&second, &b, Method::GET, "/session", None, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Logout needs the proofs too (a cross-site page must not sign anyone out).
    let forged = browse(&first, &b, Method::DELETE, "/session", None, false).await;
    assert_problem(&forged, StatusCode::FORBIDDEN);
    let out = browse(&first, &b, Method::DELETE, "/session", None, true).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    let cleared = set_cookie(&out, "precinct_session").expect("cleared cookie");
    assert!(
        cleared.starts_with("precinct_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // The token has not expired, yet neither replica takes it any more.
    for (name, replica) in [("first", &first), ("second", &second)] {
        let r = browse(replica, &b, Method::GET, "/session", None, false).await;
        assert_problem(&r, StatusCode::UNAUTHORIZED);
        let r = browse(replica, &b, Method::GET, "/patrols/stream", None, false).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {}", r.body);
        let r = browse(
            replica,
            &b,
            Method::POST,
            "/stations",
            Some(precinct_body("Mitte")),
            true,
        )
        .await;
        assert_problem(&r, StatusCode::UNAUTHORIZED);
        let r = browse(replica, &b, Method::POST, "/session/renew", None, true).await;
        assert_problem(&r, StatusCode::UNAUTHORIZED);
    }
    // Logging out again is harmless.
    let again = browse(&second, &b, Method::DELETE, "/session", None, true).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
}

/// Reads `res`'s event stream until a frame contains every one of `needles` (bounded).
async fn frame_with(res: &mut reqwest::Response, needles: &[&str], bound: Duration) -> String {
    let started = Instant::now();
    let mut buffer = String::new();
    while started.elapsed() < bound {
        let left = bound.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, res.chunk()).await {
            Ok(Ok(Some(chunk))) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
        if let Some(frame) = buffer
            .split("\n\n")
            .find(|f| needles.iter().all(|n| f.contains(n)))
        {
            return frame.to_string();
        }
    }
    panic!("no frame with {needles:?} in {bound:?}: {buffer}");
}

#[tokio::test]
async fn the_live_streams_accept_the_session_cookie() {
    let app = TestApp::spawn().await.expect("spawn");
    let w = app
        .world(&Spec {
            stations: vec![StationSpec::new("Mitte", LAT, LON).crews(&["ALPHA-1"])],
            citizens: 0,
        })
        .await;
    let crew = &w.stations[0].crews[0];
    let b = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let http = precinct_tests::sse::stream_client();
    let mut stream = http
        .get(format!("{}/patrols/stream", app.base))
        .header("Cookie", &b.cookie)
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        stream
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let moved = app
        .put(
            &format!("/patrols/{}/location", crew.patrol),
            Some(&crew.officer.token),
            json!({"latitude": LAT + 0.001, "longitude": LON}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::ACCEPTED, "{}", moved.body);
    let frame = frame_with(
        &mut stream,
        &["event: position", &crew.patrol],
        Duration::from_secs(10),
    )
    .await;
    assert!(frame.contains("52.521"), "{frame}");
    // The desk's stream of report changes too.
    let mut desk = http
        .get(format!(
            "{}/queues/reports/stream?station_id={}",
            app.base,
            w.stations[0].id()
        ))
        .header("Cookie", &b.cookie)
        .send()
        .await
        .expect("stream");
    assert_eq!(desk.status(), StatusCode::OK);
    let report = app.report(None, LAT + 0.001, LON, &["Theft"]).await.id();
    frame_with(
        &mut desk,
        &["event: report", &report, "ReportSubmitted"],
        Duration::from_secs(10),
    )
    .await;
    // Without the cookie (or with a forged one) the stream is closed to the browser.
    let anonymous = http
        .get(format!("{}/patrols/stream", app.base))
        .send()
        .await
        .expect("answer");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let forged = http
        .get(format!("{}/patrols/stream", app.base))
        .header("Cookie", format!("precinct_session={}x", b.session))
        .send()
        .await
        .expect("answer");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    // Logout ends the streams the session holds open (checked every 10 s).
    let out = browse(&app, &b, Method::DELETE, "/session", None, true).await;
    assert!(out.status.is_success(), "{}", out.body);
    let started = Instant::now();
    for stream in [&mut stream, &mut desk] {
        let ended = loop {
            match tokio::time::timeout(Duration::from_secs(25), stream.chunk()).await {
                // Keep-alive comments until the check sees the logout.
                Ok(Ok(Some(_))) if started.elapsed() < Duration::from_secs(25) => continue,
                Ok(Ok(None)) | Ok(Err(_)) => break true,
                _ => break false,
            }
        };
        assert!(
            ended,
            "the stream outlived its session by {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_session_renews_until_it_ends_and_an_expired_one_is_refused() {
    let app = TestApp::spawn().await.expect("spawn");
    let b = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // Renewal: the proofs are needed; the answer sets a new token of the same session.
    let forged = browse(&app, &b, Method::POST, "/session/renew", None, false).await;
    assert_problem(&forged, StatusCode::FORBIDDEN);
    // Tokens are second-grained: let a second pass so the new one differs.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let renewed = browse(&app, &b, Method::POST, "/session/renew", None, true).await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    let token = value(&set_cookie(&renewed, "precinct_session").expect("cookie"));
    assert_ne!(token, b.session);
    assert_eq!(renewed.body["csrf_token"], b.csrf.as_str());
    let fresh = Browser {
        cookie: format!("precinct_session={token}; precinct_csrf={}", b.csrf),
        session: token.clone(),
        csrf: b.csrf.clone(),
        origin: b.origin.clone(),
    };
    let r = browse(&app, &fresh, Method::GET, "/session", None, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A bearer token has no session to renew.
    let admin = app.admin().await;
    let r = app.post("/session/renew", Some(&admin), json!({})).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);

    // An expired token of a live session: refused.
    let claims: Value = {
        use base64::Engine;
        let payload = token.split('.').nth(1).expect("JWT");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64");
        serde_json::from_slice(&bytes).expect("claims")
    };
    let mut expired = claims.clone();
    let past = chrono::Utc::now().timestamp() - 120;
    expired["iat"] = json!(past - 900);
    expired["exp"] = json!(past);
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &expired,
        &jsonwebtoken::EncodingKey::from_secret(app.config.secret.expose()),
    )
    .expect("encode");
    let old = Browser {
        cookie: format!("precinct_session={expired}; precinct_csrf={}", b.csrf),
        session: expired,
        csrf: b.csrf.clone(),
        origin: b.origin.clone(),
    };
    let r = browse(&app, &old, Method::GET, "/session", None, false).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
    let r = browse(&app, &old, Method::POST, "/session/renew", None, true).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);

    // A session past its end: its unexpired token is refused too.
    let sid = claims["sid"].as_str().expect("sid");
    sqlx::query(
        "UPDATE console_sessions SET expires_at = now() - interval '1 minute' WHERE id = $1::uuid",
    )
    .bind(sid)
    .execute(&app.pool)
    .await
    .expect("end the session");
    let r = browse(&app, &fresh, Method::GET, "/session", None, false).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
    let r = browse(&app, &fresh, Method::GET, "/users?limit=5", None, false).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn console_sign_in_and_api_login_share_one_throttle() {
    let app = TestApp::spawn().await.expect("spawn");
    // Five wrong passwords through the console lock the (account, address) pair…
    for _ in 0..5 {
        let r = app
            .call(
                Method::POST,
                "/session",
                None,
                Some(json!({"email": ADMIN_EMAIL, "password": "not the password"})),
                &[("Origin", &origin(&app))],
            )
            .await;
        assert_problem(&r, StatusCode::UNAUTHORIZED);
    }
    // …for the API's login too, and for the console itself, right password or not.
    let api = app
        .post(
            "/users/login",
            None,
            json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_problem(&api, StatusCode::TOO_MANY_REQUESTS);
    assert!(api.headers.get("retry-after").is_some());
    let console = app
        .call(
            Method::POST,
            "/session",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
            &[("Origin", &origin(&app))],
        )
        .await;
    assert_problem(&console, StatusCode::TOO_MANY_REQUESTS);
    assert!(set_cookie(&console, "precinct_session").is_none());
}

#[tokio::test]
async fn without_a_tile_layer_the_console_loads_images_from_this_origin_only() {
    let app = TestApp::spawn().await.expect("spawn");
    let res = reqwest::get(format!("{}/console", app.base))
        .await
        .expect("console");
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(csp, precinct_api::middleware::CONSOLE_CSP);
    assert!(csp.contains("img-src 'self';"), "{csp}");
    // The page is told of no tile layer.
    let r = app
        .call(
            Method::POST,
            "/session",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
            &[("Origin", &origin(&app))],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.get("map_tiles").is_none(), "{}", r.body);
}
