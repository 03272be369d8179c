//! The ids Precinct derives instead of drawing at random: the same inputs give the
//! same id (two SLA workers, or a repeated bootstrap, make one command), and different
//! inputs never share one.

use std::collections::HashSet;

use precinct_app::ids::{
    bootstrap_ids, sla_breach_command, sla_escalation_command, sla_warning_command,
};
use uuid::Uuid;

#[test]
fn sla_command_ids_are_one_per_report_kind_and_clock_and_differ_between_records() {
    let (r1, r2) = (Uuid::from_u128(1), Uuid::from_u128(2));
    // Given two workers deriving the id of one record, they agree;
    assert_eq!(
        sla_breach_command(r1, "ACCEPT", 1_000),
        sla_breach_command(r1, "ACCEPT", 1_000)
    );
    assert_eq!(
        sla_warning_command(r1, "ACCEPT", 1_000),
        sla_warning_command(r1, "ACCEPT", 1_000)
    );
    assert_eq!(
        sla_escalation_command(r1, 1_000),
        sla_escalation_command(r1, 1_000)
    );
    // another report, kind, clock or kind of record is another command.
    let ids = [
        sla_breach_command(r1, "ACCEPT", 1_000),
        sla_breach_command(r2, "ACCEPT", 1_000),
        sla_breach_command(r1, "RESPOND", 1_000),
        sla_breach_command(r1, "ACCEPT", 1_001),
        sla_warning_command(r1, "ACCEPT", 1_000),
        sla_warning_command(r2, "ACCEPT", 1_000),
        sla_warning_command(r1, "RESPOND", 1_000),
        sla_warning_command(r1, "ACCEPT", 1_001),
        sla_escalation_command(r1, 1_000),
        sla_escalation_command(r2, 1_000),
        sla_escalation_command(r1, 1_001),
    ];
    let distinct: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    assert!(!distinct.contains(&Uuid::nil()));
}

#[test]
fn the_admin_bootstrap_is_one_command_and_one_account_per_address() {
    let (a, b) = (Uuid::from_u128(10), Uuid::from_u128(11));
    let (command, account) = bootstrap_ids(a);
    assert_eq!(bootstrap_ids(a), (command, account), "a repeated bootstrap");
    assert_ne!(command, account);
    let (other_command, other_account) = bootstrap_ids(b);
    let all: HashSet<Uuid> = [command, account, other_command, other_account, Uuid::nil()]
        .into_iter()
        .collect();
    assert_eq!(all.len(), 5, "distinct and never nil");
}
