//! Secondary indexes a rebuild builds after the replay instead of maintaining them row
//! by row (ADR 0041).
//!
//! [`defer`] records each secondary index of the given tables in `deferred_indexes` and
//! drops it, in the caller's transaction (the rebuild's `TRUNCATE`); [`restore`] builds
//! each recorded index again and deletes its record in one transaction per index. The
//! record and the schema change commit together, so whatever point a rebuild dies at,
//! every dropped index is either in place or recorded — and [`crate::migrate`] restores
//! the recorded ones before anything else runs.
//!
//! Kept in place: primary keys and unique indexes (the projections' `ON CONFLICT` needs
//! them), indexes behind any constraint, and the ones named in [`KEPT`] (a projection
//! looks rows up by them while it replays).

use sqlx::{PgConnection, PgPool};

/// Non-unique indexes a projection reads while it applies events, kept during a
/// rebuild: an erasure finds the subject's reports by `reporter_id`.
pub const KEPT: &[&str] = &["reports_reporter"];

/// Records and drops the secondary indexes of `tables` (in the current schema), except
/// those [`KEPT`]; answers their names. Run it inside the transaction that empties the
/// tables.
pub async fn defer(conn: &mut PgConnection, tables: &[&str]) -> Result<Vec<String>, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "INSERT INTO deferred_indexes (name, table_name, definition)
         SELECT c.relname::text, t.relname::text, pg_get_indexdef(i.indexrelid)
           FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_class t ON t.oid = i.indrelid
          WHERE t.relnamespace = current_schema()::regnamespace
            AND t.relname = ANY($1)
            AND NOT i.indisunique AND NOT i.indisprimary
            AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
            AND NOT (c.relname = ANY($2))
          ORDER BY t.relname, c.relname
         RETURNING name",
    )
    .bind(tables)
    .bind(KEPT)
    .fetch_all(&mut *conn)
    .await?;
    if !names.is_empty() {
        // PostgreSQL quotes the names (they come from pg_class, but all the same).
        let drop: String = sqlx::query_scalar(
            "SELECT 'DROP INDEX ' || string_agg(quote_ident(n), ', ') FROM unnest($1::text[]) n",
        )
        .bind(&names)
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query(&drop).execute(&mut *conn).await?;
    }
    Ok(names)
}

/// Builds every recorded index again (each in its own transaction, which also deletes
/// its record); answers how many it built. Safe to run from several processes at
/// once: a record is deleted before its index is built, so a second process waits on
/// the row and then finds it gone.
pub async fn restore(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let pending: Vec<String> =
        sqlx::query_scalar("SELECT name FROM deferred_indexes ORDER BY table_name, name")
            .fetch_all(pool)
            .await?;
    let mut built = 0;
    for name in pending {
        let mut tx = pool.begin().await?;
        let definition: Option<String> =
            sqlx::query_scalar("DELETE FROM deferred_indexes WHERE name = $1 RETURNING definition")
                .bind(&name)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(definition) = definition else {
            continue; // another process built it
        };
        // An index build sorts; give it room (the default 64 MB spills 1M rows to disk).
        sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
            .execute(&mut *tx)
            .await?;
        let exists: bool = sqlx::query_scalar("SELECT to_regclass(quote_ident($1)) IS NOT NULL")
            .bind(&name)
            .fetch_one(&mut *tx)
            .await?;
        if !exists {
            sqlx::query(&definition).execute(&mut *tx).await?;
            built += 1;
        }
        tx.commit().await?;
    }
    if built > 0 {
        tracing::info!(built, "deferred indexes built");
    }
    Ok(built)
}

/// Whether the `deferred_indexes` table exists yet (a database migrated before 0044).
pub(crate) async fn table_exists(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT to_regclass('deferred_indexes') IS NOT NULL")
        .fetch_one(pool)
        .await
}
