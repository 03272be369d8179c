//! Every event type has a JSON Schema in `schemas/events/<Type>.v1.json`, every
//! schema belongs to an event type, and a sample of every event validates against its
//! schema. Breaking one of these means an event's wire format changed: that is a
//! migration, not a refactor.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use precinct_domain::all_event_types;
use serde_json::Value;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/events")
}

fn load_schema(event_type: &str) -> Value {
    let path = schema_dir().join(format!("{event_type}.v1.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing schema {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn validator(event_type: &str) -> jsonschema::Validator {
    let schema = load_schema(event_type);
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{event_type}: schemas are draft 2020-12"
    );
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{event_type}: invalid schema: {e}"))
}

#[test]
fn every_sample_event_validates_against_its_schema() {
    for (event_type, data) in common::samples::all() {
        let validator = validator(event_type);
        let errors: Vec<String> = validator
            .iter_errors(&data)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{event_type} sample does not match its schema:\n{}\n{data:#}",
            errors.join("\n")
        );
    }
}

#[test]
fn every_event_type_has_a_sample() {
    let sampled: BTreeSet<&str> = common::samples::all().iter().map(|(t, _)| *t).collect();
    let all: BTreeSet<&str> = all_event_types().iter().copied().collect();
    assert_eq!(sampled, all);
}

#[test]
fn every_event_type_has_a_schema_and_every_schema_an_event_type() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(schema_dir())
        .expect("schemas/events exists")
        .map(|entry| {
            entry
                .expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    let expected: BTreeSet<String> = all_event_types()
        .iter()
        .map(|t| format!("{t}.v1.json"))
        .collect();
    let orphans: Vec<_> = on_disk.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(&on_disk).collect();
    assert!(
        orphans.is_empty(),
        "schemas without an event type: {orphans:?}"
    );
    assert!(
        missing.is_empty(),
        "event types without a schema: {missing:?}"
    );
}

#[test]
fn schemas_refuse_what_the_domain_refuses() {
    let triaged = validator("ReportTriaged");
    assert!(
        !triaged.is_valid(&serde_json::json!({"priority": "URGENT", "at": "2025-03-01T08:00:00Z"}))
    );
    assert!(!triaged.is_valid(&serde_json::json!({"priority": "LOW"})));
    assert!(!triaged.is_valid(
        &serde_json::json!({"priority": "LOW", "at": "2025-03-01T08:00:00Z", "extra": 1})
    ));
    let submitted = validator("ReportSubmitted");
    let (_, mut data) = common::samples::all()
        .into_iter()
        .find(|(t, _)| *t == "ReportSubmitted")
        .expect("sample");
    data["location"]["latitude"] = serde_json::json!(91.0);
    assert!(!submitted.is_valid(&data));
    let reserved = validator("EmailReserved");
    assert!(!reserved
        .is_valid(&serde_json::json!({"account_id": "not-a-uuid", "at": "2025-03-01T08:00:00Z"})));
    assert!(!reserved.is_valid(&serde_json::json!({"account_id": "6f1c8a52-3d4e-4b7a-9c21-5e0fd3a8b7c4", "at": "yesterday"})));
}
