//! The `precinct serve` child process, fresh databases, and clean-up.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use precinct_tests::client::Call;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::process::{Child, Command};

/// A free loopback port (bound and released; the child binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").context("DATABASE_URL has no scheme")? + 3;
    let host_part = &base[scheme_end..];
    let host_end = host_part.find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

pub async fn pool(url: &str, max: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .with_context(|| format!("connect to PostgreSQL ({})", redact(url)))
}

/// The URL without a password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Creates database `name` next to `admin_url`'s and answers its URL.
pub async fn create_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let admin = pool(admin_url, 1).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .with_context(|| format!("CREATE DATABASE {name}"))?;
    admin.close().await;
    with_database(admin_url, name)
}

pub async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(admin) = pool(admin_url, 1).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await;
        admin.close().await;
    }
}

/// A running `precinct serve`.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub base: String,
    pub log: PathBuf,
}

impl Server {
    /// Starts `bin serve` (with `--roles roles` when given) with `env` on `addr`, logging
    /// to `log`, and waits (bounded) for `GET /health/ready` to answer 200.
    pub async fn start(
        bin: &Path,
        env: &[(String, String)],
        roles: Option<&str>,
        port: u16,
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        if !bin.exists() {
            bail!(
                "{} not found: build it with `cargo build --release -p precinct`",
                bin.display()
            );
        }
        let file = std::fs::File::create(&log)?;
        let mut command = Command::new(bin);
        command.arg("serve");
        if let Some(roles) = roles {
            command.args(["--roles", roles]);
        }
        let child = command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PRECINCT_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let pid = child.id().context("child has no pid")?;
        let mut server = Self {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let api = crate::load::api(&server.base);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!(
                    "precinct serve exited with {status} during start-up; see {}",
                    server.log.display()
                );
            }
            let ready = api.status(&Call::get("/health/ready"), None).await;
            if ready.is_ok_and(|s| s.is_success()) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                server.kill().await;
                bail!(
                    "precinct serve not ready within 90 s; see {}",
                    server.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGTERM, up to 15 s for a graceful stop, then SIGKILL.
    pub async fn kill(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let graceful = tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await;
        if graceful.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// Deletes the streams and key bucket of a bench prefix (and the scratch streams).
pub async fn delete_streams(nats_url: &str, names: &[String]) {
    precinct_eventlog::raw::delete_streams(nats_url, names).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b1").expect("url"),
            "postgres://postgres@127.0.0.1:5432/b1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/db?sslmode=disable", "b2").expect("url"),
            "postgres://u:p@h:1/b2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:1", "b3").expect("url"),
            "postgres://h:1/b3"
        );
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }
}
