//! The checker: after healing, reads the whole log and the read models and says what
//! the faults did to the commands' effects.
//!
//! - every acknowledged command is in the log exactly once (one append of its command
//!   id; found through the correlation id its client sent); none: *lost*, more: *duplicated*;
//! - an unknown command is in the log at most once (present or absent are both fine);
//! - a refused command left nothing;
//! - every report appears in exactly one `ReportSubmitted`;
//! - every SLA warning, breach and escalation is recorded once per report, kind and
//!   clock start (`since`), however many SLA workers raced for it; at least one breach
//!   and one escalation are in the log (else the race was not exercised), and every
//!   refused accept (only a crew's late one may be) is of a report the SLA workers
//!   escalated;
//! - commands other than the set-up were acknowledged, an accept and an approval among
//!   them (a campaign whose lifecycle commands all failed proves nothing);
//! - the read models have the effect: every acknowledged report has its row, every
//!   acknowledged approval left the report `CLOSED`;
//! - every projection's checkpoint equals the log head (waited for, bounded);
//! - the read models equal a rebuild from the log into another database, row for row,
//!   every column, in every event read-model table (`reports`, `patrols`, `stations`,
//!   `accounts`, `audit`). Nothing is excluded: no column of these tables is volatile
//!   (only `checkpoints.updated_at` is, and checkpoints are compared with the head
//!   instead). `request_log` is not compared: it is projected from the `REQUESTS`
//!   stream, not from the event log, and a rebuild leaves it alone;
//! - the live read models equal the reference the log makes ([`crate::reference`]: the
//!   domain's fold of each stream, column by column), so that every acknowledged
//!   command's effect — found once in the log above — is in `reports`, `patrols`,
//!   `accounts`, `stations` and `audit` as the write side decided it, whatever the
//!   command's kind. A projection that is wrong the same way live and in a rebuild
//!   (dropping an event kind, doubling one) is caught here, not by the rebuild.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use precinct_domain::report::ReportEvent;
use precinct_domain::values::SlaKind;
use precinct_domain::DomainEvent;
use precinct_eventlog::{EventLog, RecordedEvent};
use sqlx::PgPool;
use uuid::Uuid;

use super::workload::{Op, OpKind, Outcome};

/// The tables compared with a rebuild, with their primary keys.
pub const READ_MODELS: [(&str, &str); 10] = [
    ("reports", "id"),
    ("patrols", "id"),
    ("stations", "id"),
    ("crime_types", "code"),
    ("webhooks", "id"),
    ("accounts", "id"),
    ("audit", "position"),
    ("analytics_reports", "report_id"),
    ("analytics_assignments", "report_id, t.seq"),
    (
        "analytics_hourly",
        "station_id, t.hour, t.priority, t.status, t.crime_type_codes",
    ),
];

/// What the checker found.
#[derive(Debug, Default)]
pub struct Verdict {
    pub acknowledged: usize,
    pub refused: usize,
    pub unknown: usize,
    /// Unknown commands whose effect is in the log / is not.
    pub unknown_present: usize,
    pub unknown_absent: usize,
    pub lost: usize,
    pub duplicated: usize,
    /// Everything wrong, one line each (lost and duplicated ones included).
    pub violations: Vec<String>,
    pub log_events: usize,
    pub head: u64,
    /// Indefinite answers seen by the clients, by kind ("503", "timeout", …).
    pub indefinite: BTreeMap<String, usize>,
    /// Appends no client command accounts for (the server's own, e.g. the first ADMIN).
    pub unaccounted_appends: usize,
    /// Places where the live read models differ from the reference fold of the log
    /// (each also a violation, the first 20 spelled out).
    pub read_model_mismatches: usize,
    /// Acknowledged commands other than the set-up.
    pub lifecycle_acknowledged: usize,
    /// Acknowledged commands by kind (the workload's coverage).
    pub acknowledged_by_kind: BTreeMap<OpKind, usize>,
    /// `SlaWarned`, `SlaBreached` and `SlaEscalated` events in the log (the SLA
    /// workers' own appends).
    pub sla_warnings: usize,
    pub sla_breaches: usize,
    pub sla_escalations: usize,
    /// Late accepts refused because the escalation had withdrawn the assignment first.
    pub accepts_overtaken: usize,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.violations.is_empty()
    }
}

/// Reads the whole log (bounded in time).
pub async fn read_log(log: &EventLog) -> anyhow::Result<Vec<RecordedEvent>> {
    let all = async { log.read_all(1).await?.try_collect::<Vec<_>>().await };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .context("reading the log took over 120 s")?
        .context("read the log")
}

