//! Each account's last acknowledged command position, in this process: what the API
//! waits for before answering that account's next reads (read-your-own-writes by
//! default, ADR 0014).
//!
//! A memory, not a record: it is bounded ([`LastWrites::CAPACITY`] accounts; beyond
//! that an arbitrary entry is forgotten) and lost on restart. Forgetting an entry costs
//! only the wait it would have caused: the client's signed cookie and `X-Min-Position`
//! still carry the position across processes.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

#[derive(Debug, Default)]
pub struct LastWrites {
    positions: Mutex<HashMap<Uuid, u64>>,
}

impl LastWrites {
    /// Accounts remembered at once (~40 bytes each: a few MB at most).
    pub const CAPACITY: usize = 100_000;

    /// Remembers that `account`'s command reached `position` (keeps the highest).
    pub fn record(&self, account: Uuid, position: u64) {
        let mut positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        if positions.len() >= Self::CAPACITY && !positions.contains_key(&account) {
            if let Some(any) = positions.keys().next().copied() {
                positions.remove(&any);
            }
        }
        let last = positions.entry(account).or_insert(position);
        *last = (*last).max(position);
    }

    /// The position of `account`'s last command acknowledged by this process, if
    /// remembered.
    pub fn of(&self, account: Uuid) -> Option<u64> {
        self.positions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&account)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_highest_position_and_a_bounded_number_of_accounts() {
        let writes = LastWrites::default();
        let ana = Uuid::new_v4();
        writes.record(ana, 7);
        writes.record(ana, 5); // a slower request of hers answered later
        assert_eq!(writes.of(ana), Some(7));
        assert_eq!(writes.of(Uuid::new_v4()), None);
        for i in 0..(LastWrites::CAPACITY as u64 + 10) {
            writes.record(Uuid::from_u64_pair(1, i), i);
        }
        let held = writes.positions.lock().map(|p| p.len()).unwrap_or(0);
        assert_eq!(held, LastWrites::CAPACITY);
    }
}
