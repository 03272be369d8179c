//! Turns on a stream within one process: commands about the same aggregate decide and
//! append one after the other, in arrival order, instead of all reading the same version,
//! all appending, and all but one failing the expected-version check.
//!
//! This is an optimisation, not the guarantee: expected versions still decide who wins
//! (another process, or a command that waited too long for its turn, may always append
//! concurrently), so correctness never depends on a turn being held. It is what lets 50
//! concurrent notes on one report land in about 50 appends' time rather than in a storm
//! of reruns (ADR 0012).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use precinct_eventlog::StreamId;
use uuid::Uuid;

/// The turns of every stream some command of this process is working on.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    slots: Mutex<HashMap<StreamId, Arc<Slot>>>,
}

#[derive(Debug, Default)]
struct Slot {
    turn: Arc<tokio::sync::Mutex<()>>,
    /// The command holding the turn.
    holder: Mutex<Option<Uuid>>,
}

/// A held turn; the next command of the stream gets it when this is dropped.
pub(crate) struct Turn {
    turns: Arc<Turns>,
    stream: StreamId,
    slot: Arc<Slot>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("stream", &self.stream)
            .finish()
    }
}

impl Turns {
    /// Waits (at most `patience`) for `command`'s turn on `stream`. None: no turn was
    /// taken — another attempt of the same command holds it (two attempts of one command
    /// need no exclusion: the command id makes them one), or the wait ran out (the
    /// command then goes ahead on expected versions alone).
    pub(crate) async fn take(
        self: &Arc<Self>,
        stream: &StreamId,
        command: Uuid,
        patience: Duration,
    ) -> Option<Turn> {
        let slot = {
            let mut slots = self.slots.lock().ok()?;
            slots.entry(stream.clone()).or_default().clone()
        };
        if slot.holder.lock().ok().is_some_and(|h| *h == Some(command)) {
            return None;
        }
        let guard = tokio::time::timeout(patience, slot.turn.clone().lock_owned())
            .await
            .ok()?;
        if let Ok(mut holder) = slot.holder.lock() {
            *holder = Some(command);
        }
        Some(Turn {
            turns: self.clone(),
            stream: stream.clone(),
            slot,
            _guard: guard,
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Ok(mut holder) = self.slot.holder.lock() {
            *holder = None;
        }
        // Forget the stream when nobody else waits for it: clones of a slot are made
        // under the map's lock only, so two references (the map's and this one) mean
        // no other command has it.
        if let Ok(mut slots) = self.turns.slots.lock() {
            if Arc::strong_count(&self.slot) == 2 {
                slots.remove(&self.stream);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> StreamId {
        StreamId::new("report", Uuid::nil())
    }

    #[tokio::test]
    async fn commands_take_turns_in_order_and_the_map_is_emptied() {
        let turns = Arc::new(Turns::default());
        let first = turns
            .take(&stream(), Uuid::from_u128(1), Duration::from_secs(1))
            .await
            .expect("the first command gets the turn");
        let waiting = {
            let turns = turns.clone();
            tokio::spawn(async move {
                turns
                    .take(&stream(), Uuid::from_u128(2), Duration::from_secs(5))
                    .await
                    .is_some()
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the second command waits");
        drop(first);
        assert!(waiting.await.expect("task"), "then gets the turn");
        assert_eq!(
            turns.len(),
            0,
            "no slot is kept once every turn is returned"
        );
    }

    #[tokio::test]
    async fn a_stream_is_forgotten_only_when_nobody_waits_for_it() {
        let turns = Arc::new(Turns::default());
        // A lone command leaves nothing behind,
        let lone = turns
            .take(&stream(), Uuid::from_u128(1), Duration::from_secs(1))
            .await
            .expect("turn");
        assert!(format!("{lone:?}").contains("Turn"));
        drop(lone);
        assert_eq!(turns.len(), 0);
        // while a stream another command waits for is kept: the next one after it waits
        // for that command's turn, instead of starting a fresh slot of its own.
        let first = turns
            .take(&stream(), Uuid::from_u128(2), Duration::from_secs(1))
            .await
            .expect("turn");
        let (got_it, release) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(tokio::sync::Notify::new()),
        );
        let second = {
            let (turns, got_it, release) = (turns.clone(), got_it.clone(), release.clone());
            tokio::spawn(async move {
                let t = turns
                    .take(&stream(), Uuid::from_u128(3), Duration::from_secs(5))
                    .await;
                got_it.notify_one();
                // Held until the third command has tried.
                release.notified().await;
                t.is_some()
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        got_it.notified().await;
        let third = turns
            .take(&stream(), Uuid::from_u128(4), Duration::from_millis(50))
            .await;
        assert!(
            third.is_none(),
            "the third command got a turn while the second held it"
        );
        release.notify_one();
        assert!(second.await.expect("task"));
    }

    #[tokio::test]
    async fn another_attempt_of_the_holding_command_does_not_wait_for_itself() {
        let turns = Arc::new(Turns::default());
        let _held = turns
            .take(&stream(), Uuid::from_u128(1), Duration::from_secs(1))
            .await
            .expect("turn");
        let again = tokio::time::timeout(
            Duration::from_millis(200),
            turns.take(&stream(), Uuid::from_u128(1), Duration::from_secs(5)),
        )
        .await
        .expect("answers at once");
        assert!(again.is_none());
    }

    #[tokio::test]
    async fn a_command_that_waits_too_long_goes_ahead_without_a_turn() {
        let turns = Arc::new(Turns::default());
        let _held = turns
            .take(&stream(), Uuid::from_u128(1), Duration::from_secs(1))
            .await
            .expect("turn");
        let impatient = turns
            .take(&stream(), Uuid::from_u128(2), Duration::from_millis(20))
            .await;
        assert!(impatient.is_none());
    }
}
