//! Open311 GeoReport v2 through HTTP against the real server (issue 17 item 4, ADR
//! 0031): discovery, services and service definitions from the catalogue, `POST
//! requests` (form-encoded; the same submission as `POST /crimes`, personal fields sealed
//! in the report's contact), the public list and one request (coarse location, no
//! personal field, withdrawn left out, open/closed), tokens, every endpoint in `.json`
//! and `.xml`, bad input answered with the standard's error array; and an independent
//! client (`tests/open311_client.py`, Python's standard library: `urllib` and
//! `xml.etree`) walking the XML endpoints.

use std::time::Duration;

use precinct_tests::app::{Options, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;
/// Where the citizen stands: its 3-decimal public rounding differs from it.
const AT_LAT: f64 = 7.071_234;
const AT_LON: f64 = 125.612_345;

const EMAIL: &str = "ana.cruz@example.org";
const PHONE: &str = "+63 912 345 6789";
const FIRST: &str = "Anastasia";
const LAST: &str = "Cruzado";
const ADDRESS: &str = "12 Quimpo Boulevard";
const DESCRIPTION: &str = "Wallet snatched near the jeepney stop";
const MEDIA: &str = "https://media.example.org/photo-1.jpg";

/// An answer: status, content type, raw text.
struct Ans {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Ans {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

async fn ans(r: reqwest::Response) -> Ans {
    let status = r.status();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = r.text().await.expect("body");
    Ans {
        status,
        content_type,
        text,
    }
}

async fn get(app: &TestApp, path: &str) -> Ans {
    let url = format!("{}/open311/v2/{path}", app.base);
    ans(app.http.get(url).send().await.expect("GET")).await
}

async fn post_form(app: &TestApp, path: &str, token: Option<&str>, form: &[(&str, &str)]) -> Ans {
    let url = format!("{}/open311/v2/{path}", app.base);
    let mut req = app
        .http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).expect("form"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    ans(req.send().await.expect("POST")).await
}

/// A JSON error array of one error with this code.
fn assert_json_error(a: &Ans, status: StatusCode, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text);
    assert!(
        a.content_type.starts_with("application/json"),
        "{what}: {}",
        a.content_type
    );
    let body = a.json();
    assert_eq!(body[0]["code"], json!(status.as_u16()), "{what}: {body}");
    assert!(
        body[0]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{what}: {body}"
    );
}

fn assert_xml_error(a: &Ans, status: StatusCode, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text);
    assert!(
        a.content_type.starts_with("text/xml"),
        "{what}: {}",
        a.content_type
    );
    let code = format!(
        "<errors><error><code>{}</code><description>",
        status.as_u16()
    );
    assert!(a.text.contains(&code), "{what}: {}", a.text);
}

/// No personal field and no exact coordinate in a public answer.
fn assert_private(a: &Ans, what: &str) {
    for secret in [
        EMAIL,
        "ana.cruz",
        PHONE,
        "912 345",
        FIRST,
        LAST,
        ADDRESS,
        DESCRIPTION,
        MEDIA,
        "7.071234",
        "125.612345",
        "7.0712",
        "125.6123",
    ] {
        assert!(
            !a.text.contains(secret),
            "{what} leaks {secret:?}: {}",
            a.text
        );
    }
}

fn the_form<'a>(service_code: &'a str, lat: &'a str, lon: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("service_code", service_code),
        ("lat", lat),
        ("long", lon),
        ("address_string", ADDRESS),
        ("description", DESCRIPTION),
        ("email", EMAIL),
        ("first_name", FIRST),
        ("last_name", LAST),
        ("phone", PHONE),
        ("media_url", MEDIA),
        ("api_key", "anything"),
    ]
}

