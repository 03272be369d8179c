//! Login throttling: after `max_failures` failed logins for one account or from one
//! client address, further attempts are refused (429) until the lock-out has passed.
//! Command budgets: a token bucket per account for every command ([`CommandLimits`]).
//!
//! Counters live in the process: behind several API replicas each keeps its own, so the
//! effective limit is per replica (see docs/adr/0004-auth.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    lockout: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

impl LoginThrottle {
    pub fn new(max_failures: u32, lockout: Duration) -> Self {
        Self {
            max_failures,
            lockout,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `keys` may try again, if any of them is locked.
    pub fn locked(&self, keys: &[String]) -> Option<u64> {
        let now = Instant::now();
        let entries = self.entries.lock().ok()?;
        keys.iter()
            .filter_map(|k| entries.get(k))
            .filter_map(|e| e.locked_until)
            .filter(|until| *until > now)
            .map(|until| (until - now).as_secs().max(1))
            .max()
    }

    pub fn failure(&self, keys: &[String]) {
        let now = Instant::now();
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() > 100_000 {
            // Bound memory: forget entries whose window and lock-out have passed.
            entries.retain(|_, e| {
                now.duration_since(e.first) < self.lockout
                    || e.locked_until.is_some_and(|u| u > now)
            });
        }
        for key in keys {
            let e = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                first: now,
                locked_until: None,
            });
            if now.duration_since(e.first) > self.lockout && e.locked_until.is_none_or(|u| u <= now)
            {
                *e = Entry {
                    failures: 0,
                    first: now,
                    locked_until: None,
                };
            }
            e.failures += 1;
            if e.failures >= self.max_failures {
                e.locked_until = Some(now + self.lockout);
            }
        }
    }

    pub fn success(&self, keys: &[String]) {
        if let Ok(mut entries) = self.entries.lock() {
            for key in keys {
                entries.remove(key);
            }
        }
    }
}

/// A fixed-window rate limit per key (e.g. anonymous reports per client address).
#[derive(Debug)]
pub struct RateLimit {
    max: u32,
    window: Duration,
    entries: Mutex<HashMap<String, (u32, Instant)>>,
}

impl RateLimit {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request for `key`: `Err(seconds)` to wait when over the limit.
    pub fn hit(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut entries) = self.entries.lock() else {
            return Ok(());
        };
        if entries.len() > 100_000 {
            entries.retain(|_, (_, start)| now.duration_since(*start) < self.window);
        }
        let e = entries.entry(key.to_string()).or_insert((0, now));
        if now.duration_since(e.1) >= self.window {
            *e = (0, now);
        }
        if e.0 >= self.max {
            return Err((self.window - now.duration_since(e.1)).as_secs().max(1));
        }
        e.0 += 1;
        Ok(())
    }
}

/// A command budget: up to `burst` commands at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandRate {
    pub burst: u32,
    pub per_minute: u32,
}

/// The command budget of each account, by role (ADR 0012). A person reporting crimes
/// sends a report and perhaps a few corrections; a dispatcher triaging a busy queue
/// sends a command every few seconds, in bursts. A script sends dozens a second: the
/// citizen budget refuses it after `burst`, the staff budget leaves room for any human
/// pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandRates {
    pub citizen: CommandRate,
    /// PATROL, DISPATCHER, SUPERVISOR, ADMIN.
    pub staff: CommandRate,
}

impl Default for CommandRates {
    fn default() -> Self {
        Self {
            citizen: CommandRate {
                burst: 10,
                per_minute: 6,
            },
            staff: CommandRate {
                burst: 60,
                per_minute: 120,
            },
        }
    }
}

/// A token bucket per account: each command takes a token; tokens come back steadily at
/// `per_minute`, up to `burst`.
#[derive(Debug)]
pub struct TokenBuckets {
    rate: CommandRate,
    buckets: Mutex<HashMap<uuid::Uuid, (f64, Instant)>>,
}

impl TokenBuckets {
    pub fn new(rate: CommandRate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`: `Err(seconds)` until the next one when there is none.
    pub fn take(&self, key: uuid::Uuid) -> Result<(), u64> {
        let now = Instant::now();
        let burst = f64::from(self.rate.burst.max(1));
        let per_sec = f64::from(self.rate.per_minute) / 60.0;
        let refilled = |tokens: f64, at: Instant| {
            (tokens + now.duration_since(at).as_secs_f64() * per_sec).min(burst)
        };
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() > 100_000 {
            // Bound memory: a full bucket is the same as none.
            buckets.retain(|_, (tokens, at)| refilled(*tokens, *at) < burst);
        }
        let (tokens, at) = buckets.entry(key).or_insert((burst, now));
        let available = refilled(*tokens, *at);
        *at = now;
        if available >= 1.0 {
            *tokens = available - 1.0;
            return Ok(());
        }
        *tokens = available;
        let wait = if per_sec > 0.0 {
            ((1.0 - available) / per_sec).ceil()
        } else {
            60.0
        };
        // `wait` is a small positive number of seconds (at most a minute per token).
        Err((wait as u64).max(1))
    }
}

/// The command budgets of every account in this process (ADR 0012).
#[derive(Debug)]
pub struct CommandLimits {
    citizen: TokenBuckets,
    staff: TokenBuckets,
}

impl CommandLimits {
    pub fn new(rates: CommandRates) -> Self {
        Self {
            citizen: TokenBuckets::new(rates.citizen),
            staff: TokenBuckets::new(rates.staff),
        }
    }

    /// Counts one command of `caller`: 429 with the seconds to wait when over budget.
    pub fn take(&self, caller: &crate::auth::Caller) -> Result<(), crate::problem::ApiError> {
        let buckets = if caller.role.is_staff() {
            &self.staff
        } else {
            &self.citizen
        };
        buckets
            .take(caller.id.as_uuid())
            .map_err(
                |retry_after_secs| crate::problem::ApiError::TooManyRequests { retry_after_secs },
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_the_wait_for_the_next_token() {
        let b = TokenBuckets::new(CommandRate {
            burst: 3,
            per_minute: 6,
        });
        let me = uuid::Uuid::from_u128(1);
        for _ in 0..3 {
            assert_eq!(b.take(me), Ok(()));
        }
        assert_eq!(b.take(me), Err(10), "one token every 10 s");
        assert_eq!(
            b.take(uuid::Uuid::from_u128(2)),
            Ok(()),
            "buckets are per key"
        );
    }

    #[test]
    fn a_bucket_without_refill_asks_for_a_minute() {
        let b = TokenBuckets::new(CommandRate {
            burst: 1,
            per_minute: 0,
        });
        let me = uuid::Uuid::from_u128(1);
        assert_eq!(b.take(me), Ok(()));
        assert_eq!(b.take(me), Err(60));
    }
}
