//! [`Backoff`]: the one schedule of pauses between retries in the workspace, and
//! [`pause`], the one sleep that gives way to shutdown.
//!
//! Every loop that retries something that keeps failing for a while (a JetStream
//! subscription, a projector's transaction, a batch of the request log, a test's
//! `CREATE DATABASE`) pauses by a [`Backoff`]: steps that double from a first to a
//! largest pause (the exponential schedule of the `backon` crate), each pause drawn at
//! random from the upper half of its step. The randomness keeps processes that lost the
//! same server from coming back in lockstep; the upper half keeps every pause no longer
//! than the plain doubling schedule, so a retry is never later than it was before jitter.
//!
//! It is a crate of its own, below every crate that retries (eventlog, readmodel, api,
//! projections, the binary, the tests), so that a crate that must not know JetStream
//! (the read models) or PostgreSQL (the event log) shares it all the same. It is not a
//! retry *policy* (what to retry, how often): each loop decides that; this only says how
//! long to wait.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

/// Pauses between retries: doubling steps from `first` to `max`, each pause at random
/// in `[step / 2, step)`. Unlimited unless [`Backoff::attempts`] says otherwise; a pause
/// ends early when the [`Backoff::until`] token is cancelled.
#[derive(Debug)]
pub struct Backoff {
    schedule: ExponentialBuilder,
    steps: ExponentialBackoff,
    shutdown: Option<CancellationToken>,
}

impl Backoff {
    /// Pauses that double from `first` up to `max` (each drawn from the upper half of
    /// its step), without end.
    pub fn new(first: Duration, max: Duration) -> Self {
        // `backon` adds a random share (0 to 100 %) of the delay to the delay: halving
        // both ends makes each pause fall in the upper half of the step we mean.
        let first = first.min(max);
        let schedule = ExponentialBuilder::new()
            .with_min_delay(first / 2)
            .with_max_delay(max / 2)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Self {
            schedule,
            steps: schedule.build(),
            shutdown: None,
        }
    }

    /// At most `n` pauses: then [`Backoff::pause`] answers `false` at once and
    /// [`Backoff::retry`] gives up with the last error.
    pub fn attempts(mut self, n: usize) -> Self {
        self.schedule = self.schedule.with_max_times(n);
        self.steps = self.schedule.build();
        self
    }

    /// Pauses end early, with `false`, when `shutdown` is cancelled.
    pub fn until(mut self, shutdown: &CancellationToken) -> Self {
        self.shutdown = Some(shutdown.clone());
        self
    }

    /// Back to the first step (after a success).
    pub fn reset(&mut self) {
        self.steps = self.schedule.build();
    }

    /// The next pause, without sleeping it; `None` once the attempts are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.steps.next()
    }

    /// Sleeps the next pause. `false`: shutdown came first, or the attempts are used up
    /// (the caller stops retrying).
    pub async fn pause(&mut self) -> bool {
        let Some(d) = self.next_delay() else {
            return false;
        };
        match &self.shutdown {
            Some(shutdown) => pause(shutdown, d).await,
            None => {
                tokio::time::sleep(d).await;
                true
            }
        }
    }

    /// Sleeps the next pause, cut short at `deadline` (polling until then). `false`:
    /// the deadline has passed or the attempts are used up; nothing was slept.
    pub async fn pause_until(&mut self, deadline: tokio::time::Instant) -> bool {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        let Some(d) = self.next_delay() else {
            return false;
        };
        tokio::time::sleep(d.min(left)).await;
        true
    }

    /// Runs `attempt` until it succeeds, telling `failed` about each failure and pausing
    /// after it. The last error when shutdown came first or the attempts ran out.
    pub async fn retry<T, E, Fut>(
        &mut self,
        mut attempt: impl FnMut() -> Fut,
        mut failed: impl FnMut(&E),
    ) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(e) => {
                    failed(&e);
                    if !self.pause().await {
                        return Err(e);
                    }
                }
            }
        }
    }
}

/// Sleeps `d`, or less if `shutdown` comes first. `false`: shutdown came first (also
/// when it already had).
pub async fn pause(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// The steps a plain doubling schedule would pause for.
    fn steps(first: Duration, max: Duration, n: usize) -> Vec<Duration> {
        std::iter::successors(Some(first), |d| Some((*d * 2).min(max)))
            .take(n)
            .collect()
    }

    #[test]
    fn pauses_double_up_to_the_largest_and_fall_in_the_upper_half_of_each_step() {
        for _ in 0..50 {
            let mut b = Backoff::new(100 * MS, 5000 * MS);
            for step in steps(100 * MS, 5000 * MS, 12) {
                let d = b.next_delay().expect("unlimited");
                assert!(
                    d >= step / 2 && d < step,
                    "{d:?} not in the upper half of {step:?}"
                );
            }
        }
    }

    #[test]
    fn pauses_are_not_all_alike() {
        let firsts: std::collections::HashSet<Duration> = (0..20)
            .filter_map(|_| Backoff::new(1000 * MS, 5000 * MS).next_delay())
            .collect();
        assert!(firsts.len() > 1, "jitter: {firsts:?}");
    }

    #[test]
    fn a_reset_starts_again_from_the_first_step() {
        let mut b = Backoff::new(100 * MS, 5000 * MS);
        for _ in 0..8 {
            b.next_delay();
        }
        assert!(b.next_delay().expect("unlimited") >= 2500 * MS);
        b.reset();
        assert!(b.next_delay().expect("unlimited") < 100 * MS);
    }

    #[test]
    fn attempts_bound_the_pauses() {
        let mut b = Backoff::new(MS, MS).attempts(3);
        assert_eq!((0..5).filter_map(|_| b.next_delay()).count(), 3);
        b.reset();
        assert!(b.next_delay().is_some(), "a reset gives the attempts back");
    }

    #[tokio::test]
    async fn shutdown_cuts_a_pause_short() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let started = std::time::Instant::now();
        let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(60)).until(&shutdown);
        assert!(!b.pause().await);
        assert!(!pause(&shutdown, Duration::from_secs(60)).await);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(pause(&CancellationToken::new(), MS).await);
    }

    #[tokio::test]
    async fn a_pause_until_a_deadline_ends_at_it() {
        let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
        let started = tokio::time::Instant::now();
        assert!(b.pause_until(started + 20 * MS).await, "it slept");
        let slept = started.elapsed();
        assert!(
            slept >= 20 * MS && slept < Duration::from_secs(5),
            "{slept:?}"
        );
        assert!(!b.pause_until(started).await, "past the deadline: no pause");
    }

    #[tokio::test]
    async fn retry_returns_the_first_success_or_the_last_error() {
        let mut calls = 0;
        let mut failures = 0;
        let got: Result<u32, String> = Backoff::new(MS, 2 * MS)
            .retry(
                || {
                    calls += 1;
                    let n = calls;
                    async move {
                        if n < 3 {
                            Err(format!("failure {n}"))
                        } else {
                            Ok(n)
                        }
                    }
                },
                |_| failures += 1,
            )
            .await;
        assert_eq!(got, Ok(3));
        assert_eq!(failures, 2);
        let mut calls = 0;
        let gave_up: Result<(), String> = Backoff::new(MS, MS)
            .attempts(2)
            .retry(
                || {
                    calls += 1;
                    let n = calls;
                    async move { Err(format!("failure {n}")) }
                },
                |_| {},
            )
            .await;
        assert_eq!(
            gave_up,
            Err("failure 3".to_string()),
            "two pauses, three tries"
        );
    }
}