/// Polls `GET requests/{id}.json` until the read model has the report (bounded).
async fn visible(app: &TestApp, id: &str) -> Ans {
    for _ in 0..100 {
        let a = get(app, &format!("requests/{id}.json")).await;
        if a.status == StatusCode::OK {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("request {id} never became visible");
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|r| r["service_request_id"].as_str().expect("id").to_string())
        .collect()
}

async fn catalogue(app: &TestApp, admin: &str) {
    let theft = app
        .post(
            "/crime-types",
            Some(admin),
            json!({"code": "THEFT", "names": {"en": "Theft"}, "default_priority": "HIGH",
                   "keywords": ["stolen", "snatch"], "service_code": "theft-1", "group": "Property"}),
        )
        .await;
    assert_eq!(theft.status, StatusCode::CREATED, "{}", theft.body);
    let robbery = app
        .post(
            "/crime-types",
            Some(admin),
            json!({"code": "ROBBERY", "names": {"en": "Robbery"}, "default_priority": "HIGH",
                   "keywords": ["robbed"]}),
        )
        .await;
    assert_eq!(robbery.status, StatusCode::CREATED, "{}", robbery.body);
    let old = app
        .post(
            "/crime-types",
            Some(admin),
            json!({"code": "LOITERING", "names": {"en": "Loitering"}, "default_priority": "LOW",
                   "keywords": [], "service_code": "loiter"}),
        )
        .await;
    assert_eq!(old.status, StatusCode::CREATED, "{}", old.body);
    let retired = app
        .post("/crime-types/LOITERING/retire", Some(admin), json!({}))
        .await;
    assert_eq!(retired.status, StatusCode::OK, "{}", retired.body);
    app.caught_up(retired.position()).await;
}

#[tokio::test]
async fn open311_serves_the_catalogue_takes_reports_and_lists_them_publicly() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "Central", LAT, LON).await;
    catalogue(&app, &admin).await;

    // Discovery, both formats.
    let d = get(&app, "discovery.json").await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    let d = d.json();
    assert_eq!(
        d["endpoints"][0]["specification"],
        "http://wiki.open311.org/GeoReport_v2"
    );
    assert_eq!(
        d["endpoints"][0]["formats"],
        json!(["application/json", "text/xml"])
    );
    assert!(d["endpoints"][0]["url"]
        .as_str()
        .is_some_and(|u| u.ends_with("/open311/v2/")));
    let dx = get(&app, "discovery.xml").await;
    assert_eq!(dx.status, StatusCode::OK, "{}", dx.text);
    assert!(dx.content_type.starts_with("text/xml"));
    assert!(dx.text.contains("<discovery><changeset>"), "{}", dx.text);
    assert!(
        dx.text.contains(
            "<formats><format>application/json</format><format>text/xml</format></formats>"
        ),
        "{}",
        dx.text
    );

    // Services: the active types; service_code is the type's, or its code.
    let s = get(&app, "services.json").await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    let s = s.json();
    let codes: Vec<&str> = s
        .as_array()
        .expect("array")
        .iter()
        .map(|x| x["service_code"].as_str().expect("code"))
        .collect();
    assert_eq!(
        codes,
        ["OTHER", "ROBBERY", "theft-1"],
        "retired types are left out"
    );
    let theft = &s[2];
    assert_eq!(theft["service_name"], "Theft");
    assert_eq!(theft["group"], "Property");
    assert_eq!(theft["keywords"], "stolen,snatch");
    assert_eq!(theft["metadata"], false);
    assert_eq!(theft["type"], "realtime");
    assert_eq!(s[1]["group"], Value::Null);
    let sx = get(&app, "services.xml").await;
    assert_eq!(sx.status, StatusCode::OK);
    assert!(
        sx.text
            .contains("<services><service><service_code>OTHER</service_code>"),
        "{}",
        sx.text
    );
    assert!(
        sx.text
            .contains("<service_code>theft-1</service_code><service_name>Theft</service_name>"),
        "{}",
        sx.text
    );
    assert!(sx.text.contains("<group>Property</group>"), "{}", sx.text);
    assert!(!sx.text.contains("loiter"), "{}", sx.text);

    // Service definitions: no attributes.
    let def = get(&app, "services/theft-1.json").await;
    assert_eq!(def.status, StatusCode::OK, "{}", def.text);
    assert_eq!(
        def.json(),
        json!({"service_code": "theft-1", "attributes": []})
    );
    let defx = get(&app, "services/ROBBERY.xml").await;
    assert_eq!(defx.status, StatusCode::OK, "{}", defx.text);
    assert!(defx.text.contains(
        "<service_definition><service_code>ROBBERY</service_code><attributes/></service_definition>"
    ), "{}", defx.text);
    assert_json_error(
        &get(&app, "services/THEFT.json").await,
        StatusCode::NOT_FOUND,
        "a catalogue code behind a service code",
    );
    assert_xml_error(
        &get(&app, "services/loiter.xml").await,
        StatusCode::NOT_FOUND,
        "a retired type",
    );

    // POST requests (JSON answer): anonymous, with every personal field.
    let (lat, lon) = (AT_LAT.to_string(), AT_LON.to_string());
    let posted = post_form(
        &app,
        "requests.json",
        None,
        &the_form("theft-1", &lat, &lon),
    )
    .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    let p = posted.json();
    let id = p[0]["service_request_id"].as_str().expect("id").to_string();
    let token = p[0]["token"].as_str().expect("token").to_string();
    let (token_id, tracking) = token.split_once('.').expect("id.tracking");
    assert_eq!(token_id, id);
    assert!(p[0]["service_notice"].is_string());
    assert_private(&posted, "the POST answer");

    // The same report as POST /crimes makes: its reporter (tracking token) sees the
    // personal fields, sealed where the contact goes; the type resolved to THEFT.
    let mine = app
        .call(
            reqwest::Method::GET,
            &format!("/crimes/{id}"),
            None,
            None,
            &[("X-Tracking-Token", tracking)],
        )
        .await;
    let mine = {
        let mut mine = mine;
        for _ in 0..100 {
            if mine.status == StatusCode::OK {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            mine = app
                .call(
                    reqwest::Method::GET,
                    &format!("/crimes/{id}"),
                    None,
                    None,
                    &[("X-Tracking-Token", tracking)],
                )
                .await;
        }
        mine
    };
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.body["crime_type_codes"], json!(["THEFT"]));
    assert_eq!(mine.body["title"], "Theft");
    assert_eq!(mine.body["description"], DESCRIPTION);
    assert_eq!(mine.body["location"]["street"], ADDRESS);
    let contact = mine.body["contact"].as_str().expect("contact");
    for part in [EMAIL, PHONE, FIRST, LAST] {
        assert!(contact.contains(part), "{part} in {contact}");
    }
    assert_eq!(
        mine.body["station_id"].as_str(),
        Some(station.as_str()),
        "{}",
        mine.body
    );

    // POST requests.xml: the XML answer.
    let px = post_form(
        &app,
        "requests.xml",
        None,
        &[
            ("service_code", "ROBBERY"),
            ("lat", "7.08"),
            ("long", "125.62"),
        ],
    )
    .await;
    assert_eq!(px.status, StatusCode::CREATED, "{}", px.text);
    assert!(
        px.text
            .contains("<service_requests><request><service_request_id>"),
        "{}",
        px.text
    );
    let robbery_id = px
        .text
        .split("<service_request_id>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("id in XML")
        .to_string();

    // A signed-in citizen's request (bearer token): no token; then withdrawn.
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    let own = post_form(
        &app,
        "requests.json",
        Some(&citizen),
        &[
            ("service_code", "theft-1"),
            ("lat", "7.06"),
            ("long", "125.60"),
        ],
    )
    .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);
    assert_eq!(own.json()[0]["token"], Value::Null);
    let own_id = own.json()[0]["service_request_id"]
        .as_str()
        .expect("id")
        .to_string();
    visible(&app, &own_id).await;
    let withdrawn = app
        .delete(&format!("/crimes/{own_id}"), Some(&citizen))
        .await;
    assert_eq!(withdrawn.status, StatusCode::OK, "{}", withdrawn.body);
    app.caught_up(withdrawn.position()).await;

    // One request, both formats: the public view.
    let one = visible(&app, &id).await;
    assert_private(&one, "requests/{id}.json");
    let r = &one.json()[0];
    assert_eq!(r["service_request_id"], id.as_str());
    assert_eq!(r["status"], "open");
    assert_eq!(r["service_code"], "theft-1");
    assert_eq!(r["service_name"], "Theft");
    assert_eq!(r["lat"], json!(7.071));
    assert_eq!(r["long"], json!(125.612));
    assert_eq!(r["description"], Value::Null);
    assert_eq!(r["address"], Value::Null);
    assert_eq!(r["media_url"], Value::Null);
    let onex = get(&app, &format!("requests/{id}.xml")).await;
    assert_eq!(onex.status, StatusCode::OK, "{}", onex.text);
    assert_private(&onex, "requests/{id}.xml");
    assert!(
        onex.text
            .contains("<service_requests><request><service_request_id>"),
        "{}",
        onex.text
    );
    assert!(onex.text.contains("<status>open</status>"), "{}", onex.text);
    assert!(
        onex.text.contains("<lat>7.071</lat><long>125.612</long>"),
        "{}",
        onex.text
    );
    assert_json_error(
        &get(&app, &format!("requests/{own_id}.json")).await,
        StatusCode::NOT_FOUND,
        "a withdrawn request",
    );
    assert_xml_error(
        &get(&app, "requests/not-an-id.xml").await,
        StatusCode::NOT_FOUND,
        "a bad id",
    );

    // Closed: a dispatcher rejects the robbery report.
    visible(&app, &robbery_id).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let rejected = app
        .post(
            &format!("/crimes/{robbery_id}/reject"),
            Some(&dispatcher),
            json!({"justification": "duplicate"}),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::OK, "{}", rejected.body);
    app.caught_up(rejected.position()).await;

    // The list and its filters.
    let all = get(&app, "requests.json").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_private(&all, "requests.json");
    let mut listed = ids(&all.json());
    listed.sort();
    let mut expected = vec![id.clone(), robbery_id.clone()];
    expected.sort();
    assert_eq!(listed, expected, "withdrawn left out");
    assert_eq!(
        ids(&get(&app, "requests.json?status=open").await.json()),
        [id.as_str()]
    );
    assert_eq!(
        ids(&get(&app, "requests.json?status=closed").await.json()),
        [robbery_id.as_str()]
    );
    let closed = get(&app, "requests.json?status=closed").await.json();
    assert_eq!(closed[0]["status"], "closed");
    assert_eq!(closed[0]["status_notes"], "Not pursued");
    assert_eq!(
        ids(&get(&app, "requests.json?status=open,closed").await.json()).len(),
        2
    );
    assert_eq!(
        ids(&get(&app, "requests.json?service_code=theft-1").await.json()),
        [id.as_str()]
    );
    assert_eq!(
        ids(&get(&app, "requests.json?service_code=ROBBERY").await.json()),
        [robbery_id.as_str()]
    );
    assert_eq!(
        ids(&get(
            &app,
            &format!("requests.json?service_request_id={id},{own_id}")
        )
        .await
        .json()),
        [id.as_str()],
        "a withdrawn id is left out"
    );
    assert!(
        ids(&get(&app, "requests.json?start_date=2099-01-01T00:00:00Z")
            .await
            .json())
        .is_empty()
    );
    assert!(
        ids(&get(&app, "requests.json?end_date=2020-01-01T00:00:00Z")
            .await
            .json())
        .is_empty()
    );
    let now = chrono::Utc::now();
    let window = format!(
        "requests.json?start_date={}&end_date={}",
        (now - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ"),
        (now + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    assert_eq!(ids(&get(&app, &window).await.json()).len(), 2);
    let listx = get(&app, "requests.xml?status=open").await;
    assert_eq!(listx.status, StatusCode::OK, "{}", listx.text);
    assert_private(&listx, "requests.xml");
    assert_eq!(listx.text.matches("<request>").count(), 1, "{}", listx.text);

    // Tokens.
    let t = get(&app, &format!("tokens/{token}.json")).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    assert_eq!(
        t.json(),
        json!([{"service_request_id": id, "token": token}])
    );
    let tx = get(&app, &format!("tokens/{token}.xml")).await;
    assert!(
        tx.text.contains(&format!(
            "<service_request_id>{id}</service_request_id><token>{token}</token>"
        )),
        "{}",
        tx.text
    );
    assert_json_error(
        &get(
            &app,
            &format!("tokens/{id}.AAAAAAAAAAAAAAAAAAAAAAAAAAA.json"),
        )
        .await,
        StatusCode::NOT_FOUND,
        "a forged token",
    );
    assert_json_error(
        &get(&app, &format!("tokens/{robbery_id}.json")).await,
        StatusCode::NOT_FOUND,
        "an id alone",
    );

    // The independent client: Python's urllib and xml.etree over the XML endpoints.
    let out = tokio::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/open311_client.py"))
        .arg(format!("{}/open311/v2", app.base))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("the client finishes within 60 s")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("the client's JSON summary");
    assert_eq!(report["services"], json!(["OTHER", "ROBBERY", "theft-1"]));
    assert_eq!(report["definition_attributes"], 0);
    let new_id = report["posted_id"].as_str().expect("posted id");
    assert_eq!(report["token_resolves_to"], new_id);
    assert_eq!(report["fetched_status"], "open");
    assert_eq!(report["error_code"], "400");
}

#[tokio::test]
async fn open311_bad_input_gets_the_standards_error_array_never_a_5xx() {
    // The production default of the anonymous budget (tests run with 1,000 a minute).
    let app = TestApp::spawn_with(Options {
        anonymous_reports_per_minute: 20,
        ..Options::default()
    })
    .await
    .expect("spawn");
    let admin = app.admin().await;
    app.precinct(&admin, "Central", LAT, LON).await;
    catalogue(&app, &admin).await;
    let head = app.log.head().await.expect("head");

    let bad = StatusCode::BAD_REQUEST;
    // POSTs, in the requested format; nothing appended.
    for (fmt, what, form) in [
        (
            "json",
            "no location at all",
            vec![("service_code", "theft-1")],
        ),
        (
            "xml",
            "no location at all",
            vec![("service_code", "theft-1")],
        ),
        (
            "json",
            "an address but no coordinates (no geocoding)",
            vec![("service_code", "theft-1"), ("address_string", ADDRESS)],
        ),
        (
            "json",
            "lat without long",
            vec![("service_code", "theft-1"), ("lat", "7.07")],
        ),
        (
            "json",
            "no service_code",
            vec![("lat", "7.07"), ("long", "125.61")],
        ),
        (
            "xml",
            "an unknown service_code",
            vec![
                ("service_code", "nope"),
                ("lat", "7.07"),
                ("long", "125.61"),
            ],
        ),
        (
            "json",
            "a retired service",
            vec![
                ("service_code", "loiter"),
                ("lat", "7.07"),
                ("long", "125.61"),
            ],
        ),
        (
            "json",
            "lat not a number",
            vec![
                ("service_code", "theft-1"),
                ("lat", "north"),
                ("long", "125.61"),
            ],
        ),
        (
            "xml",
            "lat out of range",
            vec![
                ("service_code", "theft-1"),
                ("lat", "91"),
                ("long", "125.61"),
            ],
        ),
        (
            "json",
            "an unknown field",
            vec![
                ("service_code", "theft-1"),
                ("lat", "7.07"),
                ("long", "125.61"),
                ("colour", "red"),
            ],
        ),
        (
            "json",
            "an attribute (none defined)",
            vec![
                ("service_code", "theft-1"),
                ("lat", "7.07"),
                ("long", "125.61"),
                ("attribute[x]", "1"),
            ],
        ),
    ] {
        let a = post_form(&app, &format!("requests.{fmt}"), None, &form).await;
        match fmt {
            "json" => assert_json_error(&a, bad, what),
            _ => assert_xml_error(&a, bad, what),
        }
    }
    // A JSON body to the XML endpoint.
    let url = format!("{}/open311/v2/requests.xml", app.base);
    let a = ans(app
        .http
        .post(url)
        .json(&json!({"service_code": "theft-1", "lat": 7.07, "long": 125.61}))
        .send()
        .await
        .expect("POST"))
    .await;
    assert_xml_error(&a, bad, "a JSON body to requests.xml");
    // An unknown format, no format, an unknown resource, POST to services.
    assert_json_error(&get(&app, "services.csv").await, bad, "an unknown format");
    assert_json_error(&get(&app, "services").await, bad, "no format");
    assert_json_error(
        &get(&app, "nothing.json").await,
        StatusCode::NOT_FOUND,
        "an unknown resource",
    );
    assert_xml_error(
        &post_form(&app, "services.xml", None, &[]).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "POST services",
    );
    // GET list parameters.
    for (q, what) in [
        ("start_date=yesterday", "a bad start_date"),
        ("end_date=2026-13-01T00:00:00Z", "a bad end_date"),
        (
            "start_date=2026-06-01T00:00:00Z&end_date=2026-01-01T00:00:00Z",
            "an inverted range",
        ),
        (
            "start_date=2025-01-01T00:00:00Z&end_date=2026-01-01T00:00:00Z",
            "over 90 days",
        ),
        ("status=pending", "an unknown status"),
        ("service_code=nope", "an unknown service_code"),
        ("service_request_id=123", "a bad id"),
        ("colour=red", "an unknown parameter"),
    ] {
        assert_json_error(&get(&app, &format!("requests.json?{q}")).await, bad, what);
        assert_xml_error(&get(&app, &format!("requests.xml?{q}")).await, bad, what);
    }
    // A bad bearer token: Precinct's 401, in the standard's shape.
    let a = post_form(
        &app,
        "requests.json",
        Some("not-a-token"),
        &[
            ("service_code", "theft-1"),
            ("lat", "7.07"),
            ("long", "125.61"),
        ],
    )
    .await;
    assert_json_error(&a, StatusCode::UNAUTHORIZED, "a bad bearer token");
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );

    // The anonymous per-address throttle of POST /crimes applies (429, Retry-After).
    let mut limited = None;
    for i in 0..40 {
        let lat = format!("7.07{i:02}");
        let a = post_form(
            &app,
            "requests.json",
            None,
            &[
                ("service_code", "theft-1"),
                ("lat", &lat),
                ("long", "125.61"),
            ],
        )
        .await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(a);
            break;
        }
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    let limited = limited.expect("the anonymous throttle answers 429 within 40 submissions");
    assert_json_error(
        &limited,
        StatusCode::TOO_MANY_REQUESTS,
        "over the anonymous budget",
    );
}
