//! Login throttling: after `max_failures` failed logins for one account or from one
//! client address, further attempts are refused (429) until the lock-out has passed.
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
