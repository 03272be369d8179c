//! The application layer's errors as the API renders them: which input field each
//! invalid-input refusal is about (the problem's `errors[].field`), and a port's own
//! error shown as it was.

use std::sync::Arc;

use precinct_app::error::PortError;
use precinct_app::Refusal;
use precinct_domain::ids::StationId;
use precinct_domain::ErrorKind;
use uuid::Uuid;

#[test]
fn each_refusal_of_the_input_names_its_field_and_no_other_refusal_names_one() {
    let invalid = [
        (Refusal::NoSuchStation, "station_id"),
        (Refusal::NoSuchPatrol, "patrol_id"),
        (
            Refusal::NotAnOfficer {
                officer: Uuid::from_u128(1),
                station: StationId::new(Uuid::from_u128(2)),
            },
            "officer_ids",
        ),
        (Refusal::NoStationForLocation, "location"),
        (Refusal::WrongPassword, "current_password"),
        (Refusal::NoSuchReport, "other_id"),
    ];
    for (refusal, field) in &invalid {
        assert_eq!(refusal.kind(), ErrorKind::Invalid, "{refusal:?}");
        assert_eq!(refusal.field(), Some(*field), "{refusal:?}");
    }
    for refusal in [
        Refusal::AmendAfterNew,
        Refusal::WithdrawAfterNew,
        Refusal::PatrolOffDuty,
        Refusal::NoAvailablePatrol,
        Refusal::EmailTaken,
        Refusal::TooManyPatrols(100),
        Refusal::DeactivateSelf,
        Refusal::LastAdmin,
        Refusal::EraseActiveAdmin,
        Refusal::InviterNoLongerEntitled,
        Refusal::StationTakesNoReports,
    ] {
        assert_ne!(refusal.kind(), ErrorKind::Invalid, "{refusal:?}");
        assert_eq!(refusal.field(), None, "{refusal:?}");
    }
}

#[test]
fn a_port_error_reads_as_the_error_it_carries() {
    let e = PortError(Arc::new(std::io::Error::other("the roster is unreachable")));
    assert_eq!(e.to_string(), "the roster is unreachable");
}
