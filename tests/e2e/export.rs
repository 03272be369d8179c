//! CSV export of the lists through HTTP → JetStream → PostgreSQL (issue 17 item 3, ADR
//! 0030): the same rows, fields, scoping and refusals as the JSON list; RFC 4180 with a
//! header row; formula cells neutralised; every row of a list longer than one chunk,
//! once each; `limit`, `cursor`, `Accept`; and the per-caller budget.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use precinct_tests::app::{Options, TestApp};
use precinct_tests::client::{Call, NewReport};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

/// Titles a spreadsheet would run as formulas, and ones RFC 4180 must quote. (A leading
/// tab or carriage return never reaches a title: the domain trims it; the unit tests of
/// `export.rs` cover those cells.)
const TITLES: &[&str] = &[
    "=HYPERLINK(\"http://evil.example\",\"click\")",
    "+1+2",
    "-3",
    "@SUM(A1:A9)",
    "Commas, \"quotes\"\nand a new line",
    "Plain title",
];

struct Csv {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Csv {
    fn header(&self) -> Vec<String> {
        let mut r = csv::Reader::from_reader(self.text.as_bytes());
        r.headers()
            .expect("a header row")
            .iter()
            .map(str::to_owned)
            .collect()
    }

    fn rows(&self) -> Vec<Vec<String>> {
        let mut r = csv::Reader::from_reader(self.text.as_bytes());
        r.records()
            .map(|r| {
                r.expect("an RFC 4180 record")
                    .iter()
                    .map(str::to_owned)
                    .collect()
            })
            .collect()
    }

    /// The records as column → cell maps.
    fn maps(&self) -> Vec<Vec<(String, String)>> {
        let header = self.header();
        self.rows()
            .into_iter()
            .map(|row| header.iter().cloned().zip(row).collect())
            .collect()
    }
}

async fn csv_get(app: &TestApp, path: &str, token: Option<&str>, accept: Option<&str>) -> Csv {
    let mut req = app.http.get(format!("{}{path}", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    let res = req.send().await.expect("HTTP");
    let status = res.status();
    let content_type = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = res.text().await.expect("a whole body");
    Csv {
        status,
        content_type,
        text,
    }
}

/// Every item of a JSON list, walking its pages.
async fn all_pages(app: &TestApp, path: &str, token: Option<&str>) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let sep = if path.contains('?') { '&' } else { '?' };
    for _ in 0..1_000 {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=100&cursor={c}"),
            None => format!("{path}{sep}limit=100"),
        };
        let r = app.get(&url, token).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
        items.extend(r.body["items"].as_array().expect("items").iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
    panic!("{path}: more than 1,000 pages");
}

/// What the export must write for a JSON value: as `precinct_api::export` documents.
fn expected_cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => precinct_api::export::neutralised(s),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => precinct_api::export::neutralised(&other.to_string()),
    }
}

fn at<'a>(v: &'a Value, column: &str) -> Option<&'a Value> {
    column.split('.').try_fold(v, |v, k| v.get(k))
}

/// Every JSON field is a column (nested objects flattened), and every cell is the field.
fn assert_same_rows(csv: &Csv, json: &[Value], what: &str) {
    let header = csv.header();
    let rows = csv.maps();
    assert_eq!(rows.len(), json.len(), "{what}: row count");
    for (row, item) in rows.iter().zip(json) {
        for (column, cell) in row {
            assert_eq!(
                *cell,
                expected_cell(at(item, column)),
                "{what}: column {column} of {item}"
            );
        }
        // No field of the JSON view is missing from the columns.
        let mut fields = Vec::new();
        flatten(item, "", &header, &mut fields);
        for f in fields {
            // (An optional nested object that is null here is its flattened columns.)
            assert!(
                header
                    .iter()
                    .any(|h| *h == f || h.starts_with(&format!("{f}."))),
                "{what}: field {f} is not a column of {header:?}"
            );
        }
    }
}

/// The JSON fields of `v`: a nested object is its own fields, unless it is one column
/// (a free-form object: notes, evidence, an event's data, a type's names).
fn flatten(v: &Value, prefix: &str, header: &[String], out: &mut Vec<String>) {
    let Some(o) = v.as_object() else { return };
    for (k, v) in o {
        let path = format!("{prefix}{k}");
        match v {
            Value::Object(_) if !header.contains(&path) => {
                flatten(v, &format!("{path}."), header, out)
            }
            _ => out.push(path),
        }
    }
}

