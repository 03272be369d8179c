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
    assert_eq!((path.as_str(), status), ("/invites/{redacted}", 404));
    let leaked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM request_log WHERE strpos(path, $1) > 0")
            .bind(&code)
            .fetch_one(&app.pool)
            .await
            .expect("request_log");
    assert_eq!(leaked, 0, "an invite code is in the request log");
}

/// A self-signed certificate for `localhost` in a fresh directory, and a process serving
/// HTTPS with it; the answer's `base` is `https://localhost:<port>`.
struct Tls {
    /// The process serving HTTPS (kept for as long as the test runs).
    _app: TestApp,
    addr: std::net::SocketAddr,
    root: reqwest::Certificate,
    dir: std::path::PathBuf,
}

impl Tls {
    async fn spawn() -> Tls {
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
        let addr = app
            .base
            .trim_start_matches("http://")
            .parse()
            .expect("address");
        let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("root");
        Tls {
            _app: app,
            addr,
            root,
            dir,
        }
    }

    fn base(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    fn client(
        &self,
        build: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> reqwest::Client {
        build(
            reqwest::Client::builder()
                .use_rustls_tls()
                .tls_built_in_root_certs(false)
                .add_root_certificate(self.root.clone())
                .resolve("localhost", self.addr)
                .timeout(Duration::from_secs(20)),
        )
        .build()
        .expect("client")
    }
}

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Review of issue 13, N4: the TLS listener offered `h2` in ALPN but spoke only
/// HTTP/1.1, so every client that prefers HTTP/2 (curl's default, browsers) failed.
#[tokio::test]
async fn https_serves_http2_to_clients_that_prefer_it_and_http1_to_the_others() {
    let tls = Tls::spawn().await;
    let h2 = tls.client(|b| b);
    let res = h2
        .get(format!("{}/health", tls.base()))
        .send()
        .await
        .expect("GET /health over TLS with HTTP/2 offered");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), reqwest::Version::HTTP_2, "ALPN chose h2");
    assert!(res.headers().contains_key("strict-transport-security"));
    // A command over HTTP/2 too (a body, a JSON answer).
    let login = h2
        .post(format!("{}/users/login", tls.base()))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login over HTTP/2");
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(login.version(), reqwest::Version::HTTP_2);
    let h1 = tls.client(|b| b.http1_only());
    let res = h1
        .get(format!("{}/health", tls.base()))
        .send()
        .await
        .expect("GET /health over TLS with HTTP/1.1");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
}

