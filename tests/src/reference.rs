//! The reference read models: what `reports`, `patrols`, `accounts`, `stations` and
//! `audit` must hold for a given log, built in memory from the events alone — each
//! stream folded by the domain's own `Aggregate::apply` (code the projections do not
//! share: they are SQL written by hand), the audit trail from the envelopes — and the
//! same columns read from PostgreSQL, compared column by column.
//!
//! Used by the model-based test (`tests/e2e/model.rs`: random histories through the
//! real server) and by the fault campaign's checker ([`crate::chaos`]: the read models
//! after faults and healing). The log must be read with the vault's opener: the fold
//! needs the personal fields in the clear (an erased subject's are empty, as the
//! projections see them).
//!
//! Not compared: personal columns (sealed in the log; erasure is `privacy::*`'s),
//! `routing`, public updates, SLA breach times, transfers and reopens, the request log
//! and live positions (other streams).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use precinct_domain::account::Account;
use precinct_domain::patrol::Patrol;
use precinct_domain::report::{Report, Reporter};
use precinct_domain::station::Station;
use precinct_domain::Aggregate;
use precinct_eventlog::RecordedEvent;
use serde_json::{json, Value};
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// Rows by table, then by key; each row a map of column to value.
pub type Tables = BTreeMap<&'static str, BTreeMap<String, BTreeMap<&'static str, Value>>>;

/// A time in microseconds, marked as one: the log keeps nanoseconds and PostgreSQL
/// microseconds, truncated or rounded depending on the path a value takes (a bound
/// parameter or a cast from JSON), so [`compare`] accepts one microsecond apart.
fn micros(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| json!({ "micros": t.timestamp_micros() }))
}

fn same(a: &Value, b: &Value) -> bool {
    match (a["micros"].as_i64(), b["micros"].as_i64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1,
        _ => a == b,
    }
}

