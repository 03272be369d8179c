//! Read-your-own-writes by default (ADR 0014): an authenticated caller's reads wait for
//! the caller's own last command without `X-Min-Position`, in the process that ran it
//! and — through the signed `precinct_written` cookie — in any other API process.
//!
//! The read models are held back on purpose: the API processes run without the
//! projector role, and a projector process starts only after the reads were sent.

use std::time::{Duration, Instant};

use precinct::Roles;
use precinct_tests::app::{Res, TestApp};
use reqwest::{Method, StatusCode};

const LAT: f64 = 52.52;
const LON: f64 = 13.40;

fn api_only(app: &TestApp) -> precinct::Config {
    precinct::Config {
        roles: Roles::parse("api").expect("roles"),
        ..app.config.clone()
    }
}

/// The `name=value` pair of the response's `precinct_written` cookie.
fn written_cookie(r: &Res) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("precinct_written="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

async fn get_with(app: &TestApp, path: &str, token: &str, cookie: Option<&str>) -> Res {
    let headers: Vec<(&str, &str)> = cookie.map(|c| vec![("Cookie", c)]).unwrap_or_default();
    app.call(Method::GET, path, Some(token), None, &headers)
        .await
}

#[tokio::test]
async fn a_callers_reads_include_their_own_last_command_in_every_api_process() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    app.precinct(&admin, "Mitte", LAT, LON).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    let (_, bystander) = app.account(&admin, "CITIZEN", None).await;
    let (config, prefix, database) = app.stop().await.expect("stop");
    let first = TestApp::start(
        precinct::Config {
            roles: Roles::parse("api").expect("roles"),
            ..config.clone()
        },
        prefix.clone(),
        database.clone(),
    )
    .await
    .expect("first API process");
    let second = TestApp::start(api_only(&first), prefix.clone(), database.clone())
        .await
        .expect("second API process");

    // No projector runs: the report is in the log, not in the read models.
    let submitted = app_report(&first, &citizen).await;
    let cookie = written_cookie(&submitted).expect("a command's answer sets the cookie");
    let id = submitted.id();
    let path = format!("/crimes/{id}");

    // Without the cookie, the other process cannot know: it answers at once from the
    // read models as they are (the report is not there yet).
    let blind = get_with(&second, &path, &citizen, None).await;
    assert_eq!(blind.status, StatusCode::NOT_FOUND, "{}", blind.body);

    // Reads sent now wait; the projector starts half a second later.
    let started = Instant::now();
    let same = {
        let (first, path, citizen) = (first.base.clone(), path.clone(), citizen.clone());
        tokio::spawn(async move { timed_get(&first, &path, &citizen, None).await })
    };
    let other = {
        let (second, path, citizen, cookie) = (
            second.base.clone(),
            path.clone(),
            citizen.clone(),
            cookie.clone(),
        );
        tokio::spawn(async move { timed_get(&second, &path, &citizen, Some(&cookie)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let projector = TestApp::start(
        precinct::Config {
            roles: Roles::parse("projector").expect("roles"),
            ..config.clone()
        },
        prefix.clone(),
        database.clone(),
    )
    .await
    .expect("projector");
    for (name, read) in [("same process", same), ("other process + cookie", other)] {
        let (status, took) = read.await.expect("join");
        println!("{name}: {status} after {took:?} (projector started after 300 ms)");
        assert_eq!(status, StatusCode::OK, "{name}: the caller's own report");
        assert!(
            took >= Duration::from_millis(250),
            "{name}: answered before the projector ran"
        );
    }
    println!(
        "both reads answered {:?} after they were sent",
        started.elapsed()
    );

    // A cookie vouches for its own account only: the bystander waits for nothing.
    let foreign = get_with(&second, "/me/crimes", &bystander, Some(&cookie)).await;
    assert_eq!(foreign.status, StatusCode::OK, "{}", foreign.body);
    assert_eq!(foreign.body["items"].as_array().map(Vec::len), Some(0));

    // What it costs once caught up: reads of a caller with a remembered write against a
    // caller without one (printed, not asserted: shared machines are noisy).
    let mut own = Vec::new();
    let mut none = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        assert_eq!(
            get_with(&first, "/me/crimes", &citizen, None).await.status,
            StatusCode::OK
        );
        own.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(
            get_with(&first, "/me/crimes", &bystander, None)
                .await
                .status,
            StatusCode::OK
        );
        none.push(t.elapsed());
    }
    own.sort();
    none.sort();
    println!(
        "GET /me/crimes median: {:?} with an own write to check, {:?} without (added: {:?})",
        own[25],
        none[25],
        own[25].saturating_sub(none[25])
    );
    for p in [projector, second, first] {
        let _ = p.stop().await;
    }
}

async fn app_report(app: &TestApp, token: &str) -> Res {
    app.report(Some(token), LAT, LON, &["theft"]).await
}

/// A GET through a fresh client (no cookie jar), timed.
async fn timed_get(
    base: &str,
    path: &str,
    token: &str,
    cookie: Option<&str>,
) -> (StatusCode, Duration) {
    let started = Instant::now();
    let mut req = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let status = req
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(StatusCode::IM_A_TEAPOT);
    (status, started.elapsed())
}
