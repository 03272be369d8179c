//! The ADMIN guard records each departure of an active ADMIN; its version counts them.

mod common;

use common::{given, given_nothing, t, uuid};
use precinct_domain::admin_guard::*;
use precinct_domain::ids::AccountId;
use precinct_domain::Aggregate;

fn leave(n: u128, exit: AdminExit) -> AdminGuardCommand {
    AdminGuardCommand::Leave {
        account_id: AccountId::new(uuid(n)),
        exit,
        at: t(n as i64),
    }
}

#[test]
fn a_departure_is_recorded_as_it_was_decided() {
    let state = given_nothing::<AdminGuard>()
        .when(leave(1, AdminExit::Demoted))
        .then_events(vec![AdminLeft {
            account_id: AccountId::new(uuid(1)),
            exit: AdminExit::Demoted,
            at: t(1),
        }
        .into()]);
    assert!(state.version_exists());
    assert_eq!(state.departures, 1);
}

#[test]
fn every_departure_is_a_new_event_even_of_the_same_account() {
    let earlier = AdminLeft {
        account_id: AccountId::new(uuid(2)),
        exit: AdminExit::Deactivated,
        at: t(0),
    };
    let state = given::<AdminGuard>([earlier.into()])
        .when(leave(2, AdminExit::Erased))
        .then_events(vec![AdminLeft {
            account_id: AccountId::new(uuid(2)),
            exit: AdminExit::Erased,
            at: t(2),
        }
        .into()]);
    assert_eq!(state.departures, 2);
}

#[test]
fn a_guard_nobody_left_through_does_not_exist_yet() {
    assert!(!AdminGuard::default().version_exists());
}
