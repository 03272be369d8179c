//! Reading the `checkpoints` table: one row per projector with the last position it
//! applied (written by `precinct-projections`, in the same transaction as the rows it
//! covers, and announced on [`NOTIFY_CHANNEL`] when that transaction commits).

use sqlx::PgPool;

use crate::EVENT_PROJECTIONS;

/// The notification channel on which every committed batch announces
/// `<projection>:<position>` (sent inside the batch's transaction, so only on commit).
pub const NOTIFY_CHANNEL: &str = "precinct_checkpoints";

/// One projector's checkpoint row. (The table's `failed_position` and `error` columns
/// are no longer written: a poison event is quarantined, it does not stop anything.)
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Checkpoint {
    pub projection: String,
    pub position: i64,
    /// Bumped whenever the projection's quarantine changes what it holds back.
    pub quarantine_version: i64,
}

impl Checkpoint {
    pub fn position(&self) -> u64 {
        to_u64(self.position)
    }
}

/// A stored position (`bigint`) as a log position; a negative one (never written) is 0.
pub fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A log position as stored (`bigint`).
pub fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Every checkpoint row.
pub async fn all(pool: &PgPool) -> Result<Vec<Checkpoint>, sqlx::Error> {
    sqlx::query_as(
        "SELECT projection, position, quarantine_version FROM checkpoints
         ORDER BY projection",
    )
    .fetch_all(pool)
    .await
}

/// The position projection `name` has applied (0: it never ran).
pub async fn position_of(pool: &PgPool, name: &str) -> Result<u64, sqlx::Error> {
    let at: Option<i64> =
        sqlx::query_scalar("SELECT position FROM checkpoints WHERE projection = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(at.map_or(0, to_u64))
}

/// The lowest checkpoint over every event projection (0 for one that never ran).
pub async fn min_position(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let names: Vec<String> = EVENT_PROJECTIONS.iter().map(|s| (*s).to_owned()).collect();
    let (count, min): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), min(position) FROM checkpoints WHERE projection = ANY($1)",
    )
    .bind(&names)
    .fetch_one(pool)
    .await?;
    if usize::try_from(count).unwrap_or(0) < EVENT_PROJECTIONS.len() {
        return Ok(0);
    }
    Ok(min.map_or(0, to_u64))
}
