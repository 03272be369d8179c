//! The event envelope's JSON Schema (`schemas/envelope.v1.json`, issue 20): the bodies a
//! NATS-native consumer reads from the EVENTS stream validate against it, and a body
//! that breaks it does not.

use precinct_tests::app::TestApp;
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

fn validator() -> jsonschema::Validator {
    let path = precinct_tests::repo_root().join("schemas/envelope.v1.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("schema JSON");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid JSON Schema")
}

fn errors(v: &jsonschema::Validator, body: &Value) -> Vec<String> {
    v.iter_errors(body).map(|e| e.to_string()).collect()
}

#[tokio::test]
async fn the_bodies_on_the_events_stream_validate_against_the_envelope_schema() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    app.precinct(&admin, "PS1", LAT, LON).await;
    let anonymous = app.report(None, LAT, LON, &["Theft"]).await;
    let head = anonymous.position();
    let v = validator();
    let nats = async_nats::connect(&app.config.nats_url)
        .await
        .expect("NATS");
    let js = async_nats::jetstream::new(nats);
    let stream = js
        .get_stream(&app.config.log.stream)
        .await
        .expect("the EVENTS stream");
    let mut kinds = std::collections::BTreeSet::new();
    for position in 1..=head {
        let msg = stream.direct_get(position).await.expect("message");
        let body: Value = serde_json::from_slice(&msg.payload).expect("JSON body");
        let found = errors(&v, &body);
        assert!(found.is_empty(), "position {position}: {body}: {found:?}");
        kinds.insert(body["actor"]["kind"].as_str().unwrap_or("?").to_string());
    }
    // The bootstrap (SYSTEM), the ADMIN's commands (USER) and the anonymous report.
    for kind in ["SYSTEM", "USER", "ANONYMOUS"] {
        assert!(kinds.contains(kind), "no {kind} actor among {kinds:?}");
    }

    // A body that breaks the envelope is refused: the schema can fail.
    let first = stream.direct_get(head).await.expect("message");
    let good: Value = serde_json::from_slice(&first.payload).expect("JSON");
    for (field, bad) in [
        ("event_id", json!("not-a-uuid")),
        ("actor", json!({"kind": "USER"})),
        ("schema_version", json!(0)),
        ("data", json!("text")),
    ] {
        let mut broken = good.clone();
        broken[field] = bad;
        assert!(!errors(&v, &broken).is_empty(), "{field} broken, yet valid");
    }
    let mut missing = good.clone();
    missing
        .as_object_mut()
        .expect("object")
        .remove("command_id");
    assert!(!errors(&v, &missing).is_empty(), "no command_id, yet valid");
}