#[tokio::test]
async fn an_export_has_the_lists_rows_fields_and_scoping_with_formulas_neutralised() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let a = app.precinct(&admin, "Export North", LAT, LON).await;
    let b = app.precinct(&admin, "Export South", LAT + 1.0, LON).await;
    let (_, dispatcher_a) = app.account(&admin, "DISPATCHER", Some(&a)).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    let mut last = 0;
    for title in TITLES {
        let report = NewReport {
            title,
            ..NewReport::bike(LAT, LON)
        };
        let r = app.send(&Call::submit(&report), Some(&citizen)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        last = r.position();
    }
    for _ in 0..3 {
        last = app
            .report(None, LAT + 1.0, LON, &["Theft"])
            .await
            .position();
    }
    app.caught_up(last).await;

    // Staff: the full view of their own station, every row, as the JSON list.
    let json = all_pages(&app, "/crimes", Some(&dispatcher_a)).await;
    assert_eq!(json.len(), TITLES.len(), "station A's reports");
    let csv = csv_get(&app, "/crimes?format=csv", Some(&dispatcher_a), None).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert_eq!(csv.content_type, "text/csv; charset=utf-8; header=present");
    assert!(csv.text.ends_with("\r\n"), "CRLF line ends");
    assert_same_rows(&csv, &json, "staff export");
    let header = csv.header();
    for column in [
        "id",
        "title",
        "contact",
        "location.latitude",
        "crime_type_codes",
    ] {
        assert!(header.iter().any(|h| h == column), "{column} in {header:?}");
    }
    // Each formula title is neutralised with a leading quote; the others are as typed.
    let titles: Vec<String> = csv
        .maps()
        .into_iter()
        .map(|r| r.into_iter().find(|(c, _)| c == "title").expect("title").1)
        .collect();
    for title in TITLES {
        let formula = matches!(title.chars().next(), Some('=' | '+' | '-' | '@'));
        let want = if formula {
            format!("'{title}")
        } else {
            title.to_string()
        };
        assert!(titles.contains(&want), "{want:?} in {titles:?}");
    }
    // Another station's reports: the same refusal as the JSON list.
    let other = csv_get(
        &app,
        &format!("/crimes?format=csv&station_id={b}"),
        Some(&dispatcher_a),
        None,
    )
    .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.text);
    assert!(other.content_type.starts_with("application/problem+json"));

    // Anonymous: the public view's columns only, asked for with Accept.
    let public = csv_get(&app, "/crimes", None, Some("text/csv")).await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.text);
    let header = public.header();
    for personal in [
        "title",
        "description",
        "contact",
        "reporter_id",
        "notes",
        "evidence",
    ] {
        assert!(
            !header.iter().any(|h| h == personal),
            "{personal} in {header:?}"
        );
    }
    let public_json = all_pages(&app, "/crimes", None).await;
    assert_eq!(public_json.len(), TITLES.len() + 3);
    assert_same_rows(&public, &public_json, "public export");
    // JSON stays the default, and wins when preferred.
    let preferred = csv_get(
        &app,
        "/crimes",
        None,
        Some("application/json, text/csv;q=0.5"),
    )
    .await;
    assert!(preferred.content_type.starts_with("application/json"));

    // The citizen's own reports, in the reporter's view.
    let mine_json = all_pages(&app, "/me/crimes", Some(&citizen)).await;
    let mine = csv_get(&app, "/me/crimes?format=csv", Some(&citizen), None).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert_eq!(mine_json.len(), TITLES.len());
    assert_same_rows(&mine, &mine_json, "reporter export");
    assert!(!mine.header().iter().any(|h| h == "notes"));

    // `limit` caps the rows and `cursor` starts after a row, as in the JSON pages.
    let first = app.get("/crimes?limit=3", Some(&dispatcher_a)).await;
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let capped = csv_get(
        &app,
        "/crimes?format=csv&limit=3",
        Some(&dispatcher_a),
        None,
    )
    .await;
    assert_same_rows(&capped, &json[..3], "limit=3");
    let rest = csv_get(
        &app,
        &format!("/crimes?format=csv&cursor={cursor}"),
        Some(&dispatcher_a),
        None,
    )
    .await;
    assert_same_rows(&rest, &json[3..], "after the cursor");

    // A report's history and the other lists export too, each as its JSON.
    let id = json[0]["id"].as_str().expect("id");
    let history_json = all_pages(&app, &format!("/crimes/{id}/history"), Some(&dispatcher_a)).await;
    let history = csv_get(
        &app,
        &format!("/crimes/{id}/history?format=csv"),
        Some(&dispatcher_a),
        None,
    )
    .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    assert!(!history_json.is_empty());
    assert_same_rows(&history, &history_json, "history export");
    for path in [
        "/queues/reports",
        "/stations",
        "/crime-types",
        "/users",
        "/audit",
        "/workloads",
        "/patrols/register",
    ] {
        let json = all_pages(&app, path, Some(&admin)).await;
        let sep = if path.contains('?') { '&' } else { '?' };
        let csv = csv_get(&app, &format!("{path}{sep}format=csv"), Some(&admin), None).await;
        assert_eq!(csv.status, StatusCode::OK, "{path}: {}", csv.text);
        assert_same_rows(&csv, &json, path);
    }
    // An ADMIN's user export has e-mail addresses; a SUPERVISOR's has none.
    let (_, supervisor_a) = app.account(&admin, "SUPERVISOR", Some(&a)).await;
    let users = csv_get(&app, "/users?format=csv", Some(&admin), None).await;
    assert!(users.header().iter().any(|h| h == "email"));
    let staff = csv_get(&app, "/users?format=csv", Some(&supervisor_a), None).await;
    assert_eq!(staff.status, StatusCode::OK, "{}", staff.text);
    assert!(
        !staff.header().iter().any(|h| h == "email"),
        "{:?}",
        staff.header()
    );
    assert!(!staff.text.contains("@precinct.test"), "{}", staff.text);

    // Refusals as for JSON, in problem+json.
    for (path, token, status) in [
        (
            "/crimes?format=xml",
            Some(&dispatcher_a),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/crimes?format=csv&limit=0",
            Some(&dispatcher_a),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/audit?format=csv",
            Some(&dispatcher_a),
            StatusCode::FORBIDDEN,
        ),
        (
            "/queues/reports?format=csv",
            Some(&citizen),
            StatusCode::FORBIDDEN,
        ),
        (
            "/crimes?format=csv&cursor=garbage",
            Some(&dispatcher_a),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = csv_get(&app, path, token.map(String::as_str), None).await;
        assert_eq!(r.status, status, "{path}: {}", r.text);
        assert!(
            r.content_type.starts_with("application/problem+json"),
            "{path}: {}",
            r.content_type
        );
    }
}

