//! Every event survives `to_data` → `from_parts` (and `from_parts_ref`) unchanged, keeps its type name, and
//! the type list of the crate is complete and unique.

mod common;

use std::collections::BTreeSet;

use common::samples;
use precinct_domain::{all_event_types, DomainEvent};

fn roundtrip<E: DomainEvent + PartialEq>(events: Vec<E>) {
    for event in events {
        let data = event.to_data();
        assert!(
            data.is_object(),
            "{}: data is a JSON object",
            event.event_type()
        );
        assert!(
            data.get("type").is_none(),
            "{}: no type tag in data",
            event.event_type()
        );
        assert_eq!(event.schema_version(), 1);
        let borrowed = E::from_parts_ref(event.event_type(), &data)
            .unwrap_or_else(|e| panic!("{}: {e}", event.event_type()));
        assert_eq!(borrowed, event);
        let back = E::from_parts(event.event_type(), data)
            .unwrap_or_else(|e| panic!("{}: {e}", event.event_type()));
        assert_eq!(back, event);
    }
}

#[test]
fn every_event_round_trips() {
    roundtrip(samples::report_events());
    roundtrip(samples::patrol_events());
    roundtrip(samples::account_events());
    roundtrip(samples::email_events());
    roundtrip(samples::station_events());
    roundtrip(samples::invite_events());
    roundtrip(samples::crime_type_events());
    roundtrip(samples::webhook_events());
    roundtrip(samples::reporter_contact_events());
    roundtrip(samples::device_events());
    roundtrip(samples::admin_guard_events());
}

#[test]
fn unknown_event_type_is_an_error() {
    use precinct_domain::report::ReportEvent;
    for err in [
        ReportEvent::from_parts("ReportExploded", serde_json::json!({})),
        ReportEvent::from_parts_ref("ReportExploded", &serde_json::json!({})),
    ] {
        let err = err.expect_err("an unknown type").to_string();
        assert!(err.contains("unknown variant `ReportExploded`"), "{err}");
    }
}

#[test]
fn a_payload_of_another_type_is_an_error() {
    use precinct_domain::report::ReportEvent;
    // A `ReportSubmitted` payload named as something it is not, and a payload that is
    // not an object: both refused, by value and by reference.
    let submitted = samples::report_events()
        .into_iter()
        .find(|e| e.event_type() == "ReportSubmitted")
        .expect("a sample submission")
        .to_data();
    for data in [submitted, serde_json::json!(null), serde_json::json!([1])] {
        assert!(ReportEvent::from_parts("ReportRejected", data.clone()).is_err());
        assert!(ReportEvent::from_parts_ref("ReportRejected", &data).is_err());
    }
}

#[test]
fn a_rejection_recorded_before_public_reasons_existed_still_decodes() {
    use precinct_domain::report::{ReportEvent, ReportRejected};
    let old = serde_json::json!({
        "justification": "Prank",
        "by": "00000000-0000-0000-0000-00000000001e",
        "at": "2026-11-01T08:00:00Z"
    });
    let event = ReportEvent::from_parts("ReportRejected", old.clone()).expect("decodes");
    let ReportEvent::ReportRejected(ReportRejected { public_reason, .. }) = &event else {
        panic!("{event:?}");
    };
    assert_eq!(*public_reason, None);
    // And is written back exactly as it was.
    assert_eq!(event.to_data(), old);
}

#[test]
fn event_types_are_unique_and_pascal_case() {
    let all = all_event_types();
    let unique: BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len());
    assert_eq!(all.len(), 62);
    for t in all {
        assert!(
            t.chars().next().is_some_and(|c| c.is_ascii_uppercase()),
            "{t}"
        );
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()), "{t}");
    }
}

#[test]
fn reporter_and_personal_data_have_their_documented_shape() {
    let (_, data) = samples::all()
        .into_iter()
        .find(|(t, _)| *t == "ReportSubmitted")
        .expect("sample");
    assert_eq!(data["reporter"]["kind"], "ANONYMOUS");
    assert_eq!(data["reporter"]["tracking_token_hash"], samples::HASH);
    assert_eq!(
        data["personal"]["description"],
        "Taken from the rack at noon"
    );
    assert_eq!(data["personal"]["street"], "12 Rizal St");
    assert!(data.get("description").is_none() && data["location"].get("street").is_none());
    assert_eq!(data["location"]["latitude"], 7.0731);
    assert_eq!(data["priority"], "MEDIUM");
    assert_eq!(data["routing"]["rule"], "NEAREST_PRECINCT");
}

#[test]
fn erased_personal_data_reads_as_erased() {
    use precinct_domain::report::{ReportEvent, ReportSubmitted};
    let mut sample = common::samples::report_events()
        .into_iter()
        .find_map(|e| match e {
            ReportEvent::ReportSubmitted(s) => Some(s),
            _ => None,
        })
        .expect("a ReportSubmitted sample");
    let mut data = ReportEvent::from(sample.clone()).to_data();
    data["personal"] = serde_json::Value::Null;
    let back = ReportEvent::from_parts("ReportSubmitted", data).expect("null personal reads");
    sample.personal = precinct_domain::report::PersonalDetails::erased();
    assert_eq!(back, ReportEvent::from(ReportSubmitted { ..sample }));
}
