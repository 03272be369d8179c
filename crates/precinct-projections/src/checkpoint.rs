//! Writing the `checkpoints` table (its row type and reads are in
//! [`precinct_readmodel::checkpoint`]): one row per projector with the last position it
//! applied and the version of what it holds back in quarantine ([`crate::quarantine`]).
//!
//! Every batch transaction locks its row first (`FOR UPDATE`) and checks that the
//! position is still the one the worker started the batch from. A concurrent worker
//! for the same projection (a second process) or a [`crate::rebuild`] that reset the
//! row is thereby noticed, and the worker re-reads where to continue.

pub(crate) use precinct_readmodel::checkpoint::{to_i64, to_u64};
use precinct_readmodel::checkpoint::{Checkpoint, NOTIFY_CHANNEL};
use sqlx::{PgConnection, PgPool};

/// Reads a projector's row, creating it at position 0 if it does not exist.
pub async fn ensure(pool: &PgPool, projection: &str) -> Result<Checkpoint, sqlx::Error> {
    sqlx::query("INSERT INTO checkpoints (projection) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(projection)
        .execute(pool)
        .await?;
    sqlx::query_as(
        "SELECT projection, position, quarantine_version FROM checkpoints
         WHERE projection = $1",
    )
    .bind(projection)
    .fetch_one(pool)
    .await
}

/// Locks the row for the rest of the transaction; returns its position and quarantine
/// version. Every batch and every quarantine repair takes this lock first, so they
/// never interleave.
pub(crate) async fn lock(
    conn: &mut PgConnection,
    projection: &str,
) -> Result<(u64, i64), sqlx::Error> {
    let (position, version): (i64, i64) = sqlx::query_as(
        "SELECT position, quarantine_version FROM checkpoints WHERE projection = $1 FOR UPDATE",
    )
    .bind(projection)
    .fetch_one(&mut *conn)
    .await?;
    Ok((to_u64(position), version))
}

/// Bumps the (locked) row's quarantine version; returns the new one.
pub(crate) async fn bump_quarantine(
    conn: &mut PgConnection,
    projection: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE checkpoints SET quarantine_version = quarantine_version + 1
         WHERE projection = $1 RETURNING quarantine_version",
    )
    .bind(projection)
    .fetch_one(&mut *conn)
    .await
}

/// Moves the (locked) row to `position`, clears a failure recorded by an older version
/// and notifies listeners on commit.
pub(crate) async fn advance(
    conn: &mut PgConnection,
    projection: &str,
    position: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE checkpoints
         SET position = $2, updated_at = now(), failed_position = NULL, error = NULL
         WHERE projection = $1",
    )
    .bind(projection)
    .bind(to_i64(position))
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(format!("{projection}:{position}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Resets the rows of `projections` to position 0 with no failure (inside the caller's
/// transaction, next to the truncation of their tables).
pub(crate) async fn reset(
    conn: &mut PgConnection,
    projections: &[&str],
) -> Result<(), sqlx::Error> {
    let names: Vec<String> = projections.iter().map(|s| (*s).to_owned()).collect();
    sqlx::query(
        "INSERT INTO checkpoints (projection) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(&names)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE checkpoints
         SET position = 0, updated_at = now(), failed_position = NULL, error = NULL,
             quarantine_version = quarantine_version + 1
         WHERE projection = ANY($1)",
    )
    .bind(&names)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