/// The same through the real `precinct` binary, built on its own (`cargo build -p
/// precinct`): HTTP/2 must not depend on a feature some other crate of the test build
/// happens to switch on. curl (HTTP/2 by default over TLS) too, where it is installed.
#[tokio::test]
async fn the_precinct_binary_serves_http2_over_tls() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let dir = std::env::temp_dir().join(format!("precinct-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).expect("cert");
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).expect("key");
    let (_, database_url) = precinct_tests::pg::fresh_database()
        .await
        .expect("database");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let env: Vec<(String, String)> = [
        ("NATS_URL", precinct_tests::nats::shared_url()),
        ("DATABASE_URL", database_url),
        ("PRECINCT_STREAM_PREFIX", precinct_tests::unique_prefix()),
        (
            "PRECINCT_MASTER_KEY",
            format!("test-k1:{}", "01".repeat(32)),
        ),
        ("PRECINCT_TLS_CERT", cert_file.display().to_string()),
        ("PRECINCT_TLS_KEY", key_file.display().to_string()),
        ("RUST_LOG", "warn".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let log = dir.join("precinct.log");
    let proc = tokio::task::spawn_blocking(move || {
        precinct_tests::chaos::procs::PrecinctProc::start("api", env, Some(port), log)
    })
    .await
    .expect("join")
    .expect("precinct serve with TLS");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
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
    let res = client
        .get(format!("https://localhost:{port}/health"))
        .send()
        .await
        .expect("GET /health over TLS, HTTP/2 offered");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let curl = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
        ])
        .arg("--cacert")
        .arg(&cert_file)
        .arg("--resolve")
        .arg(format!("localhost:{port}:127.0.0.1"))
        .arg(format!("https://localhost:{port}/health"))
        .output()
        .await;
    match curl {
        Ok(out) => {
            let said = String::from_utf8_lossy(&out.stdout).to_string();
            println!("curl: {said} {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(said, "200 2", "curl over HTTP/2");
        }
        Err(e) => println!("curl not run: {e}"),
    }
    drop(proc);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Review of issue 13, N4: 300 connections that never start their TLS handshake held
/// every handshake slot for 10 s, locking every new client out.
#[tokio::test]
async fn idle_connections_from_one_address_do_not_lock_other_clients_out_of_https() {
    let tls = Tls::spawn().await;
    // From another loopback address, 300 connections that say nothing.
    let mut idle = Vec::new();
    for _ in 0..300 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.2:0".parse().expect("addr"))
            .expect("bind 127.0.0.2");
        match tokio::time::timeout(Duration::from_secs(2), socket.connect(tls.addr)).await {
            Ok(Ok(stream)) => idle.push(stream),
            // The kernel's backlog may be full: enough are open already.
            _ => break,
        }
    }
    assert!(idle.len() >= 100, "only {} idle connections", idle.len());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A normal client (from 127.0.0.1) gets in at once.
    let client = tls.client(|b| b.timeout(Duration::from_secs(4)));
    let started = std::time::Instant::now();
    let res = client.get(format!("{}/health", tls.base())).send().await;
    println!(
        "{} idle connections from 127.0.0.2; an HTTPS request from 127.0.0.1 took {:?}",
        idle.len(),
        started.elapsed()
    );
    let res = res.expect("HTTPS request while another address holds idle connections");
    assert_eq!(res.status(), StatusCode::OK);
    drop(idle);
}

/// Review of issue 13, N5: a forwarding header that is not visible ASCII (`\xff`) was
/// thrown away whole, so the trusted proxy itself became the client.
#[tokio::test]
async fn a_garbled_forwarding_header_never_makes_the_proxy_the_client() {
    let app = TestApp::spawn_with(Options::behind_loopback_proxy())
        .await
        .expect("spawn");
    let send = |xff: &'static [u8], id: &'static str| {
        let (http, base) = (app.http.clone(), app.base.clone());
        async move {
            http.get(format!("{base}/health"))
                .header(
                    "x-forwarded-for",
                    reqwest::header::HeaderValue::from_bytes(xff).expect("header value"),
                )
                .header("x-request-id", id)
                .send()
                .await
                .expect("GET /health")
                .status()
        }
    };
    // The client wrote garbage; the proxy appended what it saw: that is the client.
    assert_eq!(
        send(b"\xff\xfe, 198.51.100.77", "xff-garbage-left").await,
        StatusCode::OK
    );
    let (_, _, addr) = logged(&app, "xff-garbage-left").await;
    assert_eq!(addr.as_deref(), Some("198.51.100.77"));
    // Nothing readable where the proxy writes: the client is unknown, not the proxy.
    assert_eq!(
        send(b"198.51.100.77, \xff", "xff-garbage-right").await,
        StatusCode::OK
    );
    let (_, _, addr) = logged(&app, "xff-garbage-right").await;
    assert_eq!(addr, None);
    assert_eq!(send(b"unknown", "xff-unknown").await, StatusCode::OK);
    let (_, _, addr) = logged(&app, "xff-unknown").await;
    assert_eq!(addr, None);
}

/// Review of issue 13, N12: the invite code was redacted from one path shape only; and
/// tracking tokens (which travel in a header) must not reach the log either.
#[tokio::test]
async fn no_path_shape_puts_an_invite_code_or_a_tracking_token_in_the_request_log() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let r = app
        .post(
            "/invites",
            Some(&admin),
            json!({"email": "petra@precinct.test", "role": "PATROL", "station_id": station}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let code = r.body["code"].as_str().expect("code").to_string();
    let shapes = [
        format!("/invites/accept/{code}"),
        format!("/invites/{code}"),
        format!("/invites/{code}/Accept"),
        format!("/invites%2F{code}%2Faccept"),
        format!("/invites/./{code}/accept"),
        format!("//invites/{code}/accept"),
        format!("/Invites/{code}/accept"),
        format!("/%69nvites/{code}"),
        format!("/invites/{code}?x=1"),
        format!("/x/../invites/{code}/accept"),
    ];
    for (i, path) in shapes.iter().enumerate() {
        // Raw, so that no client library normalises the path first.
        let status = raw_post(&app, path, &format!("invite-shape-{i}")).await;
        assert!(status.starts_with("HTTP/1.1 4"), "{path}: {status}");
    }
    // An anonymous report read with its tracking token.
    let submitted = app.report(None, LAT, LON, &["Theft"]).await;
    let token = submitted.body["tracking_token"]
        .as_str()
        .expect("tracking token")
        .to_string();
    let id = submitted.id();
    let r = app
        .call(
            Method::GET,
            &format!("/crimes/{id}"),
            None,
            None,
            &[
                ("X-Tracking-Token", &token),
                ("X-Request-Id", "tracked-read"),
                ("X-Min-Position", &submitted.position().to_string()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for i in 0..shapes.len() {
        let (path, _, _) = logged(&app, &format!("invite-shape-{i}")).await;
        assert!(!path.contains(&code), "{path}");
    }
    logged(&app, "tracked-read").await;
    for secret in [&code, &token] {
        let leaked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM request_log r WHERE strpos(row_to_json(r)::text, $1) > 0",
        )
        .bind(secret)
        .fetch_one(&app.pool)
        .await
        .expect("request_log");
        assert_eq!(leaked, 0, "a secret is in the request log");
    }
}

/// POSTs an empty body to `path` exactly as written (HTTP/1.1 over a plain socket); the
/// status line of the answer.
async fn raw_post(app: &TestApp, path: &str, request_id: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nX-Request-Id: {request_id}\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Review of issue 13: `PRECINCT_HEALTH_DETAILS=loopback` believed a forwarded address,
/// so anyone a trusted proxy forwards could claim to be a loopback monitor.
#[tokio::test]
async fn readiness_details_go_to_loopback_peers_never_to_forwarded_clients() {
    let app = TestApp::spawn_with(Options {
        health_details: precinct_api::routes::health::HealthDetails::Loopback,
        ..Options::behind_loopback_proxy()
    })
    .await
    .expect("spawn");
    let ready = |xff: Option<&'static str>| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                xff.map(|v| ("X-Forwarded-For", v)).into_iter().collect();
            app.call(Method::GET, "/health/ready", None, None, &headers)
                .await
        }
    };
    // The monitor on the host, connecting over loopback itself.
    let r = ready(None).await;
    assert!(r.body.get("postgres").is_some(), "{}", r.body);
    // Through the (trusted) proxy, whatever the forwarded address says.
    for xff in ["127.0.0.1", "::1", "198.51.100.7"] {
        let r = ready(Some(xff)).await;
        assert!(r.body.get("postgres").is_none(), "{xff}: {}", r.body);
        assert!(r.body["status"].is_string(), "{}", r.body);
    }
}
