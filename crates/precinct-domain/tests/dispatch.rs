//! Automatic assignment: eligibility, every tie-break level, explanations and
//! independence from input order.

mod common;

use chrono::{DateTime, Utc};
use common::{t, uuid};
use precinct_domain::dispatch::*;
use precinct_domain::ids::{PatrolId, StationId};
use precinct_domain::values::*;

fn station() -> StationId {
    StationId::new(uuid(10))
}
fn pid(n: u128) -> PatrolId {
    PatrolId::new(uuid(n))
}
fn report_location() -> GeoPoint {
    GeoPoint::parse(7.0, 125.0).expect("valid")
}

/// An available patrol of the station, never assigned, location unknown.
fn patrol(n: u128) -> PatrolSnapshot {
    PatrolSnapshot {
        patrol_id: pid(n),
        station_id: station(),
        status: PatrolStatus::Available,
        open_assignments: 0,
        declines: 0,
        last_assigned_at: None,
        location: None,
    }
}
fn with(n: u128, edit: impl FnOnce(&mut PatrolSnapshot)) -> PatrolSnapshot {
    let mut p = patrol(n);
    edit(&mut p);
    p
}
fn near(km_north: f64) -> Option<GeoPoint> {
    Some(GeoPoint::parse(7.0 + km_north / 111.195, 125.0).expect("valid"))
}
fn last(minute: i64) -> Option<DateTime<Utc>> {
    Some(t(minute))
}

fn choose(candidates: &[PatrolSnapshot]) -> AssignmentDecision {
    choose_patrol(station(), report_location(), candidates).expect("a patrol is available")
}
fn order(decision: &AssignmentDecision) -> Vec<PatrolId> {
    decision.candidates.iter().map(|c| c.patrol_id).collect()
}

#[test]
fn lowest_open_workload_wins() {
    let decision = choose(&[
        with(1, |p| p.open_assignments = 2),
        with(2, |p| p.open_assignments = 1),
    ]);
    assert_eq!(decision.patrol_id, pid(2));
    assert_eq!(
        decision.candidates[0].reason,
        "fewer open assignments than the next candidate (1 < 2)"
    );
    assert_eq!(decision.candidates[1].reason, "last eligible patrol");
    assert_eq!(decision.candidates[0].rank, 1);
    assert_eq!(decision.candidates[1].rank, 2);
}

#[test]
fn then_fewest_declines() {
    let decision = choose(&[
        with(1, |p| p.declines = 3),
        with(2, |p| {
            p.declines = 1;
            p.last_assigned_at = last(50);
        }),
    ]);
    assert_eq!(decision.patrol_id, pid(2));
    assert_eq!(
        decision.candidates[0].reason,
        "fewer declines than the next candidate (1 < 3)"
    );
}

#[test]
fn then_least_recently_assigned_with_never_first() {
    let decision = choose(&[
        with(1, |p| p.last_assigned_at = last(30)),
        with(2, |p| p.last_assigned_at = last(10)),
        with(3, |p| p.location = near(50.0)),
    ]);
    assert_eq!(order(&decision), vec![pid(3), pid(2), pid(1)]);
    assert!(decision.candidates[0]
        .reason
        .starts_with("assigned less recently than the next candidate (never before"));
    assert!(decision.candidates[1]
        .reason
        .starts_with("assigned less recently than the next candidate (2025-03-01T08:10:00"));
}

#[test]
fn then_nearest_with_unknown_location_last() {
    let decision = choose(&[
        with(1, |p| p.location = None),
        with(2, |p| p.location = near(5.0)),
        with(3, |p| p.location = near(1.0)),
    ]);
    assert_eq!(order(&decision), vec![pid(3), pid(2), pid(1)]);
    assert_eq!(
        decision.candidates[0].reason,
        "nearer to the report than the next candidate (1000 m vs 5000 m)"
    );
    assert_eq!(
        decision.candidates[1].reason,
        "nearer to the report than the next candidate (5000 m vs unknown)"
    );
    let d = decision.candidates[0].distance_m.expect("known");
    assert!((d - 1000.0).abs() < 1.0, "{d}");
    assert_eq!(decision.candidates[2].distance_m, None);
}

#[test]
fn then_lowest_patrol_id() {
    let decision = choose(&[patrol(7), patrol(5), patrol(6)]);
    assert_eq!(order(&decision), vec![pid(5), pid(6), pid(7)]);
    assert_eq!(
        decision.candidates[0].reason,
        "lower patrol id than the next candidate (tied on every other criterion)"
    );
}

#[test]
fn a_single_candidate_is_the_only_eligible_patrol() {
    let decision = choose(&[patrol(1)]);
    assert_eq!(decision.candidates[0].reason, "only eligible patrol");
}

#[test]
fn only_available_patrols_of_the_station_are_eligible() {
    let decision = choose(&[
        with(1, |p| p.status = PatrolStatus::Busy),
        with(2, |p| p.status = PatrolStatus::OffDuty),
        with(3, |p| p.station_id = StationId::new(uuid(11))),
        with(4, |p| p.open_assignments = 5),
    ]);
    assert_eq!(decision.patrol_id, pid(4));
    assert_eq!(order(&decision), vec![pid(4)]);
    assert_eq!(
        decision.excluded,
        vec![
            ExcludedCandidate {
                patrol_id: pid(1),
                reason: "status is BUSY".into()
            },
            ExcludedCandidate {
                patrol_id: pid(2),
                reason: "status is OFF_DUTY".into()
            },
            ExcludedCandidate {
                patrol_id: pid(3),
                reason: format!("belongs to another station ({})", uuid(11)),
            },
        ]
    );
}

#[test]
fn no_eligible_patrol_is_an_error_that_lists_the_excluded() {
    let err = choose_patrol(
        station(),
        report_location(),
        &[with(1, |p| p.status = PatrolStatus::Busy)],
    )
    .expect_err("nobody available");
    assert_eq!(err.station_id, station());
    assert_eq!(err.excluded.len(), 1);
    assert_eq!(
        choose_patrol(station(), report_location(), &[]),
        Err(NoPatrolAvailable {
            station_id: station(),
            excluded: vec![]
        })
    );
}

/// Every permutation of `items`.
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.is_empty() {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first.clone());
            out.push(tail);
        }
    }
    out
}

#[test]
fn the_same_inputs_in_any_order_give_the_same_decision() {
    let candidates = vec![
        with(1, |p| p.open_assignments = 1),
        with(2, |p| p.declines = 1),
        with(3, |p| p.last_assigned_at = last(5)),
        with(4, |p| {
            p.last_assigned_at = last(5);
            p.location = near(2.0);
        }),
        patrol(5),
        patrol(6),
        with(7, |p| p.status = PatrolStatus::OffDuty),
    ];
    let expected = choose(&candidates);
    assert_eq!(
        order(&expected),
        vec![pid(5), pid(6), pid(4), pid(3), pid(2), pid(1)]
    );
    let all = permutations(&candidates);
    assert_eq!(all.len(), 5040);
    for shuffled in all {
        assert_eq!(choose(&shuffled), expected);
    }
}

#[test]
fn the_decision_serialises_with_its_documented_shape() {
    let decision = choose(&[patrol(1), with(2, |p| p.status = PatrolStatus::Busy)]);
    let json = serde_json::to_value(&decision).expect("serialises");
    assert_eq!(json["patrol_id"], pid(1).to_string());
    assert_eq!(json["candidates"][0]["rank"], 1);
    assert_eq!(
        json["candidates"][0]["last_assigned_at"],
        serde_json::Value::Null
    );
    assert_eq!(json["excluded"][0]["reason"], "status is BUSY");
}