fn to_json(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The notes and evidence as lists of their ids and non-personal fields, in order.
fn notes_of(v: &Value) -> Value {
    let items = v.as_array().cloned().unwrap_or_default();
    Value::Array(
        items
            .iter()
            .map(|n| json!([n["note_id"], n["note"], n["author_id"]]))
            .collect(),
    )
}

fn evidence_of(v: &Value) -> Value {
    let items = v.as_array().cloned().unwrap_or_default();
    Value::Array(
        items
            .iter()
            .map(|e| json!([e["evidence_id"], e["url"], e["media_type"], e["author_id"]]))
            .collect(),
    )
}

/// The reference: each stream folded by the domain, the audit trail from envelopes.
pub fn reference(events: &[RecordedEvent]) -> anyhow::Result<Tables> {
    let mut streams: BTreeMap<(String, Uuid), Vec<RecordedEvent>> = BTreeMap::new();
    let mut tables = Tables::new();
    let audit = tables.entry("audit").or_default();
    for e in events {
        let env = &e.envelope;
        audit.insert(
            format!("{:020}", env.position),
            BTreeMap::from([
                ("action", json!(env.event_type)),
                ("target_id", json!(env.aggregate_id.to_string())),
                ("actor_id", to_json(env.actor.id())),
                ("actor_role", to_json(env.actor.role())),
                ("command_id", json!(env.command_id.to_string())),
                ("correlation_id", json!(env.correlation_id.to_string())),
                ("at", micros(Some(env.occurred_at))),
            ]),
        );
        streams
            .entry((env.aggregate_type.clone(), env.aggregate_id))
            .or_default()
            .push(e.clone());
    }
    for ((kind, id), stream) in &streams {
        let key = id.to_string();
        match kind.as_str() {
            "report" => {
                let r: Report = fold::<Report>(stream)?;
                let (reporter_id, anonymous) = match &r.reporter {
                    Some(Reporter::User { account_id }) => (to_json(account_id), false),
                    _ => (Value::Null, true),
                };
                tables.entry("reports").or_default().insert(
                    key,
                    BTreeMap::from([
                        ("status", to_json(r.status)),
                        ("station_id", to_json(r.station_id)),
                        ("priority", to_json(r.priority)),
                        ("title", json!(r.title)),
                        ("crime_types", json!(r.crime_types)),
                        ("reporter_id", reporter_id),
                        ("anonymous", json!(anonymous)),
                        ("patrol_id", to_json(r.patrol_id)),
                        ("assigned_at", micros(r.assigned_at)),
                        ("accepted_at", micros(r.accepted_at)),
                        ("responding_at", micros(r.responding_at)),
                        ("resolved_at", micros(r.resolved_at)),
                        ("declines", json!(r.declines)),
                        ("notes", notes_of(&to_json(&r.notes))),
                        ("evidence", evidence_of(&to_json(&r.evidence))),
                        ("updated_at", micros(Some(r.updated_at))),
                    ]),
                );
            }
            "patrol" => {
                let p: Patrol = fold::<Patrol>(stream)?;
                tables.entry("patrols").or_default().insert(
                    key,
                    BTreeMap::from([
                        ("call_sign", json!(p.call_sign)),
                        ("station_id", to_json(p.station_id)),
                        ("officer_ids", to_json(&p.officer_ids)),
                        ("status", to_json(p.status)),
                        ("open_assignments", json!(p.open_assignments.len())),
                        ("declines", json!(p.declines)),
                        ("last_assigned_at", micros(p.last_assigned_at)),
                    ]),
                );
            }
            "account" => {
                let a: Account = fold::<Account>(stream)?;
                tables.entry("accounts").or_default().insert(
                    key,
                    BTreeMap::from([
                        ("role", to_json(a.role)),
                        ("station_id", to_json(a.station_id)),
                        ("active", json!(a.active)),
                    ]),
                );
            }
            "station" => {
                let s: Station = fold::<Station>(stream)?;
                tables.entry("stations").or_default().insert(
                    key,
                    BTreeMap::from([
                        ("name", json!(s.name)),
                        ("kind", to_json(s.kind)),
                        ("crime_types", json!(s.crime_types)),
                    ]),
                );
            }
            _ => {}
        }
    }
    Ok(tables)
}

fn fold<A: Aggregate>(stream: &[RecordedEvent]) -> anyhow::Result<A> {
    let events = precinct_app::uow::decode::<A>(stream)
        .map_err(|e| anyhow::anyhow!("decode {}: {e}", A::TYPE))?;
    Ok(precinct_domain::fold(&events))
}

/// The same columns, read from PostgreSQL.
pub async fn actual(pool: &PgPool) -> anyhow::Result<Tables> {
    let mut tables = Tables::new();
    let uuid = |v: Option<Uuid>| v.map_or(Value::Null, |u| json!(u.to_string()));
    for row in sqlx::query("SELECT * FROM reports").fetch_all(pool).await? {
        let id: Uuid = row.try_get("id")?;
        tables.entry("reports").or_default().insert(
            id.to_string(),
            BTreeMap::from([
                ("status", json!(row.try_get::<String, _>("status")?)),
                ("station_id", uuid(row.try_get("station_id")?)),
                ("priority", json!(row.try_get::<String, _>("priority")?)),
                ("title", json!(row.try_get::<String, _>("title")?)),
                (
                    "crime_types",
                    json!(row.try_get::<Vec<String>, _>("crime_types")?),
                ),
                ("reporter_id", uuid(row.try_get("reporter_id")?)),
                ("anonymous", json!(row.try_get::<bool, _>("anonymous")?)),
                ("patrol_id", uuid(row.try_get("patrol_id")?)),
                ("assigned_at", micros(row.try_get("assigned_at")?)),
                ("accepted_at", micros(row.try_get("accepted_at")?)),
                ("responding_at", micros(row.try_get("responding_at")?)),
                ("resolved_at", micros(row.try_get("resolved_at")?)),
                ("declines", json!(row.try_get::<i32, _>("declines")?)),
                ("notes", notes_of(&row.try_get::<Value, _>("notes")?)),
                (
                    "evidence",
                    evidence_of(&row.try_get::<Value, _>("evidence")?),
                ),
                ("updated_at", micros(row.try_get("updated_at")?)),
            ]),
        );
    }
    for row in sqlx::query("SELECT * FROM patrols").fetch_all(pool).await? {
        let id: Uuid = row.try_get("id")?;
        let officers: Vec<Uuid> = row.try_get("officer_ids")?;
        tables.entry("patrols").or_default().insert(
            id.to_string(),
            BTreeMap::from([
                ("call_sign", json!(row.try_get::<String, _>("call_sign")?)),
                ("station_id", uuid(row.try_get("station_id")?)),
                ("officer_ids", to_json(officers)),
                ("status", json!(row.try_get::<String, _>("status")?)),
                (
                    "open_assignments",
                    json!(row.try_get::<i32, _>("open_assignments")?),
                ),
                ("declines", json!(row.try_get::<i32, _>("declines")?)),
                ("last_assigned_at", micros(row.try_get("last_assigned_at")?)),
            ]),
        );
    }
    for row in sqlx::query("SELECT * FROM accounts")
        .fetch_all(pool)
        .await?
    {
        let id: Uuid = row.try_get("id")?;
        tables.entry("accounts").or_default().insert(
            id.to_string(),
            BTreeMap::from([
                ("role", json!(row.try_get::<String, _>("role")?)),
                ("station_id", uuid(row.try_get("station_id")?)),
                ("active", json!(row.try_get::<bool, _>("active")?)),
            ]),
        );
    }
    for row in sqlx::query("SELECT * FROM stations")
        .fetch_all(pool)
        .await?
    {
        let id: Uuid = row.try_get("id")?;
        tables.entry("stations").or_default().insert(
            id.to_string(),
            BTreeMap::from([
                ("name", json!(row.try_get::<String, _>("name")?)),
                ("kind", json!(row.try_get::<String, _>("kind")?)),
                (
                    "crime_types",
                    json!(row.try_get::<Vec<String>, _>("crime_types")?),
                ),
            ]),
        );
    }
    for row in sqlx::query("SELECT * FROM audit").fetch_all(pool).await? {
        let position: i64 = row.try_get("position")?;
        let at: DateTime<Utc> = row.try_get("at")?;
        tables.entry("audit").or_default().insert(
            format!("{position:020}"),
            BTreeMap::from([
                ("action", json!(row.try_get::<String, _>("action")?)),
                ("target_id", uuid(Some(row.try_get("target_id")?))),
                ("actor_id", uuid(row.try_get("actor_id")?)),
                (
                    "actor_role",
                    to_json(row.try_get::<Option<String>, _>("actor_role")?),
                ),
                ("command_id", uuid(Some(row.try_get("command_id")?))),
                ("correlation_id", uuid(Some(row.try_get("correlation_id")?))),
                ("at", micros(Some(at))),
            ]),
        );
    }
    Ok(tables)
}

/// Every difference, table by table, row by row, column by column: a row missing, a
/// column that differs, a row no event made.
pub fn differences(expected: &Tables, actual: &Tables) -> Vec<String> {
    let mut diffs = Vec::new();
    let empty = BTreeMap::new();
    for table in ["reports", "patrols", "accounts", "stations", "audit"] {
        let want = expected.get(table).unwrap_or(&empty);
        let got = actual.get(table).unwrap_or(&empty);
        for (key, row) in want {
            match got.get(key) {
                None => diffs.push(format!("{table} {key}: missing")),
                Some(have) => {
                    for (column, value) in row {
                        let found = have.get(column).unwrap_or(&Value::Null);
                        if !same(found, value) {
                            diffs.push(format!(
                                "{table} {key} {column}: expected {value}, found {found}"
                            ));
                        }
                    }
                }
            }
        }
        for key in got.keys().filter(|k| !want.contains_key(*k)) {
            diffs.push(format!("{table} {key}: a row no event made"));
        }
    }
    diffs
}

/// [`differences`] as an error naming the first 20 (`what`: "live", "rebuilt").
pub fn compare(what: &str, expected: &Tables, actual: &Tables) -> anyhow::Result<()> {
    let mut diffs = differences(expected, actual);
    if diffs.is_empty() {
        return Ok(());
    }
    let n = diffs.len();
    diffs.truncate(20);
    anyhow::bail!(
        "{what} read models differ from the reference fold in {n} place(s):\n  {}",
        diffs.join("\n  ")
    )
}
