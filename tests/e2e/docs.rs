//! API documentation and observability on a running process: `/openapi.json` is the
//! document the code generates (and the committed `schemas/openapi.json`), `/docs` works
//! offline, every documented operation is routed, real answers match the documented
//! schemas and statuses, and `/metrics` counts requests by route template, command
//! outcomes and projection lag — for ADMIN tokens and loopback scrapers only.

use std::collections::BTreeSet;
use std::time::Duration;

use precinct_tests::app::{Options, Res, TestApp, METRICS_TOKEN, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

fn spec() -> Value {
    serde_json::from_str(&precinct_api::openapi::spec_json()).expect("the spec is JSON")
}

/// The documented answer of `method template` for `status`, with `$ref`s to shared
/// responses resolved.
fn documented_response<'a>(
    spec: &'a Value,
    method: &Method,
    template: &str,
    status: StatusCode,
) -> &'a Value {
    let op = &spec["paths"][template][method.as_str().to_lowercase()];
    assert!(op.is_object(), "{method} {template} is not documented");
    let r = &op["responses"][status.as_str()];
    assert!(
        r.is_object(),
        "{method} {template} answered {status}, which its documentation does not list"
    );
    match r["$ref"].as_str() {
        Some(name) => {
            let name = name.trim_start_matches("#/components/responses/");
            &spec["components"]["responses"][name]
        }
        None => r,
    }
}

/// Checks `body` against the schema documented for `content_type` in `response`.
fn check_body(spec: &Value, response: &Value, content_type: &str, body: &Value, what: &str) {
    let Some(schema) = response["content"][content_type]["schema"].as_object() else {
        panic!("{what}: no {content_type} schema documented");
    };
    // The schema, with the document's components beside it so that its `$ref`s resolve.
    let mut root = schema.clone();
    root.insert("components".into(), spec["components"].clone());
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&Value::Object(root))
        .unwrap_or_else(|e| panic!("{what}: the documented schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: the answer does not match its documented schema:\n{}\n{body:#}",
        errors.join("\n")
    );
}

/// Calls `method path` (an instance of the documented `template`) and checks that the
/// status is documented for the operation and that the body matches its schema.
#[allow(clippy::too_many_arguments)]
async fn checked(
    app: &TestApp,
    spec: &Value,
    method: Method,
    template: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Res {
    let r = app.call(method.clone(), path, token, body, headers).await;
    let what = format!("{method} {path} -> {}", r.status);
    let response = documented_response(spec, &method, template, r.status);
    let content_type = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if content_type.starts_with("application/problem+json") {
        check_body(spec, response, "application/problem+json", &r.body, &what);
    } else if content_type.starts_with("application/json") {
        check_body(spec, response, "application/json", &r.body, &what);
    } else {
        assert!(
            response["content"].is_null()
                || response["content"]
                    .as_object()
                    .is_some_and(|c| c.keys().any(|k| content_type.starts_with(k.as_str()))),
            "{what}: content type {content_type:?} is not documented"
        );
    }
    r
}

fn expect(r: &Res, status: StatusCode) {
    assert_eq!(r.status, status, "body: {}", r.body);
}

#[tokio::test]
async fn openapi_json_is_the_generated_and_committed_document() {
    let app = TestApp::spawn().await.expect("spawn");
    let res = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let served = res.text().await.expect("body");
    let generated = precinct_api::openapi::spec_json();
    assert!(
        served == generated,
        "GET /openapi.json is not the document the code generates"
    );
    let committed_path = precinct_tests::repo_root().join("schemas/openapi.json");
    let committed = std::fs::read_to_string(&committed_path).expect("schemas/openapi.json");
    assert!(
        committed == generated,
        "schemas/openapi.json is stale: refresh it with \
         `PRECINCT_UPDATE_OPENAPI=1 cargo test -p precinct-api openapi` and commit it"
    );
    let doc: Value = serde_json::from_str(&served).expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "An access token from `POST /users/login` (HS256, 15 minutes by default)."})
    );
}

/// `src="…"` and `href="…"` values of an HTML page.
fn references(html: &str) -> Vec<String> {
    let mut out = vec![];
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    out
}

