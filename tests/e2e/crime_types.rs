//! The crime-type catalogue through HTTP → JetStream → PostgreSQL (issue 17 item 1,
//! ADR 0026): the public list with the built-in OTHER, ADMIN create / edit / retire,
//! refusals (403, 422 problem+json per field, 409 for a duplicate code and for OTHER),
//! two concurrent creations of one code (one wins), a report's free text resolving to
//! codes (unknown text → OTHER, a retired type no longer resolved), division keyword
//! routing unchanged, and a rebuild giving the same rows.

use precinct_tests::app::TestApp;
use precinct_tests::client::Res;
use reqwest::StatusCode;
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

fn theft() -> Value {
    json!({
        "code": "THEFT",
        "names": {"en": "Theft", "fil": "Pagnanakaw"},
        "default_priority": "HIGH",
        "keywords": ["stolen", "snatch"],
        "service_code": "theft-1",
        "group": "Property",
    })
}

fn assert_problem(r: &Res, status: StatusCode, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert!(
        r.body.get("title").is_some(),
        "{what}: not a problem: {}",
        r.body
    );
}

fn assert_invalid(r: &Res, field: &str, what: &str) {
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, what);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(fields.contains(&field), "{what}: {fields:?} in {}", r.body);
}

fn codes(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["code"].as_str().expect("code").to_owned())
        .collect()
}

async fn report_codes(app: &TestApp, token: &str, types: &[&str]) -> Vec<String> {
    let r = app.report(Some(token), LAT, LON, types).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let written: Vec<String> = serde_json::from_value(r.body["crime_type_codes"].clone())
        .expect("codes in the command's answer");
    let id = r.id();
    let read = app
        .get_at(&format!("/crimes/{id}"), Some(token), r.position())
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let stored: Vec<String> =
        serde_json::from_value(read.body["crime_type_codes"].clone()).expect("codes read");
    assert_eq!(
        written, stored,
        "the read model keeps what the command resolved"
    );
    assert_eq!(
        read.body["crime_types"],
        json!(types),
        "the free text is kept as typed"
    );
    stored
}

