//! One active worker per name across processes (ADR 0006): a PostgreSQL session
//! advisory lock, held on a connection of its own for as long as the work runs; other
//! processes stand by and poll for it.
//!
//! The lock lives and dies with its session. When the session ends under the holder —
//! PostgreSQL restarted, the connection cut, the backend terminated — the lock is gone
//! and a standby may take it, so the holder must stop too: [`Leadership`] pings its
//! session every [`CHECK_INTERVAL`] and says when it is lost, and [`while_leading`]
//! then stops the work (its own cancellation token), waits for it to end, and stands by
//! again. Without that, a holder whose session ended kept working unlocked beside the
//! process that took the lock over — found by the fault campaign's projector takeover
//! check, which saw no process holding the locks after a PostgreSQL restart.
//!
//! Users: every projector and the roster (`crate::worker`, `crate::roster`), and the
//! webhook, push and mail deliverers (`crates/precinct/src/`).

use std::future::Future;
use std::time::Duration;

use precinct_retry as backoff;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often a standby asks whether it may lead, and how often a leader checks that
/// its lock's session is still there.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long a leader's check may take before the session counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// This process holds `name`'s lock. Dropping it closes the session, which releases the
/// lock.
#[derive(Debug)]
pub struct Leadership {
    lost: CancellationToken,
    watchdog: JoinHandle<()>,
}

impl Leadership {
    /// Holds the lock on `conn` (detached from its pool) and checks it from a task.
    fn hold(name: &str, mut conn: PgConnection) -> Self {
        let lost = CancellationToken::new();
        let (token, name) = (lost.clone(), name.to_string());
        let watchdog = tokio::spawn(async move {
            loop {
                tokio::time::sleep(CHECK_INTERVAL).await;
                match tokio::time::timeout(CHECK_TIMEOUT, conn.ping()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(name, error = %e, "lost the lock: its PostgreSQL session ended");
                        break;
                    }
                    Err(_) => {
                        tracing::warn!(
                            name,
                            "lost the lock: its PostgreSQL session does not answer"
                        );
                        break;
                    }
                }
            }
            token.cancel();
        });
        Self { lost, watchdog }
    }

    /// Resolves once the lock's session has ended (or stopped answering).
    pub async fn lost(&self) {
        self.lost.cancelled().await;
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // The task owns the session: aborting it drops the connection, and PostgreSQL
        // releases the lock when the session closes.
        self.watchdog.abort();
    }
}

/// Waits until this process holds `name`'s advisory lock (None: shutdown came first).
pub async fn lead(pool: &PgPool, name: &str, shutdown: &CancellationToken) -> Option<Leadership> {
    let mut waiting_logged = false;
    loop {
        if shutdown.is_cancelled() {
            return None;
        }
        if let Ok(mut conn) = pool.acquire().await {
            let got: Result<bool, _> = sqlx::query_scalar(
                "SELECT pg_try_advisory_lock(hashtext('precinct.projection.' || $1))",
            )
            .bind(name)
            .fetch_one(&mut *conn)
            .await;
            if let Ok(true) = got {
                // Only on the holder's session (not on every standby poll, not on
                // pooled connections): the server notices a holder gone without a word
                // (a partition, a host lost) within about 25 s instead of its default
                // TCP keepalive (hours). Ignored on a Unix socket.
                let _ = sqlx::query(
                    "SELECT set_config('tcp_keepalives_idle', '10', false), \
                            set_config('tcp_keepalives_interval', '5', false), \
                            set_config('tcp_keepalives_count', '3', false)",
                )
                .execute(&mut *conn)
                .await;
                tracing::info!(projection = name, "projector is the active one");
                // Detached: a pooled connection would keep holding the lock.
                return Some(Leadership::hold(name, conn.detach()));
            }
        }
        if !waiting_logged {
            tracing::info!(
                projection = name,
                "another process runs this projector; standing by"
            );
            waiting_logged = true;
        }
        if !backoff::pause(shutdown, CHECK_INTERVAL).await {
            return None;
        }
    }
}

/// Runs `work` while this process leads `name`, until it ends by itself (its answer) or
/// shutdown (None while standing by). When the lock is lost, `work`'s token is
/// cancelled, its end awaited, and the process stands by for the lock again; `work`
/// then starts afresh (so it must resume from durable state, as every user does).
pub async fn while_leading<T, F, Fut>(
    pool: &PgPool,
    name: &str,
    shutdown: &CancellationToken,
    mut work: F,
) -> Option<T>
where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = T>,
{
    loop {
        let leadership = lead(pool, name, shutdown).await?;
        let stop = shutdown.child_token();
        let body = work(stop.clone());
        tokio::pin!(body);
        tokio::select! {
            out = &mut body => return Some(out),
            () = leadership.lost() => {
                stop.cancel();
                let out = body.await;
                if shutdown.is_cancelled() {
                    return Some(out);
                }
                tracing::info!(projection = name, "stopped after losing the lock; standing by again");
            }
        }
    }
}