#[tokio::test]
async fn docs_page_loads_only_local_assets() {
    let app = TestApp::spawn().await.expect("spawn");
    // `/docs` redirects to `/docs/`.
    let res = app
        .http
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .expect("GET /docs");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.url().path() == "/docs/", "ended at {}", res.url());
    let headers = res.headers().clone();
    assert!(headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html")));
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("http") && !csp.contains('*'),
        "the docs page's CSP must allow this origin only: {csp}"
    );
    let html = res.text().await.expect("body");
    let refs = references(&html);
    assert!(
        refs.iter().any(|r| r.contains("swagger-ui-bundle.js")),
        "not the Swagger UI page: {html}"
    );
    for r in &refs {
        assert!(
            !(r.starts_with("http:") || r.starts_with("https:") || r.starts_with("//")),
            "the docs page references a remote asset: {r}"
        );
        let url = format!("{}/docs/{}", app.base, r.trim_start_matches("./"));
        let asset = app.http.get(&url).send().await.expect("asset");
        assert_eq!(asset.status(), StatusCode::OK, "{url}");
    }
    // The initializer points the UI at this server's document, without the validator badge
    // (which would send the document to a third party).
    let init = app
        .http
        .get(format!("{}/docs/swagger-initializer.js", app.base))
        .send()
        .await
        .expect("initializer")
        .text()
        .await
        .expect("body");
    assert!(init.contains("/openapi.json"), "{init}");
    assert!(
        !init.contains("http://") && !init.contains("https://"),
        "{init}"
    );
    let compact: String = init.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(compact.contains("\"validatorUrl\":\"none\""), "{init}");
}

/// `(method, route)` labels of `precinct_http_requests_total` in a scrape.
fn request_labels(metrics: &str) -> BTreeSet<(String, String)> {
    metrics
        .lines()
        .filter(|l| l.starts_with("precinct_http_requests_total{"))
        .filter_map(|l| Some((label(l, "method")?, label(l, "route")?)))
        .collect()
}

fn label(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    let end = start + line[start..].find('"')?;
    Some(line[start..end].to_string())
}