#[tokio::test]
async fn the_catalogue_is_public_and_changed_by_an_admin_only() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;

    // An empty catalogue still lists the built-in OTHER, to anyone.
    let list = app.get("/crime-types", None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(codes(&list.body), vec!["OTHER"]);

    let created = app.post("/crime-types", Some(&admin), theft()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["code"], "THEFT");
    assert_eq!(created.body["keywords"], json!(["stolen", "snatch"]));
    assert_eq!(created.body["active"], true);

    let one = app
        .get_at("/crime-types/THEFT", None, created.position())
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.body["names"]["fil"], "Pagnanakaw");
    assert_eq!(one.body["default_priority"], "HIGH");
    assert_eq!(one.body["service_code"], "theft-1");
    assert_eq!(one.body["group"], "Property");
    let list = app.get_at("/crime-types", None, created.position()).await;
    assert_eq!(codes(&list.body), vec!["OTHER", "THEFT"]);

    // Not an ADMIN: 403, nothing appended.
    let head = app.log.head().await.expect("head");
    let mut other = theft();
    other["code"] = json!("ROBBERY");
    assert_problem(
        &app.post("/crime-types", Some(&citizen), other.clone())
            .await,
        StatusCode::FORBIDDEN,
        "create as a citizen",
    );
    assert_problem(
        &app.post("/crime-types", None, other).await,
        StatusCode::UNAUTHORIZED,
        "create anonymously",
    );
    assert_problem(
        &app.patch(
            "/crime-types/THEFT",
            Some(&citizen),
            json!({"keywords": []}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "edit as a citizen",
    );
    assert_problem(
        &app.post("/crime-types/THEFT/retire", Some(&citizen), json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "retire as a citizen",
    );
    assert_problem(
        &app.get("/crime-types?include_retired=true", Some(&citizen))
            .await,
        StatusCode::FORBIDDEN,
        "retired types as a citizen",
    );
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "refusals append nothing"
    );

    // Edit: a field left out is kept, null clears.
    let edited = app
        .patch(
            "/crime-types/THEFT",
            Some(&admin),
            json!({"default_priority": "CRITICAL", "service_code": null}),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["default_priority"], "CRITICAL");
    assert_eq!(edited.body["service_code"], Value::Null);
    assert_eq!(edited.body["group"], "Property");

    // Retire: gone from the public list, still readable, listed for an ADMIN.
    let retired = app
        .post("/crime-types/THEFT/retire", Some(&admin), json!({}))
        .await;
    assert_eq!(retired.status, StatusCode::OK, "{}", retired.body);
    assert_eq!(retired.body["active"], false);
    let list = app.get_at("/crime-types", None, retired.position()).await;
    assert_eq!(codes(&list.body), vec!["OTHER"]);
    let all = app
        .get_at(
            "/crime-types?include_retired=true",
            Some(&admin),
            retired.position(),
        )
        .await;
    assert_eq!(codes(&all.body), vec!["OTHER", "THEFT"]);
    let one = app.get("/crime-types/THEFT", None).await;
    assert_eq!(one.body["active"], false);
    assert_eq!(one.body["default_priority"], "CRITICAL");

    // A retired code stays taken; OTHER is built in; an unknown code is 404.
    assert_problem(
        &app.post("/crime-types", Some(&admin), theft()).await,
        StatusCode::CONFLICT,
        "a retired code again",
    );
    let mut builtin = theft();
    builtin["code"] = json!("OTHER");
    assert_problem(
        &app.post("/crime-types", Some(&admin), builtin).await,
        StatusCode::CONFLICT,
        "create OTHER",
    );
    assert_problem(
        &app.post("/crime-types/OTHER/retire", Some(&admin), json!({}))
            .await,
        StatusCode::CONFLICT,
        "retire OTHER",
    );
    assert_problem(
        &app.get("/crime-types/NOPE", None).await,
        StatusCode::NOT_FOUND,
        "unknown code",
    );
    assert_problem(
        &app.patch("/crime-types/NOPE", Some(&admin), json!({"keywords": []}))
            .await,
        StatusCode::NOT_FOUND,
        "edit an unknown code",
    );
}

#[tokio::test]
async fn bad_input_is_422_naming_the_field_and_appends_nothing() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let head = app.log.head().await.expect("head");
    let with = |field: &str, value: Value| {
        let mut body = theft();
        body[field] = value;
        body
    };
    let cases = [
        (with("code", json!("theft")), "code"),
        (with("code", json!("T")), "code"),
        (with("code", json!(format!("A{}", "B".repeat(32)))), "code"),
        (with("names", json!({"en": "x".repeat(201)})), "names"),
        (with("names", json!({"fil": "Pagnanakaw"})), "names"),
        (with("names", json!({"en": "Theft", "EN_US": "x"})), "names"),
        (
            with(
                "keywords",
                json!((0..51).map(|i| format!("kw{i}")).collect::<Vec<_>>()),
            ),
            "keywords",
        ),
        (with("keywords", json!(["k".repeat(101)])), "keywords"),
        (
            with("default_priority", json!("URGENT")),
            "default_priority",
        ),
        (with("service_code", json!("has space")), "service_code"),
        (with("group", json!("g".repeat(101))), "group"),
    ];
    for (body, field) in cases {
        let r = app.post("/crime-types", Some(&admin), body.clone()).await;
        assert_invalid(&r, field, &body.to_string());
    }
    let r = app
        .post("/crime-types", Some(&admin), with("colour", json!("red")))
        .await;
    assert!(r.status.is_client_error(), "unknown field: {}", r.status);
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );
}

#[tokio::test]
async fn a_duplicate_code_is_409_and_of_two_concurrent_creations_one_wins() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let created = app.post("/crime-types", Some(&admin), theft()).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_problem(
        &app.post("/crime-types", Some(&admin), theft()).await,
        StatusCode::CONFLICT,
        "duplicate code",
    );

    for round in 0..5 {
        let body = json!({"code": format!("RACE_{round}"), "names": {"en": "Race"}});
        let (a, b) = tokio::join!(
            app.post("/crime-types", Some(&admin), body.clone()),
            app.post("/crime-types", Some(&admin), body.clone()),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::CREATED, StatusCode::CONFLICT],
            "round {round}: {} / {}",
            a.body,
            b.body
        );
    }
    let head = app.log.head().await.expect("head");
    let all = app
        .get_at(
            "/crime-types?include_retired=true&limit=100",
            Some(&admin),
            head,
        )
        .await;
    assert_eq!(
        codes(&all.body),
        vec!["OTHER", "RACE_0", "RACE_1", "RACE_2", "RACE_3", "RACE_4", "THEFT"]
    );
}