#[tokio::test]
async fn an_export_longer_than_a_chunk_has_every_row_once() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    // 1,050 requests: the request log then holds more rows than one chunk (1,000).
    let started = chrono::Utc::now();
    // Sixteen at a time: all 1,050 at once made the server shed some with 503 on a busy
    // machine (its overload behaviour, not what this test is about).
    let probes: Vec<_> = futures::stream::iter((0..1_050).map(|_| {
        let http = app.http.clone();
        let url = format!("{}/stations?limit=1", app.base);
        async move { http.get(url).send().await.map(|r| r.status()) }
    }))
    .buffer_unordered(16)
    .collect()
    .await;
    let failed: Vec<String> = probes
        .iter()
        .filter(|s| !matches!(s, Ok(s) if s.is_success()))
        .map(|s| format!("{s:?}"))
        .collect();
    assert!(
        failed.is_empty(),
        "{} probes failed: {:?}",
        failed.len(),
        failed.first()
    );
    let until = chrono::Utc::now() + chrono::Duration::milliseconds(1);
    let window = format!(
        "/audit/requests?path=/stations&from={}&to={}",
        started
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .replace('+', "%2B"),
        until
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .replace('+', "%2B"),
    );
    // The request log is written behind the responses: wait until it has them all.
    let deadline = Instant::now() + Duration::from_secs(30);
    let json = loop {
        let json = all_pages(&app, &window, Some(&admin)).await;
        if json.len() >= 1_050 || Instant::now() > deadline {
            break json;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(json.len(), 1_050, "the request log has every probe");
    let csv = csv_get(&app, &format!("{window}&format=csv"), Some(&admin), None).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert_same_rows(&csv, &json, "request log export");
    let ids: std::collections::HashSet<String> = csv
        .maps()
        .into_iter()
        .map(|r| {
            r.into_iter()
                .find(|(c, _)| c == "request_id")
                .expect("request_id")
                .1
        })
        .collect();
    assert_eq!(ids.len(), 1_050, "no row twice");
}

#[tokio::test]
async fn exports_count_in_a_per_caller_budget() {
    let app = TestApp::spawn_with(Options {
        export_rates: precinct_api::CommandRates::exports(),
        ..Options::default()
    })
    .await
    .expect("spawn");
    let admin = app.admin().await;
    let burst = precinct_api::CommandRates::exports().citizen.burst;
    for i in 0..burst {
        let r = csv_get(&app, "/crime-types?format=csv", None, None).await;
        assert_eq!(r.status, StatusCode::OK, "export {i}: {}", r.text);
    }
    let over = app
        .call(
            reqwest::Method::GET,
            "/crime-types?format=csv",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{}", over.body);
    assert!(over.headers.contains_key("retry-after"));
    // The budget is the caller's: a signed-in account still exports, and JSON lists
    // are not counted. (`/stations` reads no token: its exports count by address.)
    let r = csv_get(&app, "/crime-types?format=csv", Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let page = app.get("/crime-types", None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body["items"].is_array(), "{}", page.body);
    // One export is one token of the budget, whatever the endpoint: a staff member
    // gets their whole burst of analytics exports, then 429.
    let a = app.precinct(&admin, "Budget", LAT, LON).await;
    let (_, desk) = app.account(&admin, "DISPATCHER", Some(&a)).await;
    let staff_burst = precinct_api::CommandRates::exports().staff.burst;
    for i in 0..staff_burst {
        let r = csv_get(&app, "/analytics/sla?format=csv", Some(&desk), None).await;
        assert_eq!(r.status, StatusCode::OK, "export {i}: {}", r.text);
    }
    let over = csv_get(&app, "/analytics/funnel?format=csv", Some(&desk), None).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{}", over.text);
}

#[tokio::test]
async fn the_analytics_export_their_rows_as_csv() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let a = app.precinct(&admin, "Analytics Export", LAT, LON).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&a)).await;
    let mut last = 0;
    for i in 0..4 {
        // Three reports in one coarse cell (k = 3 by default), one far from it.
        let lat = if i < 3 { LAT } else { LAT + 0.04 };
        last = app.report(None, lat, LON, &["Theft"]).await.position();
    }
    app.caught_up(last).await;
    let from = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let range = format!("from={from}&to={to}").replace('+', "%2B");
    let bbox = "125.5,7.0,125.7,7.2";
    for (path, token) in [
        (
            format!("/analytics/volume?{range}&bucket=hour"),
            Some(&dispatcher),
        ),
        (format!("/analytics/funnel?{range}"), Some(&dispatcher)),
        (format!("/analytics/sla?{range}"), Some(&admin)),
        (format!("/analytics/officers?{range}"), Some(&admin)),
        (format!("/analytics/patrols?{range}"), Some(&admin)),
    ] {
        let token = token.map(String::as_str);
        let json = app.get(&path, token).await;
        assert_eq!(json.status, StatusCode::OK, "{path}: {}", json.body);
        let items = json.body["items"].as_array().expect("items").clone();
        let csv = csv_get(&app, &format!("{path}&format=csv"), token, None).await;
        assert_eq!(csv.status, StatusCode::OK, "{path}: {}", csv.text);
        assert_same_rows(&csv, &items, &path);
    }
    // The volume has the four reports.
    let volume = csv_get(
        &app,
        &format!("/analytics/volume?{range}&bucket=hour&format=csv"),
        Some(&dispatcher),
        None,
    )
    .await;
    // (One row per bucket and value of each dimension: the station's rows add up to
    // every report.)
    let total: i64 = volume
        .maps()
        .into_iter()
        .filter(|r| r.iter().any(|(c, v)| c == "dimension" && v == "station"))
        .map(|r| r.into_iter().find(|(c, _)| c == "count").expect("count").1)
        .map(|c| c.parse::<i64>().expect("a number"))
        .sum();
    assert_eq!(total, 4, "{}", volume.text);
    // The public heatmap: cells as in the GeoJSON, the lone report's cell suppressed.
    let geo = app
        .get(
            &format!("/analytics/heatmap/public?{range}&bbox={bbox}"),
            None,
        )
        .await;
    assert_eq!(geo.status, StatusCode::OK, "{}", geo.body);
    let cells: Vec<Value> = geo.body["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| f["properties"].clone())
        .collect();
    let public = csv_get(
        &app,
        &format!("/analytics/heatmap/public?{range}&bbox={bbox}&format=csv"),
        None,
        None,
    )
    .await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.text);
    assert_eq!(public.header(), vec!["cell", "count"]);
    assert_same_rows(&public, &cells, "public heatmap");
    assert_eq!(
        public.rows().len(),
        1,
        "the cell under k is left out: {}",
        public.text
    );
    // Refusals as for JSON.
    let other = csv_get(
        &app,
        &format!("/analytics/volume?{range}&format=csv&bucket=fortnight"),
        Some(&dispatcher),
        None,
    )
    .await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other.text
    );
}
