//! Hostile callers (OWASP API Security Top 10, 2023): object-level authorization on
//! every id route and function-level authorization on every operation, both driven by
//! the OpenAPI document (API1, API5); tokens for another audience or issuer and login
//! lock-outs per (account, client address) (API2); privileged and private properties (API3);
//! resource limits on anonymous callers, nesting and collection sizes (API4); links that
//! are never fetched (API7); CORS allow-list, security headers and error answers without
//! internals (API8).

use precinct_tests::app::{Options, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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

// ---------------------------------------------------------------------------------------
// Object- and function-level authorization, table-driven over the OpenAPI document: a
// route added later is checked without anyone remembering to list it.

/// Two stations. A: a dispatcher, a supervisor, officer A in patrol A, officer B in
/// patrol B, and a citizen whose report is dispatched to patrol A. B: a dispatcher, a
/// supervisor and an officer in patrol C. Plus a second citizen.
struct Precincts {
    app: TestApp,
    admin: String,
    station_a: String,
    report: String,
    /// A second report of station A (the other end of a link).
    other_report: String,
    patrol_a: String,
    officer_b_id: String,
    citizen_id: String,
    /// Station A's dispatcher: the account `/users/{id}` routes name (they see their own,
    /// strangers do not).
    dispatcher_a_id: String,
    /// A webhook subscription of station A (its supervisor's).
    webhook: String,
    /// A device of patrol A's officer (`/me/devices/{id}`: nobody else's).
    device: String,
    /// Station A's callers by role (member of patrol A as PATROL).
    a: Vec<(&'static str, String)>,
    /// Callers who must see nothing of station A's objects.
    strangers: Vec<(&'static str, String)>,
    /// Officer B: staff of station A, but not a member of patrol A.
    non_member: String,
}

async fn precincts() -> Precincts {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station_a = app.precinct(&admin, "PS1", LAT, LON).await;
    let station_b = app.precinct(&admin, "PS2", 8.0, 126.0).await;
    let (dispatcher_a_id, dispatcher_a) = app.account(&admin, "DISPATCHER", Some(&station_a)).await;
    let (_, supervisor_a) = app.account(&admin, "SUPERVISOR", Some(&station_a)).await;
    let (oa, officer_a) = app.account(&admin, "PATROL", Some(&station_a)).await;
    let (ob, officer_b) = app.account(&admin, "PATROL", Some(&station_a)).await;
    let patrol_a = app
        .patrol(&dispatcher_a, &station_a, "ALPHA-1", &[&oa])
        .await;
    app.patrol(&dispatcher_a, &station_a, "BRAVO-2", &[&ob])
        .await;
    let (_, dispatcher_b) = app.account(&admin, "DISPATCHER", Some(&station_b)).await;
    let (_, supervisor_b) = app.account(&admin, "SUPERVISOR", Some(&station_b)).await;
    let (oc, officer_c) = app.account(&admin, "PATROL", Some(&station_b)).await;
    app.patrol(&dispatcher_b, &station_b, "CHARLIE-3", &[&oc])
        .await;
    let (citizen_id, citizen) = app.account(&admin, "CITIZEN", None).await;
    let (_, other_citizen) = app.account(&admin, "CITIZEN", None).await;
    let report = app.report(Some(&citizen), LAT, LON, &["Theft"]).await.id();
    let other_report = app.report(Some(&citizen), LAT, LON, &["Theft"]).await.id();
    let r = app
        .post(
            "/dispatch",
            Some(&dispatcher_a),
            json!({"crime_id": report, "patrol_id": patrol_a}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .put(
            &format!("/patrols/{patrol_a}/location"),
            Some(&officer_a),
            json!({"latitude": LAT, "longitude": LON}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let r = app
        .post(
            "/webhooks",
            Some(&supervisor_a),
            json!({"url": "http://127.0.0.1:9/hook", "event_types": ["ReportResolved"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let webhook = r.body["id"].as_str().expect("id").to_owned();
    let r = app
        .post("/me/devices", Some(&officer_a), device_body())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let device = r.body["id"].as_str().expect("id").to_owned();
    app.caught_up(app.log.head().await.expect("head")).await;
    Precincts {
        webhook,
        device,
        a: vec![
            ("CITIZEN", citizen),
            ("PATROL", officer_a),
            ("DISPATCHER", dispatcher_a),
            ("SUPERVISOR", supervisor_a),
            ("ADMIN", admin.clone()),
        ],
        strangers: vec![
            ("another citizen", other_citizen),
            ("station B's dispatcher", dispatcher_b),
            ("station B's supervisor", supervisor_b),
            ("station B's officer", officer_c),
        ],
        non_member: officer_b,
        app,
        admin,
        station_a,
        report,
        other_report,
        patrol_a,
        officer_b_id: ob,
        citizen_id,
        dispatcher_a_id,
    }
}

/// Every documented operation as (method, path template with its required query
/// parameters filled in, roles line of its description).
fn operations() -> Vec<(Method, String, String)> {
    let spec: Value =
        serde_json::from_str(&precinct_api::openapi::spec_json()).expect("the spec is JSON");
    let mut ops = Vec::new();
    for (template, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let description = op["description"].as_str().unwrap_or_default();
            let roles = description
                .split("\n\n")
                .find_map(|p| p.strip_prefix("Roles:"))
                .unwrap_or_else(|| panic!("{method} {template}: no `Roles:` paragraph"))
                .replace('\n', " ");
            let required: Vec<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .map(|p| {
                    let name = p["name"].as_str().unwrap_or_default();
                    let value = match name {
                        "overdue" => "accept",
                        _ => panic!("{method} {template}: give `{name}` a value in `operations`"),
                    };
                    format!("{name}={value}")
                })
                .collect();
            let template = if required.is_empty() {
                template.clone()
            } else {
                format!("{template}?{}", required.join("&"))
            };
            ops.push((method, template, roles));
        }
    }
    ops
}

/// The roles a `Roles:` line admits, or `None` when it admits callers by something other
/// than their role (anyone, the reporter, a signed-in account, an invite holder).
fn documented_roles(roles: &str) -> Option<Vec<&'static str>> {
    // Parenthesised remarks name roles a caller may act on, not roles that may call.
    let mut text = String::new();
    let mut depth = 0;
    for c in roles.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if depth == 0 => text.push(c),
            _ => {}
        }
    }
    let first = text.split(". ").next().unwrap_or_default().to_lowercase();
    if ["anyone", "reporter", "signed-in", "holding"]
        .iter()
        .any(|open| first.contains(open))
    {
        return None;
    }
    let admitted: Vec<&'static str> = ["CITIZEN", "PATROL", "DISPATCHER", "SUPERVISOR", "ADMIN"]
        .into_iter()
        .filter(|r| first.contains(&r.to_lowercase()))
        .collect();
    assert!(!admitted.is_empty(), "no role found in `Roles:{roles}`");
    Some(admitted)
}

/// A well-formed body for each command, so that a refusal is about the caller and not
/// about the body.
fn valid_body(method: &Method, template: &str, w: &Precincts) -> Option<Value> {
    let body = match (method.as_str(), template) {
        ("GET", _) => return None,
        ("PATCH", "/admin/users/{id}/role") => json!({"role": "ADMIN"}),
        ("PUT" | "PATCH", "/crimes/{id}") => json!({"title": "Changed", "description": "changed",
            "crime_types": ["Theft"], "location": {"latitude": LAT, "longitude": LON}}),
        ("POST", "/crimes/{id}/closure/reject" | "/crimes/{id}/decline") => {
            json!({"reason": "no"})
        }
        ("POST", "/crimes/{id}/reject") => json!({"justification": "duplicate"}),
        ("POST", "/crimes/{id}/resolve") => json!({"resolution_notes": "done"}),
        ("POST", "/crimes/{id}/notes") => json!({"note": "seen"}),
        ("POST", "/crimes/{id}/public-updates") => json!({"message": "on our way"}),
        ("POST", "/crimes/{id}/evidence") => {
            json!({"url": "https://files.precinct.test/p.jpg", "media_type": "PHOTO"})
        }
        ("POST", "/crimes/{id}/triage") => json!({"priority": "HIGH"}),
        ("POST", "/dispatch") => json!({"crime_id": w.report, "patrol_id": w.patrol_a}),
        ("POST", "/invites") => json!({"email": "new@precinct.test", "role": "ADMIN"}),
        ("POST", "/patrols/register") => json!({"call_sign": "DELTA-4",
            "station_id": w.station_a, "officer_ids": [w.officer_b_id]}),
        ("PUT" | "PATCH", "/patrols/{id}") => {
            json!({"call_sign": "ALPHA-9", "officer_ids": [w.officer_b_id]})
        }
        ("PUT", "/patrols/{id}/location") => json!({"latitude": LAT, "longitude": LON}),
        ("POST", "/patrols/{id}/locations") => {
            json!({"fixes": [{"latitude": LAT, "longitude": LON}]})
        }
        ("PUT", "/patrols/{id}/status") => json!({"status": "OFF_DUTY"}),
        ("POST", "/crime-types") => json!({"code": "BURGLARY", "names": {"en": "Burglary"}}),
        ("PATCH", "/crime-types/{code}") => json!({"names": {"en": "Renamed"}}),
        ("POST", "/stations") => json!({"name": "X", "kind": "DIVISION", "crime_types": ["x"]}),
        ("PATCH", "/users/{id}") => json!({"role": "ADMIN"}),
        ("POST", "/users/{id}/password") => json!({"new_password": "a new long password"}),
        ("POST", "/crimes/{id}/unassign") => {
            json!({"from_patrol_id": w.patrol_a, "reason": "needed elsewhere"})
        }
        ("POST", "/crimes/{id}/reassign") => json!({"from_patrol_id": w.patrol_a,
            "patrol_id": w.patrol_a, "reason": "nearer unit"}),
        ("POST", "/crimes/{id}/transfer") => json!({"station_id": w.station_a, "reason": "area"}),
        ("POST", "/crimes/{id}/reopen") => json!({"reason": "more damage"}),
        ("POST", "/crimes/{id}/link") => json!({"other_id": w.other_report, "kind": "DUPLICATE"}),
        ("POST", "/crimes/{id}/unlink") => json!({"other_id": w.other_report}),
        ("POST", "/dispatch/auto") => json!({"station_id": w.station_a}),
        ("PATCH", "/stations/{id}") => json!({"name": "Renamed", "active": false}),
        ("PUT", "/stations/{id}/sla-policy") => {
            json!({"deadlines": {"HIGH": {"accept_secs": 120}}, "warn_at_percent": 50})
        }
        ("POST", "/webhooks") => json!({"url": "http://127.0.0.1:9/other"}),
        ("PATCH", "/webhooks/{id}") => json!({"event_types": ["ReportSubmitted"]}),
        ("POST", "/webhooks/{id}/replay") => json!({"from_position": 1}),
        ("POST", "/me/devices") => device_body(),
        ("POST", "/stations/{id}/area-preview") => json!({"area": {"type": "Polygon",
            "coordinates": [[[125.0, 7.0], [126.0, 7.0], [126.0, 8.0], [125.0, 7.0]]]}}),
        _ => json!({}),
    };
    Some(body)
}

/// A Web Push subscription (the keys of RFC 8291's example).
fn device_body() -> Value {
    json!({"kind": "web_push", "endpoint": "http://127.0.0.1:9/push",
        "keys": {"p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            "auth": "BTBZMqHH6r4Tts7J_aSIgg"}})
}

/// `template` with `{id}` replaced by the station-A object it names.
fn instance(template: &str, w: &Precincts) -> String {
    let id = if template.starts_with("/crimes/") {
        &w.report
    } else if template.starts_with("/patrols/") {
        &w.patrol_a
    } else if template.starts_with("/admin/users/") || template.starts_with("/admin/data-subjects/")
    {
        &w.citizen_id
    } else if template.starts_with("/users/") {
        &w.dispatcher_a_id
    } else if template.starts_with("/stations/") {
        &w.station_a
    } else if template.starts_with("/webhooks/") {
        &w.webhook
    } else if template.starts_with("/me/devices/") {
        &w.device
    } else {
        panic!("{template}: say which object its {{id}} names in `instance`")
    };
    template.replace("{id}", id)
}

#[tokio::test]
async fn every_id_route_hides_objects_from_other_stations_citizens_and_non_members() {
    let w = precincts().await;
    let app = &w.app;
    let head = app.log.head().await.expect("head");
    // A station is public to read (`GET /stations/{id}`, as the list); its changes are
    // checked here like every other command.
    let id_ops: Vec<_> = operations()
        .into_iter()
        .filter(|(m, t, _)| {
            t.contains("{id}") && !(*m == Method::GET && t.starts_with("/stations/"))
        })
        .collect();
    assert!(id_ops.len() >= 20, "only {} id routes found", id_ops.len());
    let mut checked = 0;
    for (method, template, _) in &id_ops {
        let path = instance(template, &w);
        let body = valid_body(method, template, &w);
        let mut callers: Vec<(&str, &str)> =
            w.strangers.iter().map(|(n, t)| (*n, t.as_str())).collect();
        // Staff of the same station may read, not act for a patrol they are not in.
        if method != Method::GET {
            callers.push(("a non-member officer", &w.non_member));
        }
        for (who, token) in callers {
            let r = app
                .call(method.clone(), &path, Some(token), body.clone(), &[])
                .await;
            assert!(
                matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
                "{who}: {method} {template} answered {}: {}",
                r.status,
                r.body
            );
            if r.status == StatusCode::NOT_FOUND {
                assert!(
                    !r.body.to_string().contains("Bike stolen"),
                    "{who}: {method} {template} leaks the report"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "a refused call appended an event"
    );
    // The control: the same GETs do answer station A's dispatcher (or the ADMIN), so the
    // refusals above are about the caller and not about a wrong id.
    // (A report's live stream is its reporter's only, and never ends: its positive case
    // is `reporter_live::*`.)
    let dispatcher = &w.a[2].1;
    for (method, template, _) in id_ops
        .iter()
        .filter(|(m, t, _)| *m == Method::GET && !t.ends_with("/stream"))
    {
        let token = if template.starts_with("/admin/") {
            &w.admin
        } else if template.starts_with("/webhooks/") {
            // Webhooks are the supervisor's (and the ADMIN's), not the desk's.
            &w.a[3].1
        } else {
            dispatcher
        };
        let r = app.get(&instance(template, &w), Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{method} {template}: {}", r.body);
    }
    assert!(checked >= 100, "only {checked} calls checked");
}

#[tokio::test]
async fn every_staff_and_admin_operation_refuses_the_roles_its_documentation_leaves_out() {
    let w = precincts().await;
    let app = &w.app;
    let head = app.log.head().await.expect("head");
    let mut checked = 0;
    for (method, template, roles) in operations() {
        let Some(admitted) = documented_roles(&roles) else {
            continue;
        };
        let path = instance_or_plain(&template, &w);
        let body = valid_body(&method, &template, &w);
        for (role, token) in &w.a {
            if admitted.contains(role) {
                continue;
            }
            let r = app
                .call(method.clone(), &path, Some(token), body.clone(), &[])
                .await;
            assert!(
                matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
                "{role}: {method} {template} (documented for {admitted:?}) answered {}: {}",
                r.status,
                r.body
            );
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} refusals checked");
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "a refused call appended an event"
    );
}

fn instance_or_plain(template: &str, w: &Precincts) -> String {
    if template.contains("{id}") {
        instance(template, w)
    } else {
        // The built-in crime type every catalogue has.
        template.replace("{code}", "OTHER")
    }
}

// ---------------------------------------------------------------------------------------
// API2 broken authentication.

#[tokio::test]
async fn tokens_for_another_audience_or_issuer_or_without_expiry_are_401() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    // What the server issues: pinned issuer and audience, 15 minutes at most.
    let payload: Value = {
        use base64::Engine;
        let part = admin.split('.').nth(1).expect("a JWT");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url");
        serde_json::from_slice(&raw).expect("claims")
    };
    assert_eq!(payload["iss"], "precinct");
    assert_eq!(payload["aud"], "precinct-api");
    let lifetime = payload["exp"].as_i64().unwrap_or(0) - payload["iat"].as_i64().unwrap_or(0);
    assert!((1..=900).contains(&lifetime), "lifetime {lifetime} s");

    let sign = |claims: &Value| {
        use jsonwebtoken::{encode, EncodingKey, Header};
        encode(
            &Header::default(),
            claims,
            &EncodingKey::from_secret(app.config.secret.expose()),
        )
        .expect("encode")
    };
    let mut claims = payload.clone();
    claims["aud"] = json!("another-service");
    let wrong_audience = sign(&claims);
    let mut claims = payload.clone();
    claims["iss"] = json!("someone-else");
    let wrong_issuer = sign(&claims);
    let mut claims = payload.clone();
    claims.as_object_mut().expect("object").remove("exp");
    let no_expiry = sign(&claims);
    let mut claims = payload.clone();
    claims.as_object_mut().expect("object").remove("aud");
    let no_audience = sign(&claims);
    // The control: the same claims, signed the same way, are accepted.
    let resigned = sign(&payload);
    assert_eq!(
        app.get("/audit/requests", Some(&resigned)).await.status,
        StatusCode::OK
    );
    for (what, token) in [
        ("wrong audience", wrong_audience),
        ("wrong issuer", wrong_issuer),
        ("no expiry", no_expiry),
        ("no audience", no_audience),
    ] {
        let r = app.get("/audit/requests", Some(&token)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.body);
        assert_eq!(r.body["type"], "/problems/unauthorized", "{what}");
    }
}

#[tokio::test]
async fn password_spraying_from_one_address_does_not_lock_other_accounts_out_of_it() {
    let app = TestApp::spawn().await.expect("spawn");
    // Five wrong passwords, each for a different (unknown) account: password spraying.
    for i in 0..5 {
        let r = app
            .post(
                "/users/login",
                None,
                json!({"email": format!("nobody{i}@precinct.test"), "password": "guess-1234"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    // Behind a reverse proxy that address is the whole city: another account's right
    // password from it still gets in (ADR 0010: the per-address limit is far higher).
    let r = app
        .post(
            "/users/login",
            None,
            json!({"email": precinct_tests::app::ADMIN_EMAIL,
                   "password": precinct_tests::app::ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["access_token"].is_string());
}

// ---------------------------------------------------------------------------------------
// API3 broken object property level authorization.

#[tokio::test]
async fn callers_cannot_set_privileged_properties_and_public_views_hold_only_public_fields() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    let head = app.log.head().await.expect("head");
    let submit = json!({"title": "Car broken into", "description": "window smashed",
        "crime_types": ["Theft"], "location": {"latitude": LAT, "longitude": LON},
        "contact": "+63 911 222 3333"});
    // A report cannot be submitted with a status, priority, station or reporter.
    for (field, value) in [
        ("status", json!("CLOSED")),
        ("priority", json!("CRITICAL")),
        ("station_id", json!(station)),
        ("reporter_id", json!(uuid::Uuid::new_v4())),
        ("tracking_token_hash", json!("0".repeat(64))),
    ] {
        let mut body = submit.clone();
        body[field] = value;
        for token in [None, Some(citizen.as_str())] {
            let r = app.post("/crimes", token, body.clone()).await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{field}: {}",
                r.body
            );
        }
    }
    // Self-registration cannot pick a role or a station.
    for extra in [json!({"role": "ADMIN"}), json!({"station_id": station})] {
        let mut body = json!({"email": format!("{}@precinct.test", uuid::Uuid::new_v4()),
                              "password": precinct_tests::app::PASSWORD, "name": "Mallory"});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        for token in [None, Some(citizen.as_str())] {
            let r = app.post("/users/register", token, body.clone()).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{extra}: {}", r.body);
        }
    }
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );

    // The public list: only the documented public fields, no personal data.
    let written = app.post("/crimes", Some(&citizen), submit).await;
    assert_eq!(written.status, StatusCode::CREATED, "{}", written.body);
    let spec: Value =
        serde_json::from_str(&precinct_api::openapi::spec_json()).expect("the spec is JSON");
    let public: Vec<&String> = spec["components"]["schemas"]["PublicReportView"]["properties"]
        .as_object()
        .expect("PublicReportView")
        .keys()
        .collect();
    let list = app.get_at("/crimes", None, written.position()).await;
    assert_eq!(list.status, StatusCode::OK);
    let items = list.body["items"].as_array().expect("items");
    assert!(!items.is_empty());
    for item in items {
        for key in item.as_object().expect("object").keys() {
            assert!(public.contains(&key), "public view carries `{key}`: {item}");
        }
    }
    let text = list.body.to_string();
    for private in [
        "+63 911 222 3333",
        "window smashed",
        "Car broken into",
        "reporter",
    ] {
        assert!(!text.contains(private), "public list leaks {private}");
    }
    // Account answers never carry a password or its hash.
    let me = app
        .post(
            "/users/login",
            None,
            json!({"email": precinct_tests::app::ADMIN_EMAIL,
                   "password": precinct_tests::app::ADMIN_PASSWORD}),
        )
        .await;
    let text = me.body.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("password"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// API4 unrestricted resource consumption (body limit, page caps, SSE caps, anonymous and
// login rates are covered in commands.rs, queries.rs, live.rs and above).

#[tokio::test]
async fn deeply_nested_and_oversized_collections_are_refused_cheaply() {
    let w = precincts().await;
    let app = &w.app;
    let head = app.log.head().await.expect("head");
    // 100 000 levels of nesting, well under the body limit: a 400, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = app
        .http
        .post(format!("{}/crimes", app.base))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .expect("send");
    assert!(
        matches!(
            r.status(),
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
        ),
        "{}",
        r.status()
    );
    // Collections over their caps: 422 naming the field.
    let many = |n: usize, f: &dyn Fn(usize) -> Value| -> Value { (0..n).map(f).collect() };
    let cases = [
        (
            "/crimes",
            json!({"title": "t", "description": "d", "crime_types": many(21, &|i| json!(format!("t{i}"))),
                   "location": {"latitude": LAT, "longitude": LON}}),
            "crime_types",
        ),
        (
            "/crimes",
            json!({"title": "t", "description": "d", "crime_types": ["Theft"],
                   "media_urls": many(21, &|i| json!(format!("https://m.precinct.test/{i}.jpg"))),
                   "location": {"latitude": LAT, "longitude": LON}}),
            "media_urls",
        ),
        (
            "/patrols/register",
            json!({"call_sign": "BIG-1", "station_id": w.station_a,
                   "officer_ids": many(51, &|_| json!(uuid::Uuid::new_v4()))}),
            "officer_ids",
        ),
    ];
    let desk = &w.a[2].1;
    for (path, body, field) in cases {
        let r = app.post(path, Some(desk), body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            r.body
        );
        assert!(r.body.to_string().contains(field), "{field}: {}", r.body);
    }
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );
}

// ---------------------------------------------------------------------------------------
// API7 server-side request forgery: links are stored, never fetched.

#[tokio::test]
async fn links_in_reports_and_evidence_are_never_fetched() {
    use std::time::Duration;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!(
        "http://{}/evidence.jpg",
        listener.local_addr().expect("addr")
    );
    let w = precincts().await;
    let app = &w.app;
    let officer = &w.a[1].1;
    let citizen = &w.a[0].1;
    let body = json!({"title": "t", "description": "d", "crime_types": ["Theft"],
                      "media_urls": [url], "location": {"latitude": LAT, "longitude": LON}});
    let anonymous = app.post("/crimes", None, body.clone()).await;
    assert_eq!(anonymous.status, StatusCode::CREATED, "{}", anonymous.body);
    let signed = app.post("/crimes", Some(citizen), body).await;
    assert_eq!(signed.status, StatusCode::CREATED, "{}", signed.body);
    let r = app
        .post(
            &format!("/crimes/{}/accept", w.report),
            Some(officer),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .post(
            &format!("/crimes/{}/evidence", w.report),
            Some(officer),
            json!({"url": url, "media_type": "PHOTO", "description": "photo"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Read everything back (a renderer or projector fetching a preview would call now).
    app.caught_up(r.position()).await;
    let dispatcher = &w.a[2].1;
    for id in [w.report.as_str(), &anonymous.id(), &signed.id()] {
        let r = app.get(&format!("/crimes/{id}"), Some(dispatcher)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(
            r.body.to_string().contains(&url),
            "the link is kept as given"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    match listener.accept() {
        Ok((_, from)) => panic!("the server connected to a submitted link (from {from})"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
    }
}

// ---------------------------------------------------------------------------------------
// API8 security misconfiguration.

#[tokio::test]
async fn error_answers_are_hardened_problems_without_internals() {
    let app = TestApp::spawn().await.expect("spawn");
    let (admin, id) = (app.admin().await, uuid::Uuid::new_v4());
    let cases = [
        (Method::GET, "/audit/requests".to_string(), None),
        (
            Method::GET,
            "/audit/requests".to_string(),
            Some("not-a-jwt"),
        ),
        (Method::GET, "/nope".to_string(), None),
        (Method::GET, "/crimes/not-a-uuid".to_string(), None),
        (Method::GET, format!("/patrols/{id}"), Some(admin.as_str())),
        (
            Method::DELETE,
            "/stations".to_string(),
            Some(admin.as_str()),
        ),
        (Method::GET, "/crimes?limit=-1".to_string(), None),
    ];
    for (method, path, token) in cases {
        let r = app.call(method.clone(), &path, token, None, &[]).await;
        let what = format!("{method} {path} → {}", r.status);
        assert!(r.status.is_client_error(), "{what}");
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{what}"
        );
        assert_eq!(r.body["status"], r.status.as_u16(), "{what}");
        for (h, v) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(
                r.headers.get(h).and_then(|x| x.to_str().ok()),
                Some(v),
                "{what}: {h}"
            );
        }
        assert!(r.headers.get("server").is_none(), "{what}: Server header");
        assert!(r.headers.get("x-powered-by").is_none(), "{what}");
        let text = r.body.to_string();
        for leak in ["panicked", "src/", ".rs:", "sqlx", "async_nats", "axum"] {
            assert!(!text.contains(leak), "{what} leaks {leak}: {text}");
        }
    }
}

/// Found by schemathesis: a U+0000 in a report's text was accepted, and PostgreSQL's
/// refusal to store it stopped the reports projection for good.
#[tokio::test]
async fn nul_and_control_characters_are_refused_before_they_reach_the_log() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    app.precinct(&admin, "PS1", LAT, LON).await;
    let head = app.log.head().await.expect("head");
    for (field, value) in [
        ("title", "bike\u{0}"),
        ("description", "a\u{0}b"),
        ("contact", "\u{1b}[2J"),
    ] {
        let mut body = json!({"title": "t", "description": "d", "crime_types": ["Theft"],
                              "location": {"latitude": LAT, "longitude": LON}});
        body[field] = json!(value);
        let r = app.post("/crimes", None, body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            r.body
        );
        assert_eq!(r.body["errors"][0]["field"], field);
    }
    let r = app
        .post(
            "/crimes",
            None,
            json!({"title": "t", "description": "d", "crime_types": ["The\u{0}ft"],
                   "location": {"latitude": LAT, "longitude": LON, "street": "Main\u{0}"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );
    // Line breaks and tabs are text, not control input; the projection keeps up.
    let ok = app
        .post(
            "/crimes",
            None,
            json!({"title": "t", "description": "line one\n\tline two",
                   "crime_types": ["Theft"], "location": {"latitude": LAT, "longitude": LON}}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    app.caught_up(ok.position()).await;
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
}