#[tokio::test]
async fn free_text_resolves_to_codes_and_a_rebuild_gives_the_same_rows() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    app.precinct(&admin, "Precinct", LAT, LON).await;
    let cyber = app.division(&admin, "Cybercrime", &["online fraud"]).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;

    // Before any type: everything is OTHER.
    assert_eq!(
        report_codes(&app, &citizen, &["Theft"]).await,
        vec!["OTHER"]
    );

    let r = app.post("/crime-types", Some(&admin), theft()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(
            "/crime-types",
            Some(&admin),
            json!({"code": "FRAUD", "names": {"en": "Fraud"}, "keywords": ["fraud", "scam"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // By code, by name (any language), by keyword; unknown text: OTHER.
    assert_eq!(
        report_codes(&app, &citizen, &["theft"]).await,
        vec!["THEFT"]
    );
    assert_eq!(
        report_codes(&app, &citizen, &["Pagnanakaw"]).await,
        vec!["THEFT"]
    );
    assert_eq!(
        report_codes(&app, &citizen, &["Bike stolen", "Graffiti"]).await,
        vec!["THEFT", "OTHER"]
    );
    assert_eq!(
        report_codes(&app, &citizen, &["Graffiti"]).await,
        vec!["OTHER"]
    );

    // Division keyword routing is unchanged: the free text still routes.
    let r = app
        .report(Some(&citizen), LAT, LON, &["Online Fraud Scheme"])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        r.body["station_id"].as_str(),
        Some(cyber.as_str()),
        "{}",
        r.body
    );
    assert_eq!(r.body["crime_type_codes"], json!(["FRAUD"]));

    // A retired type is no longer resolved; reports that have it keep it.
    let retired = app
        .post("/crime-types/THEFT/retire", Some(&admin), json!({}))
        .await;
    assert_eq!(retired.status, StatusCode::OK, "{}", retired.body);
    assert_eq!(
        report_codes(&app, &citizen, &["Bike stolen"]).await,
        vec!["OTHER"]
    );

    // An edit of the keywords applies to reports submitted after it.
    let edited = app
        .patch(
            "/crime-types/FRAUD",
            Some(&admin),
            json!({"keywords": ["fraud", "scam", "phishing"]}),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(
        report_codes(&app, &citizen, &["Phishing e-mail"]).await,
        vec!["FRAUD"]
    );

    // An amendment of the crime types resolves them again (ADR 0026); one that leaves
    // them alone keeps the codes.
    let r = app.report(Some(&citizen), LAT, LON, &["Graffiti"]).await;
    let id = r.id();
    assert_eq!(r.body["crime_type_codes"], json!(["OTHER"]));
    let amended = app
        .patch(
            &format!("/crimes/{id}"),
            Some(&citizen),
            json!({"crime_types": ["Phishing link", "Graffiti"]}),
        )
        .await;
    assert_eq!(amended.status, StatusCode::OK, "{}", amended.body);
    assert_eq!(amended.body["crime_type_codes"], json!(["FRAUD", "OTHER"]));
    let retitled = app
        .patch(
            &format!("/crimes/{id}"),
            Some(&citizen),
            json!({"title": "Phished"}),
        )
        .await;
    assert_eq!(retitled.status, StatusCode::OK, "{}", retitled.body);
    let read = app
        .get_at(
            &format!("/crimes/{id}"),
            Some(&citizen),
            retitled.position(),
        )
        .await;
    assert_eq!(
        read.body["crime_type_codes"],
        json!(["FRAUD", "OTHER"]),
        "{}",
        read.body
    );
    assert_eq!(
        read.body["crime_types"],
        json!(["Phishing link", "Graffiti"])
    );

    // Rebuild: the same catalogue and the same codes on every report.
    let head = app.log.head().await.expect("head");
    app.caught_up(head).await;
    let pool = app.pool.clone();
    let log = app.log.clone();
    let dump = || async {
        let types: Value = sqlx::query_scalar(
            "SELECT coalesce(json_agg(t ORDER BY t.code), '[]'::json) FROM crime_types t",
        )
        .fetch_one(&pool)
        .await
        .expect("dump types");
        let reports: Value = sqlx::query_scalar(
            "SELECT coalesce(json_agg(json_build_array(id, crime_types, crime_type_codes)
                ORDER BY id), '[]'::json) FROM reports",
        )
        .fetch_one(&pool)
        .await
        .expect("dump reports");
        (types, reports)
    };
    let live = dump().await;
    assert_eq!(live.0.as_array().map(Vec::len), Some(2));
    assert_eq!(live.1.as_array().map(Vec::len), Some(9));
    app.stop().await.expect("stop");
    precinct_projections::rebuild(&pool, &log)
        .await
        .expect("rebuild");
    assert_eq!(dump().await, live, "rebuilt rows equal the live ones");
}
