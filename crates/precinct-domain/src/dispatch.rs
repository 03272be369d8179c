//! Automatic assignment policy: which patrol a report is dispatched to.
//!
//! Among the `AVAILABLE` patrols of the report's station, candidates are ranked by
//! lowest open workload, then fewest declines, then least recently assigned (never
//! assigned first), then nearest to the report (unknown location last), then patrol
//! id. The ranking is a total order on the candidates' contents, so the same inputs in
//! any order give the same decision. The decision explains itself: every ranked
//! candidate says which criterion put it ahead of the next one, every excluded patrol
//! says why it was left out.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{PatrolId, StationId};
use crate::values::{GeoPoint, PatrolStatus};

/// What dispatch needs to know about one patrol (from the workload read model).
#[derive(Clone, Debug, PartialEq)]
pub struct PatrolSnapshot {
    pub patrol_id: PatrolId,
    pub station_id: StationId,
    pub status: PatrolStatus,
    /// Reports currently `ASSIGNED`, `ACCEPTED` or `RESPONDING` to this patrol.
    pub open_assignments: u32,
    pub declines: u32,
    pub last_assigned_at: Option<DateTime<Utc>>,
    /// Last known position, if any.
    pub location: Option<GeoPoint>,
}

/// One eligible patrol in rank order (1 = chosen).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankedCandidate {
    pub patrol_id: PatrolId,
    pub rank: u32,
    pub open_assignments: u32,
    pub declines: u32,
    pub last_assigned_at: Option<DateTime<Utc>>,
    pub distance_m: Option<f64>,
    /// Which criterion separated this candidate from the next one.
    pub reason: String,
}

/// A patrol that was not eligible, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedCandidate {
    pub patrol_id: PatrolId,
    pub reason: String,
}

/// The automatic-assignment decision, recorded in `ReportAssigned.auto`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssignmentDecision {
    pub patrol_id: PatrolId,
    /// Eligible patrols, best first.
    pub candidates: Vec<RankedCandidate>,
    /// Ineligible patrols, by patrol id.
    pub excluded: Vec<ExcludedCandidate>,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("no AVAILABLE patrol at station {station_id}")]
pub struct NoPatrolAvailable {
    pub station_id: StationId,
    pub excluded: Vec<ExcludedCandidate>,
}

/// Picks the patrol for a report of `report_station` at `report_location`.
pub fn choose_patrol(
    report_station: StationId,
    report_location: GeoPoint,
    candidates: &[PatrolSnapshot],
) -> Result<AssignmentDecision, NoPatrolAvailable> {
    let mut excluded = Vec::new();
    let mut eligible = Vec::new();
    for patrol in candidates {
        if patrol.station_id != report_station {
            excluded.push(ExcludedCandidate {
                patrol_id: patrol.patrol_id,
                reason: format!("belongs to another station ({})", patrol.station_id),
            });
        } else if patrol.status != PatrolStatus::Available {
            excluded.push(ExcludedCandidate {
                patrol_id: patrol.patrol_id,
                reason: format!("status is {}", patrol.status),
            });
        } else {
            eligible.push(Scored {
                patrol,
                distance_m: patrol.location.map(|at| at.distance_m(&report_location)),
            });
        }
    }
    excluded.sort_by(|a, b| a.patrol_id.cmp(&b.patrol_id).then(a.reason.cmp(&b.reason)));
    excluded.dedup();

    eligible.sort_by(Scored::cmp);
    // A patrol listed twice keeps its better entry (the order above is content-only).
    let mut seen = std::collections::BTreeSet::new();
    eligible.retain(|s| seen.insert(s.patrol.patrol_id));

    let Some(first) = eligible.first() else {
        return Err(NoPatrolAvailable {
            station_id: report_station,
            excluded,
        });
    };
    let patrol_id = first.patrol.patrol_id;
    let ranked = eligible
        .iter()
        .enumerate()
        .map(|(i, s)| RankedCandidate {
            patrol_id: s.patrol.patrol_id,
            rank: u32::try_from(i + 1).unwrap_or(u32::MAX),
            open_assignments: s.patrol.open_assignments,
            declines: s.patrol.declines,
            last_assigned_at: s.patrol.last_assigned_at,
            distance_m: s.distance_m,
            reason: match eligible.get(i + 1) {
                Some(next) => s.why_ahead_of(next),
                None if i == 0 => "only eligible patrol".to_owned(),
                None => "last eligible patrol".to_owned(),
            },
        })
        .collect();
    Ok(AssignmentDecision {
        patrol_id,
        candidates: ranked,
        excluded,
    })
}

struct Scored<'a> {
    patrol: &'a PatrolSnapshot,
    distance_m: Option<f64>,
}

impl Scored<'_> {
    /// `Less` = better candidate.
    fn cmp(a: &Self, b: &Self) -> Ordering {
        a.patrol
            .open_assignments
            .cmp(&b.patrol.open_assignments)
            .then(a.patrol.declines.cmp(&b.patrol.declines))
            .then(cmp_last_assigned(
                a.patrol.last_assigned_at,
                b.patrol.last_assigned_at,
            ))
            .then(cmp_distance(a.distance_m, b.distance_m))
            .then(a.patrol.patrol_id.cmp(&b.patrol.patrol_id))
    }

    fn why_ahead_of(&self, next: &Self) -> String {
        let (a, b) = (self.patrol, next.patrol);
        if a.open_assignments != b.open_assignments {
            return format!(
                "fewer open assignments than the next candidate ({} < {})",
                a.open_assignments, b.open_assignments
            );
        }
        if a.declines != b.declines {
            return format!(
                "fewer declines than the next candidate ({} < {})",
                a.declines, b.declines
            );
        }
        if a.last_assigned_at != b.last_assigned_at {
            let show = |t: Option<DateTime<Utc>>| t.map_or("never".to_owned(), |t| t.to_rfc3339());
            return format!(
                "assigned less recently than the next candidate ({} before {})",
                show(a.last_assigned_at),
                show(b.last_assigned_at)
            );
        }
        if cmp_distance(self.distance_m, next.distance_m) != Ordering::Equal {
            let show = |d: Option<f64>| d.map_or("unknown".to_owned(), |d| format!("{d:.0} m"));
            return format!(
                "nearer to the report than the next candidate ({} vs {})",
                show(self.distance_m),
                show(next.distance_m)
            );
        }
        "lower patrol id than the next candidate (tied on every other criterion)".to_owned()
    }
}

/// Never assigned comes first, then the oldest assignment.
fn cmp_last_assigned(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => a.cmp(&b),
    }
}

/// Known distances first, nearest first.
fn cmp_distance(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => a.total_cmp(&b),
    }
}
