//! Data subjects: erasure is recorded once, and which event fields are personal (sealed
//! under the subject's key) or otherwise sealed.

mod common;

use common::{given, given_nothing, t, uuid};
use precinct_domain::ids::AccountId;
use precinct_domain::subject::*;
use precinct_domain::Aggregate;

fn erase(at: i64) -> SubjectCommand {
    SubjectCommand::Erase {
        subject_id: uuid(40),
        erased_by: AccountId::new(uuid(1)),
        at: t(at),
    }
}

#[test]
fn an_erasure_is_recorded_once_and_a_second_is_a_no_op() {
    assert!(!DataSubject::default().version_exists());
    let erased = given_nothing::<DataSubject>()
        .when(erase(3))
        .then_events(vec![DataSubjectErased {
            subject_id: uuid(40),
            erased_by: AccountId::new(uuid(1)),
            at: t(3),
        }
        .into()]);
    assert!(erased.version_exists());
    assert_eq!(erased.erased_at, Some(t(3)));
    let history = [DataSubjectErased {
        subject_id: uuid(40),
        erased_by: AccountId::new(uuid(1)),
        at: t(3),
    }
    .into()];
    let again = given::<DataSubject>(history)
        .when(erase(9))
        .then_no_events();
    assert_eq!(
        again.erased_at,
        Some(t(3)),
        "the first erasure's time stays"
    );
}

#[test]
fn personal_and_sealed_fields_are_named_per_event_type() {
    for (event_type, fields) in [
        ("ReportSubmitted", &["personal"][..]),
        ("ReportAmended", &["personal"]),
        ("EvidenceAttached", &["description"]),
        ("AccountRegistered", &["email", "name"]),
        ("AccountRenamed", &["name"]),
        ("InviteCreated", &["email"]),
        ("EmailUpdatesRequested", &["email"]),
        ("DeviceRegistered", &["endpoint", "keys"]),
        ("ReportAssigned", &[]),
        ("AdminLeft", &[]),
    ] {
        assert_eq!(personal_fields(event_type), fields, "{event_type}");
        assert_eq!(sealed_fields(event_type), fields, "{event_type}");
    }
    for event_type in ["WebhookCreated", "WebhookSecretRotated"] {
        assert_eq!(personal_fields(event_type), &[] as &[&str], "{event_type}");
        assert_eq!(sealed_fields(event_type), ["secret"], "{event_type}");
    }
}
