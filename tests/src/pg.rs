//! The shared PostgreSQL server, and a fresh database per test.

use std::time::Duration;

use anyhow::Context;
use precinct_retry::Backoff;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool};

/// URL of the shared PostgreSQL server started by `make test` (a superuser).
pub fn shared_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database name replaced by `database` (query string kept).
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").context("database URL without scheme")? + 3;
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// Creates a uniquely named database on the shared server and returns a pool to it
/// and its URL. The database is left behind (cheap; names never repeat).
pub async fn fresh_database() -> anyhow::Result<(PgPool, String)> {
    let admin_url = shared_url();
    let name = format!("precinct_{}", crate::unique_prefix());
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .with_context(|| format!("connect to {admin_url} (run `make stack`)"))?;
    // Concurrent CREATE DATABASE from parallel tests can trip over the template's lock.
    let create = format!("CREATE DATABASE {name}");
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1)).attempts(20);
    while let Err(e) = admin.execute(create.as_str()).await {
        eprintln!("CREATE DATABASE failed: {e}");
        if !backoff.pause().await {
            return Err(e).context("CREATE DATABASE");
        }
    }
    let _ = admin.close().await;
    let url = with_database(&admin_url, &name)?;
    // A test's own checks: few at once (the server under test has a pool of its own).
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&url)
        .await
        .with_context(|| format!("connect to {url}"))?;
    Ok((pool, url))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        let u = |s| with_database(s, "x").expect("url");
        assert_eq!(
            u("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            u("postgres://h:1/db?sslmode=disable"),
            "postgres://h:1/x?sslmode=disable"
        );
        assert_eq!(u("postgres://h:1"), "postgres://h:1/x");
    }
}
