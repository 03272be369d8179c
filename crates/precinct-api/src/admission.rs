//! Admission of commands under overload (ADR 0021): at most `in_flight` write requests
//! (`POST`, `PUT`, `PATCH`, `DELETE`) are handled at once; one more waits up to
//! `queue_wait` for a place and is otherwise answered at once with 503, `Retry-After`
//! and problem+json — before it is authenticated, parsed or run, so a refused request
//! has done nothing and cost almost nothing.
//!
//! Why: past the rate the machine sustains, every extra request in flight only adds to
//! everyone's wait (the CPU is shared; group commit does not need more than a few dozen
//! commands to fill a batch). Without a bound, latency grows until clients time out —
//! and a timed-out command may still have been applied. With it, accepted requests keep
//! a bounded latency and the excess is told, early and plainly, to come back.
//!
//! Reads (`GET`, `HEAD`, `OPTIONS`) are not counted: they wait for no log append, the
//! SSE streams are long-lived, and the database pool already bounds them.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::problem::ApiError;
use crate::AppState;

/// Seconds a refused client is told to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 1;

/// How many commands run at once, and how long one more may wait for a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Write requests handled at once (default 64; at least 1).
    pub in_flight: usize,
    /// How long a request past the limit waits for a place before it is refused
    /// (default 50 ms; zero: refused at once).
    pub queue_wait: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            in_flight: 64,
            queue_wait: Duration::from_millis(50),
        }
    }
}

/// The process's admission limit of commands. Cheap to clone (one shared semaphore).
#[derive(Debug, Clone)]
pub struct Admission {
    places: Arc<Semaphore>,
    queue_wait: Duration,
}

/// A place held by one admitted request; given back (and the gauge lowered) when the
/// request ends, however it ends.
#[derive(Debug)]
pub struct Place {
    _permit: OwnedSemaphorePermit,
}

impl Drop for Place {
    fn drop(&mut self) {
        ::metrics::gauge!("precinct_commands_in_flight").decrement(1.0);
    }
}

impl Admission {
    pub fn new(config: AdmissionConfig) -> Self {
        Self {
            places: Arc::new(Semaphore::new(config.in_flight.max(1))),
            queue_wait: config.queue_wait,
        }
    }

    /// A place now, or within the queue wait; otherwise [`ApiError::Busy`].
    pub async fn admit(&self) -> Result<Place, ApiError> {
        let permit = match self.places.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) if self.queue_wait.is_zero() => None,
            Err(_) => tokio::time::timeout(self.queue_wait, self.places.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
        };
        match permit {
            Some(permit) => {
                ::metrics::gauge!("precinct_commands_in_flight").increment(1.0);
                Ok(Place { _permit: permit })
            }
            None => {
                ::metrics::counter!("precinct_commands_shed_total").increment(1);
                Err(ApiError::Busy {
                    retry_after_secs: RETRY_AFTER_SECS,
                })
            }
        }
    }
}

/// The middleware: write requests need a place; reads pass.
pub async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method().is_safe() {
        return next.run(req).await;
    }
    match state.admission.admit().await {
        Ok(place) => {
            let res = next.run(req).await;
            drop(place);
            res
        }
        Err(busy) => busy.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_limit_a_request_waits_then_is_refused_with_retry_after() {
        // Given one place, taken
        let admission = Admission::new(AdmissionConfig {
            in_flight: 1,
            queue_wait: Duration::from_millis(1),
        });
        let held = admission.admit().await.expect("the first is admitted");
        // When another asks
        let refused = admission.admit().await;
        // Then it is refused as busy, with a retry time
        match refused {
            Err(ApiError::Busy { retry_after_secs }) => {
                assert_eq!(retry_after_secs, RETRY_AFTER_SECS)
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        // And once the place is given back, the next is admitted
        drop(held);
        assert!(admission.admit().await.is_ok());
    }

    #[tokio::test]
    async fn a_waiting_request_gets_a_place_freed_within_the_queue_wait() {
        let admission = Admission::new(AdmissionConfig {
            in_flight: 1,
            queue_wait: Duration::from_secs(30),
        });
        let held = admission.admit().await.expect("admitted");
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit().await.map(|_| ()) })
        };
        drop(held);
        assert!(waiting.await.expect("joined").is_ok());
    }
}