/// Waits (up to `bound`) until every event projection's checkpoint is the log head,
/// with nothing in quarantine (the workload writes no poison).
pub async fn wait_caught_up(pool: &PgPool, log: &EventLog, bound: Duration) -> Result<u64, String> {
    let deadline = Instant::now() + bound;
    loop {
        let last = match precinct_projections::status(pool, log).await {
            Ok(status) => {
                if status
                    .iter()
                    .all(|s| s.position == s.head && s.quarantined == 0)
                {
                    return Ok(status.first().map(|s| s.head).unwrap_or(0));
                }
                format!("{status:?}")
            }
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            return Err(format!(
                "projections not at the log head after {bound:?}: {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits (up to `bound`) until the log head stays the same for two seconds: nothing
/// is being appended any more (the server's own appends, SLA records, included).
pub async fn wait_quiet(log: &EventLog, bound: Duration) -> Result<u64, String> {
    let deadline = Instant::now() + bound;
    let mut last = None;
    let mut since = Instant::now();
    loop {
        let head = log.head().await.map_err(|e| e.to_string());
        match (&head, last) {
            (Ok(h), Some(l)) if *h == l => {
                if since.elapsed() >= Duration::from_secs(2) {
                    return Ok(l);
                }
            }
            (Ok(h), _) => {
                last = Some(*h);
                since = Instant::now();
            }
            (Err(_), _) => last = None,
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the log was still growing {bound:?} after the workload stopped: {head:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every read-model table as JSON rows ordered by primary key.
pub async fn dump(pool: &PgPool) -> anyhow::Result<BTreeMap<&'static str, Vec<serde_json::Value>>> {
    let mut out = BTreeMap::new();
    for (table, pk) in READ_MODELS {
        let rows: Vec<serde_json::Value> = sqlx::query_scalar(&format!(
            "SELECT to_jsonb(t) FROM {table} t ORDER BY t.{pk}"
        ))
        .fetch_all(pool)
        .await
        .with_context(|| format!("dump {table}"))?;
        out.insert(table, rows);
    }
    Ok(out)
}

/// Checks the ops against the log, the live read models and the rebuilt ones.
/// `events` must be read with the vault's opener (the reference fold needs the
/// personal fields in the clear).
pub async fn check(
    ops: &[Op],
    events: &[RecordedEvent],
    live: &PgPool,
    rebuilt: &PgPool,
) -> anyhow::Result<Verdict> {
    let rows: HashMap<Uuid, String> =
        sqlx::query_as::<_, (Uuid, String)>("SELECT id, status FROM reports")
            .fetch_all(live)
            .await?
            .into_iter()
            .collect();
    let mut v = check_log(ops, events, &rows);
    if v.sla_breaches == 0 {
        v.violations.push(
            "no SlaBreached in the log: the SLA workers recorded nothing, so their race was not exercised"
                .into(),
        );
    }
    if v.sla_escalations == 0 {
        v.violations.push(
            "no SlaEscalated in the log: no assignment was withdrawn by the SLA workers, so the escalation was not exercised"
                .into(),
        );
    }
    for kind in [OpKind::Accept, OpKind::Approve] {
        if v.acknowledged_by_kind.get(&kind).copied().unwrap_or(0) == 0 {
            v.violations.push(format!(
                "no {kind:?} was acknowledged: no report went through its lifecycle"
            ));
        }
    }
    let (a, b) = (dump(live).await?, dump(rebuilt).await?);
    for (table, _) in READ_MODELS {
        let (x, y) = (&a[table], &b[table]);
        if x != y {
            let first = x.iter().zip(y.iter()).find(|(p, q)| p != q);
            v.violations.push(format!(
                "{table}: live read model ({} rows) differs from the rebuild ({} rows); first difference: {first:?}",
                x.len(),
                y.len()
            ));
        }
    }
    let expected = crate::reference::reference(events).context("the reference fold")?;
    let diffs = crate::reference::differences(&expected, &crate::reference::actual(live).await?);
    v.read_model_mismatches = diffs.len();
    v.violations.extend(
        diffs
            .iter()
            .take(20)
            .map(|d| format!("read model differs from the reference fold of the log: {d}")),
    );
    if diffs.len() > 20 {
        v.violations.push(format!(
            "… and {} more differences from the reference fold",
            diffs.len() - 20
        ));
    }
    Ok(v)
}

/// The log part of [`check`]: `rows` is the `reports` read model (id → status).
pub fn check_log(ops: &[Op], events: &[RecordedEvent], rows: &HashMap<Uuid, String>) -> Verdict {
    let mut v = Verdict {
        log_events: events.len(),
        head: events.last().map(RecordedEvent::position).unwrap_or(0),
        ..Verdict::default()
    };
    // Appends per correlation id: the first event of each append carries the
    // command's size.
    let mut appends: HashMap<Uuid, Vec<(Uuid, u64)>> = HashMap::new();
    let mut submitted: HashMap<Uuid, usize> = HashMap::new();
    // SLA records per (report, event type, clock kind, clock start).
    let mut sla: BTreeMap<(Uuid, &str, SlaKind, DateTime<Utc>), usize> = BTreeMap::new();
    let mut escalated: HashSet<Uuid> = HashSet::new();
    for e in events {
        if e.envelope.command_size.is_some() {
            appends
                .entry(e.envelope.correlation_id)
                .or_default()
                .push((e.envelope.command_id, e.position()));
        }
        if e.envelope.event_type == "ReportSubmitted" {
            *submitted.entry(e.envelope.aggregate_id).or_default() += 1;
        }
        if let Some((record, clock, since)) = sla_record(e) {
            match record {
                "SlaWarned" => v.sla_warnings += 1,
                "SlaBreached" => v.sla_breaches += 1,
                "SlaEscalated" => {
                    v.sla_escalations += 1;
                    escalated.insert(e.envelope.aggregate_id);
                }
                _ => {}
            }
            *sla.entry((e.envelope.aggregate_id, record, clock, since))
                .or_default() += 1;
        }
    }
    for ((report, record, clock, since), n) in &sla {
        if *n > 1 {
            v.violations.push(format!(
                "{record} {clock:?} of report {report} (clock started {since}) recorded {n} times"
            ));
        }
    }

    for op in ops {
        for i in &op.indefinite {
            *v.indefinite.entry(i.clone()).or_default() += 1;
        }
        if let Some(a) = &op.anomaly {
            v.violations.push(format!(
                "{:?} {}: {a} (attempts {}, indefinite answers {:?}, done at {:.2} s); the report's log: {}",
                op.kind,
                op.correlation,
                op.attempts,
                op.indefinite,
                op.done_at.as_secs_f64(),
                story(events, op.report)
            ));
        }
        let found = appends
            .get(&op.correlation)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let what = || {
            format!(
                "{:?} (correlation {}, report {:?}, {} attempts)",
                op.kind, op.correlation, op.report, op.attempts
            )
        };
        let mut dup = found.len() > 1;
        let mut lost = false;
        match op.outcome {
            Outcome::Acknowledged => {
                v.acknowledged += 1;
                if op.kind != OpKind::Setup {
                    v.lifecycle_acknowledged += 1;
                }
                *v.acknowledged_by_kind.entry(op.kind).or_default() += 1;
                lost = found.is_empty();
                if op.kind == OpKind::RespondTooEarly {
                    v.violations
                        .push(format!("{} was acknowledged; it must be refused", what()));
                }
                if op.kind == OpKind::Submit {
                    match op.report.map(|r| submitted.get(&r).copied().unwrap_or(0)) {
                        None => v
                            .violations
                            .push(format!("{}: acknowledged without a report id", what())),
                        Some(0) => lost = true,
                        Some(1) => {}
                        Some(_) => dup = true,
                    }
                    if let Some(r) = op.report {
                        if !rows.contains_key(&r) {
                            lost = true;
                            v.violations
                                .push(format!("{}: no row in the reports read model", what()));
                        }
                    }
                }
                if op.kind == OpKind::Approve {
                    let status = op.report.and_then(|r| rows.get(&r));
                    if status.map(String::as_str) != Some("CLOSED") {
                        lost = true;
                        v.violations.push(format!(
                            "{}: the read model says {status:?}, not CLOSED",
                            what()
                        ));
                    }
                }
            }
            Outcome::Refused(status) => {
                v.refused += 1;
                if !found.is_empty() {
                    v.violations.push(format!(
                        "{} was refused ({status}) but appended {found:?}",
                        what()
                    ));
                }
                if op.kind == OpKind::Accept {
                    if op.report.is_some_and(|r| escalated.contains(&r)) {
                        v.accepts_overtaken += 1;
                    } else {
                        v.violations.push(format!(
                            "{} was refused ({status}) and the SLA workers never escalated its report",
                            what()
                        ));
                    }
                }
            }
            Outcome::Unknown => {
                v.unknown += 1;
                if found.is_empty() {
                    v.unknown_absent += 1;
                } else {
                    v.unknown_present += 1;
                }
            }
        }
        if lost {
            v.lost += 1;
            v.violations.push(format!("LOST {}", what()));
        }
        if dup {
            v.duplicated += 1;
            v.violations
                .push(format!("DUPLICATED {}: appends {found:?}", what()));
        }
    }
    if v.lifecycle_acknowledged == 0 {
        v.violations
            .push("no command but the set-up was acknowledged".into());
    }
    check_appends_whole(ops, events, &mut v);
    for (report, n) in &submitted {
        if *n > 1 {
            v.violations.push(format!(
                "report {report} was submitted {n} times in the log"
            ));
        }
    }

    v
}

/// The events of `report`'s stream, as `position type by actor`, for a violation's
/// reader (the campaign's databases and logs are gone when it fails).
fn story(events: &[RecordedEvent], report: Option<Uuid>) -> String {
    let Some(report) = report else {
        return "none".into();
    };
    let lines: Vec<String> = events
        .iter()
        .filter(|e| e.envelope.aggregate_id == report)
        .map(|e| {
            format!(
                "{} {} by {:?} at {}",
                e.position(),
                e.envelope.event_type,
                e.envelope.actor,
                e.envelope.occurred_at.format("%H:%M:%S%.3f")
            )
        })
        .collect();
    lines.join(", ")
}

/// An SLA record (`SlaWarned`, `SlaBreached`, `SlaEscalated`) as its type, the clock's
/// kind and the clock's start; None for any other event (or one that does not decode:
/// the reference fold reports those).
fn sla_record(e: &RecordedEvent) -> Option<(&'static str, SlaKind, DateTime<Utc>)> {
    if !e.envelope.event_type.starts_with("Sla") {
        return None;
    }
    match ReportEvent::from_parts(&e.envelope.event_type, e.data.clone()).ok()? {
        ReportEvent::SlaWarned(w) => Some(("SlaWarned", w.kind, w.since)),
        ReportEvent::SlaBreached(b) => Some(("SlaBreached", b.kind, b.since)),
        ReportEvent::SlaEscalated(x) => Some(("SlaEscalated", x.kind, x.since)),
        _ => None,
    }
}

/// Every event of every append is accounted for: the first event of an append carries
/// the command's size, and the next `size - 1` positions hold the rest of the same
/// command (same command and correlation ids) — a torn append, an event outside every
/// append (an orphan) or an append cut short is a violation. Appends whose correlation
/// id no client command carries (the server's own: the first ADMIN, SLA breaches) are
/// counted in `unaccounted_appends`.
fn check_appends_whole(ops: &[Op], events: &[RecordedEvent], v: &mut Verdict) {
    let known: std::collections::HashSet<Uuid> = ops.iter().map(|o| o.correlation).collect();
    let mut i = 0;
    while i < events.len() {
        let first = &events[i].envelope;
        let Some(size) = first.command_size else {
            v.violations.push(format!(
                "orphan event at position {} ({}): no append starts there",
                first.position, first.event_type
            ));
            i += 1;
            continue;
        };
        if !known.contains(&first.correlation_id) {
            v.unaccounted_appends += 1;
        }
        let size = size.max(1) as usize;
        for j in 1..size {
            match events.get(i + j) {
                Some(e)
                    if e.envelope.command_size.is_none()
                        && e.envelope.command_id == first.command_id
                        && e.envelope.correlation_id == first.correlation_id => {}
                Some(e) => {
                    v.violations.push(format!(
                        "torn append at position {}: event {} of {size} (position {}) belongs to another command",
                        first.position,
                        j + 1,
                        e.envelope.position
                    ));
                    break;
                }
                None => {
                    v.violations.push(format!(
                        "append at position {} is cut short: {j} of {size} events in the log",
                        first.position
                    ));
                    break;
                }
            }
        }
        i += size;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use precinct_eventlog::{Actor, Envelope, RecordedEvent};
    use uuid::Uuid;

    use super::check_log;
    use crate::chaos::workload::{Op, OpKind, Outcome};

    fn op(kind: OpKind, outcome: Outcome, report: Option<Uuid>) -> Op {
        Op {
            kind,
            correlation: Uuid::new_v4(),
            report,
            outcome,
            attempts: 1,
            indefinite: Vec::new(),
            anomaly: None,
            done_at: Duration::ZERO,
        }
    }

    /// One append of `op`'s command: `n` events, the first carrying the size.
    fn append(log: &mut Vec<RecordedEvent>, op: &Op, event_type: &str, n: u32) {
        let command_id = Uuid::new_v4();
        for i in 0..n {
            log.push(RecordedEvent {
                envelope: Envelope {
                    event_id: Uuid::new_v4(),
                    event_type: event_type.into(),
                    schema_version: 1,
                    aggregate_type: "report".into(),
                    aggregate_id: op.report.unwrap_or_default(),
                    position: log.len() as u64 + 1,
                    occurred_at: chrono::Utc::now(),
                    actor: Actor::System,
                    command_id,
                    correlation_id: op.correlation,
                    causation_id: None,
                    command_size: (i == 0).then_some(n),
                    request_hash: None,
                },
                data: serde_json::Value::Null,
            });
        }
    }

    #[test]
    fn counts_lost_duplicated_and_refused_with_effects() {
        let (r1, r2, r3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let once = op(OpKind::Submit, Outcome::Acknowledged, Some(r1));
        let twice = op(OpKind::Submit, Outcome::Acknowledged, Some(r2));
        let never = op(OpKind::Accept, Outcome::Acknowledged, Some(r1));
        let refused = op(OpKind::RespondTooEarly, Outcome::Refused(403), Some(r1));
        let unknown_in = op(OpKind::Submit, Outcome::Unknown, Some(r3));
        let unknown_out = op(OpKind::Note, Outcome::Unknown, Some(r1));
        let mut log = Vec::new();
        append(&mut log, &once, "ReportSubmitted", 1);
        append(&mut log, &twice, "ReportSubmitted", 1);
        append(&mut log, &twice, "ReportSubmitted", 1);
        append(&mut log, &refused, "ResponseStarted", 1);
        append(&mut log, &unknown_in, "ReportSubmitted", 1);
        let rows: HashMap<Uuid, String> = [(r1, "NEW".into()), (r2, "NEW".into())].into();
        let ops = [once, twice, never, refused, unknown_in, unknown_out];

        let v = check_log(&ops, &log, &rows);
        assert_eq!((v.acknowledged, v.refused, v.unknown), (3, 1, 2));
        assert_eq!((v.lost, v.duplicated), (1, 1));
        assert_eq!((v.unknown_present, v.unknown_absent), (1, 1));
        assert!(v
            .violations
            .iter()
            .any(|l| l.contains("was refused (403) but appended")));
        assert!(v.violations.iter().any(|l| l.contains("submitted 2 times")));
        assert!(!v.passed());
    }

    #[test]
    fn torn_cut_short_and_orphan_appends_are_violations() {
        let r = Uuid::new_v4();
        let a = op(OpKind::Accept, Outcome::Acknowledged, Some(r));
        let b = op(OpKind::Note, Outcome::Acknowledged, Some(r));
        // Whole: two events of one command, then one of another.
        let mut log = Vec::new();
        append(&mut log, &a, "AssignmentAccepted", 2);
        append(&mut log, &b, "NoteAdded", 1);
        let ops = [a.clone(), b.clone()];
        let whole = check_log(&ops, &log, &HashMap::new());
        assert!(whole.passed(), "{:?}", whole.violations);
        // Torn: the second event of `a` swapped for `b`'s.
        let mut torn = log.clone();
        torn.swap(1, 2);
        let v = check_log(&ops, &torn, &HashMap::new());
        assert!(
            v.violations
                .iter()
                .any(|l| l.starts_with("torn append at position 1")),
            "{:?}",
            v.violations
        );
        // Cut short: the last event of a two-event append missing.
        let mut short = Vec::new();
        append(&mut short, &b, "NoteAdded", 1);
        append(&mut short, &a, "AssignmentAccepted", 2);
        short.pop();
        let v = check_log(&ops, &short, &HashMap::new());
        assert!(
            v.violations.iter().any(|l| l.contains("cut short: 1 of 2")),
            "{:?}",
            v.violations
        );
        // An event no append covers, and an append no client made.
        let mut orphan = log.clone();
        orphan[2].envelope.command_size = None;
        let v = check_log(&ops, &orphan, &HashMap::new());
        assert!(
            v.violations
                .iter()
                .any(|l| l.starts_with("orphan event at position 3")),
            "{:?}",
            v.violations
        );
        let v = check_log(&[a], &log, &HashMap::new());
        assert_eq!(v.unaccounted_appends, 1);
    }

    #[test]
    fn an_sla_record_made_twice_for_one_clock_is_a_violation() {
        let r = Uuid::new_v4();
        let submit = op(OpKind::Submit, Outcome::Acknowledged, Some(r));
        let mut log = Vec::new();
        append(&mut log, &submit, "ReportSubmitted", 1);
        let since = "2026-11-30T10:00:00Z";
        let breach = |since: &str| {
            serde_json::json!({
                "kind": "ACCEPT",
                "patrol_id": Uuid::nil(),
                "since": since,
                "deadline": since,
                "at": since,
            })
        };
        // Given two SLA workers that each recorded the breach of one accept clock,
        for _ in 0..2 {
            let worker = op(OpKind::Setup, Outcome::Unknown, Some(r));
            append(&mut log, &worker, "SlaBreached", 1);
            let last = log.len() - 1;
            log[last].data = breach(since);
        }
        let rows: HashMap<Uuid, String> = [(r, "NEW".to_string())].into();
        let ops = v_ops(&log);
        let v = check_log(&ops, &log, &rows);
        assert_eq!(v.sla_breaches, 2);
        assert!(
            v.violations.iter().any(|l| l.starts_with(&format!(
                "SlaBreached Accept of report {r} (clock started 2026-11-30 10:00:00 UTC) recorded 2 times"
            ))),
            "{:?}",
            v.violations
        );
        // while the breach of a later clock (a new assignment) is its own record.
        log[2].data = breach("2026-11-30T10:05:00Z");
        let v = check_log(&ops, &log, &rows);
        assert!(v.passed(), "{:?}", v.violations);
    }

    #[test]
    fn a_refused_accept_is_a_violation_unless_the_sla_workers_escalated_its_report() {
        let r = Uuid::new_v4();
        let mut log = Vec::new();
        append(
            &mut log,
            &op(OpKind::Submit, Outcome::Acknowledged, Some(r)),
            "ReportSubmitted",
            1,
        );
        let rows: HashMap<Uuid, String> = [(r, "TRIAGED".to_string())].into();
        let mut ops = v_ops(&log);
        // Given a crew's late accept that was refused,
        // (403: the report has no patrol any more, so the officer is no member of it),
        ops.push(op(OpKind::Accept, Outcome::Refused(403), Some(r)));
        // when nothing withdrew the assignment, the refusal is unexplained;
        let v = check_log(&ops, &log, &rows);
        assert_eq!((v.sla_escalations, v.accepts_overtaken), (0, 0));
        assert!(
            v.violations
                .iter()
                .any(|l| l.contains("refused (403) and the SLA workers never escalated its report")),
            "{:?}",
            v.violations
        );
        // when the SLA workers escalated it first, the accept was overtaken.
        let worker = op(OpKind::Setup, Outcome::Unknown, Some(r));
        append(&mut log, &worker, "SlaEscalated", 2);
        log[1].data = serde_json::json!({
            "kind": "ACCEPT",
            "action": "REQUEUE",
            "patrol_id": Uuid::nil(),
            "since": "2026-11-30T10:00:00Z",
            "at": "2026-11-30T10:00:04Z",
        });
        log[2].envelope.event_type = "AssignmentWithdrawn".into();
        let v = check_log(&ops, &log, &rows);
        assert_eq!((v.sla_escalations, v.accepts_overtaken), (1, 1));
        assert!(v.passed(), "{:?}", v.violations);
    }

    #[test]
    fn an_acknowledged_report_missing_from_the_read_model_is_lost() {
        let r = Uuid::new_v4();
        let submit = op(OpKind::Submit, Outcome::Acknowledged, Some(r));
        let mut log = Vec::new();
        append(&mut log, &submit, "ReportSubmitted", 1);
        let v = check_log(&[submit], &log, &HashMap::new());
        assert_eq!((v.lost, v.duplicated), (1, 0));
        let v = check_log(&v_ops(&log), &log, &[(r, "NEW".to_string())].into());
        assert!(v.passed(), "{:?}", v.violations);
    }

    /// The acknowledged submission behind `log`'s only append.
    fn v_ops(log: &[RecordedEvent]) -> Vec<Op> {
        let mut o = op(
            OpKind::Submit,
            Outcome::Acknowledged,
            Some(log[0].envelope.aggregate_id),
        );
        o.correlation = log[0].envelope.correlation_id;
        vec![o]
    }
}