/// The value of the sample whose line starts with `series` (name and labels, exactly).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(app: &TestApp, token: Option<&str>) -> (StatusCode, String) {
    let mut req = app.http.get(format!("{}/metrics", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("GET /metrics");
    let status = res.status();
    (status, res.text().await.unwrap_or_default())
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::spawn().await.expect("spawn");
    let spec = spec();
    let id = Uuid::new_v4().to_string();
    let mut probed = BTreeSet::new();
    for (template, item) in spec["paths"].as_object().expect("paths") {
        let path = template
            .replace("{id}", &id)
            .replace("{code}", "no-such-code");
        assert!(!path.contains('{'), "unknown path parameter in {template}");
        for (method, _) in item.as_object().expect("path item") {
            let Ok(m) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            if !matches!(
                m,
                Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
            ) {
                continue;
            }
            let r = app.call(m.clone(), &path, None, None, &[]).await;
            assert_ne!(
                r.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{m} {template} is documented but not routed"
            );
            probed.insert((m.to_string(), template.clone()));
        }
    }
    assert!(probed.len() > 30, "probed only {probed:?}");
    // The router saw each probe under the documented route template (an unknown path would
    // be `unmatched`), and never under a raw path.
    let (status, metrics) = scrape(&app, Some(METRICS_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let seen = request_labels(&metrics);
    let missing: Vec<_> = probed.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "documented operations the router did not match: {missing:?}"
    );
    assert!(!metrics.contains(&id), "a raw path reached the metrics");
}

#[tokio::test]
async fn answers_match_the_documented_schemas_and_statuses() {
    // Every assignment is overdue at once: `/sla` has something to show.
    let app = TestApp::spawn_with(Options {
        sla_accept: Duration::ZERO,
        ..Options::default()
    })
    .await
    .expect("spawn");
    let spec = spec();
    let s = &spec;
    let get = Method::GET;
    let post = Method::POST;

    let r = checked(&app, s, get.clone(), "/health", "/health", None, None, &[]).await;
    expect(&r, StatusCode::OK);
    let r = checked(
        &app,
        s,
        get.clone(),
        "/health/ready",
        "/health/ready",
        None,
        None,
        &[],
    )
    .await;
    expect(&r, StatusCode::OK);

    let r = checked(
        &app,
        s,
        post.clone(),
        "/users/login",
        "/users/login",
        None,
        Some(json!({"email": precinct_tests::app::ADMIN_EMAIL, "password": "wrong password!"})),
        &[],
    )
    .await;
    expect(&r, StatusCode::UNAUTHORIZED);
    let r = checked(
        &app,
        s,
        post.clone(),
        "/users/login",
        "/users/login",
        None,
        Some(json!({"email": precinct_tests::app::ADMIN_EMAIL,
                    "password": precinct_tests::app::ADMIN_PASSWORD})),
        &[],
    )
    .await;
    expect(&r, StatusCode::OK);
    let admin = r.body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let d = 0.05;
    let ring = json!([
        [LON - d, LAT - d],
        [LON + d, LAT - d],
        [LON + d, LAT + d],
        [LON - d, LAT + d],
        [LON - d, LAT - d]
    ]);
    let r = checked(
        &app,
        s,
        post.clone(),
        "/stations",
        "/stations",
        Some(&admin),
        Some(
            json!({"name": "PS1", "kind": "PRECINCT", "latitude": LAT, "longitude": LON,
                    "area": {"type": "Polygon", "coordinates": [ring]}}),
        ),
        &[],
    )
    .await;
    expect(&r, StatusCode::CREATED);
    let station = r.id();
    let r = checked(
        &app,
        s,
        post.clone(),
        "/stations",
        "/stations",
        Some(&admin),
        Some(json!({"name": "Nowhere", "kind": "PLANET"})),
        &[],
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY);

    // Accounts: registered through the checked path, then logged in.
    let mut tokens = vec![];
    for role in ["DISPATCHER", "PATROL", "CITIZEN"] {
        let email = format!("{}-{}@precinct.test", role.to_lowercase(), Uuid::new_v4());
        let mut body = json!({"email": email, "password": PASSWORD, "name": "Someone"});
        let token = if role == "CITIZEN" {
            None
        } else {
            body["role"] = json!(role);
            body["station_id"] = json!(station);
            Some(admin.as_str())
        };
        let r = checked(
            &app,
            s,
            post.clone(),
            "/users/register",
            "/users/register",
            token,
            Some(body.clone()),
            &[],
        )
        .await;
        expect(&r, StatusCode::CREATED);
        let id = r.id();
        let r = checked(
            &app,
            s,
            post.clone(),
            "/users/register",
            "/users/register",
            token,
            Some(body),
            &[],
        )
        .await;
        expect(&r, StatusCode::CONFLICT);
        tokens.push((id, app.login(&email, PASSWORD).await));
    }
    let (_, dispatcher) = tokens[0].clone();
    let (officer_id, officer) = tokens[1].clone();
    let (_, citizen) = tokens[2].clone();

    let r = checked(
        &app,
        s,
        post.clone(),
        "/stations",
        "/stations",
        Some(&dispatcher),
        Some(json!({"name": "Mine", "kind": "DIVISION", "crime_types": ["Fraud"]})),
        &[],
    )
    .await;
    expect(&r, StatusCode::FORBIDDEN);

    let r = checked(
        &app,
        s,
        post.clone(),
        "/invites",
        "/invites",
        Some(&admin),
        Some(json!({"email": "new@precinct.test", "role": "DISPATCHER", "station_id": station})),
        &[],
    )
    .await;
    expect(&r, StatusCode::CREATED);

    let r = checked(
        &app,
        s,
        post.clone(),
        "/patrols/register",
        "/patrols/register",
        Some(&dispatcher),
        Some(json!({"call_sign": "ALPHA-1", "station_id": station, "officer_ids": [officer_id]})),
        &[],
    )
    .await;
    expect(&r, StatusCode::CREATED);
    let patrol = r.id();
    let r = checked(
        &app,
        s,
        Method::PUT,
        "/patrols/{id}/status",
        &format!("/patrols/{patrol}/status"),
        Some(&officer),
        Some(json!({"status": "AVAILABLE"})),
        &[],
    )
    .await;
    expect(&r, StatusCode::OK);

    let report_body = json!({"title": "Bike stolen", "description": "Blue bike, from the rack",
        "crime_types": ["Theft"],
        "location": {"latitude": LAT, "longitude": LON, "street": "1 Main St", "city": "Davao"}});
    let r = checked(
        &app,
        s,
        post.clone(),
        "/crimes",
        "/crimes",
        None,
        Some(report_body.clone()),
        &[],
    )
    .await;
    expect(&r, StatusCode::CREATED);
    let anonymous = r.id();
    let tracking = r.body["tracking_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = checked(
        &app,
        s,
        post.clone(),
        "/crimes",
        "/crimes",
        Some(&citizen),
        Some(report_body.clone()),
        &[],
    )
    .await;
    expect(&r, StatusCode::CREATED);
    let report = r.id();
    let amendable = app.post("/crimes", Some(&citizen), report_body).await.id();
    let r = checked(
        &app,
        s,
        post.clone(),
        "/crimes",
        "/crimes",
        Some(&citizen),
        Some(json!({"title": "x", "description": "y", "crime_types": [],
                    "location": {"latitude": 123.0, "longitude": LON}})),
        &[],
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["errors"].as_array().is_some_and(|e| e.len() == 2),
        "{}",
        r.body
    );

    let r = checked(
        &app,
        s,
        post.clone(),
        "/crimes/{id}/triage",
        &format!("/crimes/{report}/triage"),
        Some(&dispatcher),
        Some(json!({"priority": "HIGH"})),
        &[],
    )
    .await;
    expect(&r, StatusCode::OK);
    let r = checked(
        &app,
        s,
        post.clone(),
        "/crimes/{id}/accept",
        &format!("/crimes/{report}/accept"),
        Some(&officer),
        None,
        &[],
    )
    .await;
    expect(&r, StatusCode::FORBIDDEN);
    let r = checked(
        &app,
        s,
        post.clone(),
        "/dispatch",
        "/dispatch",
        Some(&dispatcher),
        Some(json!({"crime_id": report})),
        &[],
    )
    .await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.body["auto"], true);
    let r = checked(
        &app,
        s,
        post.clone(),
        "/crimes/{id}/public-updates",
        &format!("/crimes/{report}/public-updates"),
        Some(&dispatcher),
        Some(json!({"message": "Officers are on their way."})),
        &[],
    )
    .await;
    expect(&r, StatusCode::CREATED);
    // A command answers the caller's view: the desk's the staff view...
    let r = checked(
        &app,
        s,
        Method::PATCH,
        "/crimes/{id}",
        &format!("/crimes/{anonymous}"),
        Some(&dispatcher),
        Some(json!({"title": "Bike stolen (edited by the desk)"})),
        &[],
    )
    .await;
    expect(&r, StatusCode::OK);
    assert!(r.body["notes"].is_array(), "{}", r.body);
    // ...the reporter's the reporter view.
    let r = checked(
        &app,
        s,
        Method::PATCH,
        "/crimes/{id}",
        &format!("/crimes/{amendable}"),
        Some(&citizen),
        Some(json!({"title": "Bike stolen (edited)"})),
        &[],
    )
    .await;
    expect(&r, StatusCode::OK);
    assert!(r.body.get("notes").is_none(), "{}", r.body);
    let last = r.position().to_string();
    let at = [("X-Min-Position", last.as_str())];

    for (template, path, token) in [
        ("/crimes", "/crimes".to_string(), None),
        ("/crimes", "/crimes".to_string(), Some(dispatcher.as_str())),
        (
            "/crimes/{id}",
            format!("/crimes/{report}"),
            Some(citizen.as_str()),
        ),
        (
            "/crimes/{id}/history",
            format!("/crimes/{report}/history"),
            Some(dispatcher.as_str()),
        ),
        (
            "/patrols/register",
            "/patrols/register".to_string(),
            Some(dispatcher.as_str()),
        ),
        (
            "/patrols/{id}",
            format!("/patrols/{patrol}"),
            Some(dispatcher.as_str()),
        ),
        (
            "/queues/reports",
            "/queues/reports".to_string(),
            Some(dispatcher.as_str()),
        ),
        (
            "/workloads",
            "/workloads".to_string(),
            Some(dispatcher.as_str()),
        ),
        (
            "/sla",
            "/sla?overdue=accept".to_string(),
            Some(dispatcher.as_str()),
        ),
        (
            "/me/crimes",
            "/me/crimes".to_string(),
            Some(citizen.as_str()),
        ),
        (
            "/me/assignments",
            "/me/assignments".to_string(),
            Some(officer.as_str()),
        ),
        ("/audit", "/audit".to_string(), Some(admin.as_str())),
        (
            "/audit/requests",
            "/audit/requests".to_string(),
            Some(admin.as_str()),
        ),
        ("/stations", "/stations".to_string(), None),
    ] {
        let r = checked(&app, s, get.clone(), template, &path, token, None, &at).await;
        expect(&r, StatusCode::OK);
        if template != "/crimes/{id}" && template != "/patrols/{id}" {
            assert!(
                r.body["items"].as_array().is_some_and(|i| !i.is_empty()),
                "{path}: an empty page checks nothing: {}",
                r.body
            );
        }
    }
    let r = checked(
        &app,
        s,
        get.clone(),
        "/crimes/{id}",
        &format!("/crimes/{anonymous}"),
        None,
        None,
        &[("X-Tracking-Token", tracking.as_str())],
    )
    .await;
    expect(&r, StatusCode::OK);
    let r = checked(
        &app,
        s,
        get.clone(),
        "/crimes/{id}",
        &format!("/crimes/{}", Uuid::new_v4()),
        Some(&citizen),
        None,
        &[],
    )
    .await;
    expect(&r, StatusCode::NOT_FOUND);
    let r = checked(
        &app,
        s,
        get.clone(),
        "/workloads",
        "/workloads",
        None,
        None,
        &[],
    )
    .await;
    expect(&r, StatusCode::UNAUTHORIZED);
    let r = checked(
        &app,
        s,
        get.clone(),
        "/crimes",
        "/crimes?limit=0",
        None,
        None,
        &[],
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY);

    // User management: each audience's view matches its documented schema (the ADMIN's
    // and the account's own with e-mail, a SUPERVISOR's without).
    let (_, supervisor) = app.account(&admin, "SUPERVISOR", Some(&station)).await;
    let (dispatcher_id, _) = tokens[0].clone();
    for (template, path, token) in [
        ("/users", "/users".to_string(), admin.as_str()),
        ("/users", "/users".to_string(), supervisor.as_str()),
        (
            "/users/{id}",
            format!("/users/{dispatcher_id}"),
            admin.as_str(),
        ),
        (
            "/users/{id}",
            format!("/users/{dispatcher_id}"),
            supervisor.as_str(),
        ),
        ("/me", "/me".to_string(), citizen.as_str()),
    ] {
        let r = checked(
            &app,
            s,
            get.clone(),
            template,
            &path,
            Some(token),
            None,
            &at,
        )
        .await;
        expect(&r, StatusCode::OK);
    }
    let r = checked(
        &app,
        s,
        get.clone(),
        "/users",
        "/users",
        Some(&dispatcher),
        None,
        &[],
    )
    .await;
    expect(&r, StatusCode::FORBIDDEN);
    let r = checked(
        &app,
        s,
        post.clone(),
        "/users/{id}/deactivate",
        &format!("/users/{dispatcher_id}/deactivate"),
        Some(&admin),
        Some(json!({})),
        &[],
    )
    .await;
    expect(&r, StatusCode::OK);
    let r = checked(
        &app,
        s,
        post.clone(),
        "/me/password",
        "/me/password",
        Some(&citizen),
        Some(json!({"current_password": "wrong password", "new_password": "a new long password"})),
        &[],
    )
    .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let r = checked(
        &app,
        s,
        post,
        "/me/password",
        "/me/password",
        Some(&citizen),
        Some(json!({"current_password": PASSWORD, "new_password": "a new long password"})),
        &[],
    )
    .await;
    expect(&r, StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_commands_and_projection_lag() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let missing = Uuid::new_v4();
    for _ in 0..2 {
        let r = app.get(&format!("/crimes/{missing}"), None).await;
        expect(&r, StatusCode::NOT_FOUND);
    }
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let r = app
        .post(
            "/stations",
            Some(&admin),
            json!({"name": "x", "kind": "PLANET"}),
        )
        .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let email = format!("twice-{}@precinct.test", Uuid::new_v4());
    let body = json!({"email": email, "password": PASSWORD, "name": "Twice"});
    let r = app.post("/users/register", None, body.clone()).await;
    expect(&r, StatusCode::CREATED);
    let r = app.post("/users/register", None, body).await;
    expect(&r, StatusCode::CONFLICT);
    let r = app.report(None, LAT, LON, &["Theft"]).await;
    app.caught_up(r.position()).await;

    let (status, m) = scrape(&app, Some(METRICS_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let at_least = |series: &str, n: f64| {
        let v = sample(&m, series).unwrap_or_else(|| panic!("no sample {series} in:\n{m}"));
        assert!(v >= n, "{series} = {v}, expected at least {n}");
    };
    at_least(
        r#"precinct_http_requests_total{method="GET",route="/crimes/{id}",status="404"}"#,
        2.0,
    );
    at_least(
        r#"precinct_http_request_duration_seconds_bucket{method="GET",route="/crimes/{id}",le="+Inf"}"#,
        2.0,
    );
    at_least(
        r#"precinct_commands_total{method="POST",route="/stations",outcome="accepted"}"#,
        1.0,
    );
    at_least(
        r#"precinct_commands_total{method="POST",route="/stations",outcome="refused"}"#,
        1.0,
    );
    at_least(
        r#"precinct_commands_total{method="POST",route="/users/register",outcome="conflict"}"#,
        1.0,
    );
    at_least(
        r#"precinct_command_duration_seconds_count{method="POST",route="/crimes",outcome="accepted"}"#,
        1.0,
    );
    // Login is not a command.
    assert!(!m.contains(r#"precinct_commands_total{method="POST",route="/users/login""#));
    // Route templates only: no id of a resource appears.
    for id in [missing.to_string(), station, r.id()] {
        assert!(!m.contains(&id), "{id} reached the metrics");
    }
    // Every projection's lag, measured at the scrape: caught up, nothing behind.
    at_least("precinct_log_head", r.position() as f64);
    for p in precinct_readmodel::EVENT_PROJECTIONS {
        let lag = format!(r#"precinct_projection_lag_positions{{projection="{p}"}}"#);
        assert_eq!(sample(&m, &lag), Some(0.0), "{lag} in:\n{m}");
        let pos = format!(r#"precinct_projection_position{{projection="{p}"}}"#);
        at_least(&pos, r.position() as f64);
        let secs = format!(r#"precinct_projection_lag_seconds{{projection="{p}"}}"#);
        assert_eq!(sample(&m, &secs), Some(0.0), "{secs}");
        let held = format!(r#"precinct_projection_quarantined{{projection="{p}"}}"#);
        assert_eq!(sample(&m, &held), Some(0.0), "{held}");
    }
    assert!(m.contains("# TYPE precinct_http_request_duration_seconds histogram"));
}

#[tokio::test]
async fn metrics_are_for_the_scraper_token_and_admin_tokens_only() {
    let app = TestApp::spawn().await.expect("spawn");
    let spec = spec();
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    // Loopback proves nothing (a reverse proxy on this host is loopback too): without a
    // token the answer is 401 even from 127.0.0.1.
    for (token, expected) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(METRICS_TOKEN), StatusCode::OK),
        (Some("not-the-metrics-token"), StatusCode::UNAUTHORIZED),
        (Some(admin.as_str()), StatusCode::OK),
        (Some(dispatcher.as_str()), StatusCode::FORBIDDEN),
        (Some(citizen.as_str()), StatusCode::FORBIDDEN),
        (Some("not-a-token"), StatusCode::UNAUTHORIZED),
    ] {
        let r = checked(
            &app,
            &spec,
            Method::GET,
            "/metrics",
            "/metrics",
            token,
            None,
            &[],
        )
        .await;
        expect(&r, expected);
        if expected == StatusCode::OK {
            assert!(r
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("text/plain; version=0.0.4")));
        }
    }
    let (status, body) = scrape(&app, Some(&dispatcher)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!body.contains("precinct_http_requests_total"), "{body}");
    let (status, body) = scrape(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.contains("precinct_http_requests_total"), "{body}");
}

/// The README's walkthrough (`deploy/local/walkthrough.sh`) run against a real server:
/// from an empty system to a CLOSED report, every step answered 2xx.
#[tokio::test]
async fn the_readme_walkthrough_reaches_a_closed_report() {
    let app = TestApp::spawn().await.expect("spawn");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/walkthrough.sh");
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .args([
            app.base.as_str(),
            precinct_tests::app::ADMIN_EMAIL,
            precinct_tests::app::ADMIN_PASSWORD,
        ])
        .output()
        .await
        .expect("run the walkthrough");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("is CLOSED"), "{stdout}");
}
