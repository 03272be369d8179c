//! The events of recently read streams, kept in memory *as stored* (personal fields
//! still sealed), so that reading a stream again asks JetStream only for what came after
//! them (ADR 0040).
//!
//! Why that is safe: the log denies deletes and purges, so what a stream held once it
//! holds for good, at the same positions. The cached events plus the ones a direct get
//! finds after them are therefore exactly what a full read returns at that moment — a
//! command decides on state as fresh as it would without the cache, and its append is
//! still checked against the version it read. Another process's appends are simply
//! "what came after". Because the events are kept sealed and opened on every read, an
//! erasure (the subject's key destroyed) takes effect on the next read as before.
//!
//! What it saves: the direct get of every event already read (JetStream sends one
//! message per event) and its decoding; the opening and the fold stay per read.
//!
//! Bounded by the number of events it holds (`LogConfig::stream_cache_events`), with
//! [`quick_cache`]'s eviction (S3-FIFO: streams read once leave first).

use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::envelope::{RecordedEvent, StreamId};

/// One stream's first events, in order, as stored.
pub(crate) type Prefix = Arc<Vec<Arc<RecordedEvent>>>;

/// Weighs a cached stream by its number of events.
#[derive(Clone)]
struct ByEvents;

impl Weighter<StreamId, Prefix> for ByEvents {
    fn weight(&self, _stream: &StreamId, events: &Prefix) -> u64 {
        u64::try_from(events.len()).unwrap_or(u64::MAX)
    }
}

/// Recently read streams' events (see the module).
pub(crate) struct StreamCache {
    streams: Cache<StreamId, Prefix, ByEvents>,
}

impl std::fmt::Debug for StreamCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamCache")
            .field("streams", &self.streams.len())
            .field("events", &self.streams.weight())
            .finish()
    }
}

impl StreamCache {
    /// A cache of at most about `max_events` events; `None` for 0 (no cache).
    pub fn new(max_events: usize) -> Option<Self> {
        let capacity = u64::try_from(max_events).unwrap_or(u64::MAX);
        (capacity > 0).then(|| Self {
            streams: Cache::with_weighter((max_events / 8).max(16), capacity, ByEvents),
        })
    }

    /// The first events of `stream` read before (none: not cached).
    pub fn get(&self, stream: &StreamId) -> Option<Prefix> {
        self.streams.get(stream)
    }

    /// `cached` (what [`get`](Self::get) gave) followed by `after` (the events read after
    /// it), kept for the next read if it holds anything and is longer than what another
    /// reader kept meanwhile.
    pub fn extend(
        &self,
        stream: &StreamId,
        cached: Option<Prefix>,
        after: Vec<RecordedEvent>,
    ) -> Prefix {
        let cached = cached.unwrap_or_default();
        if after.is_empty() {
            return cached;
        }
        let mut events = Vec::with_capacity(cached.len() + after.len());
        events.extend(cached.iter().cloned());
        events.extend(after.into_iter().map(Arc::new));
        let events = Arc::new(events);
        // Any prefix of the stream is correct; a longer one saves more. Two readers
        // racing may leave the shorter: the next read reads a little more.
        let longer = self
            .streams
            .get(stream)
            .is_none_or(|kept| kept.len() < events.len());
        if longer {
            self.streams.insert(stream.clone(), events.clone());
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Actor, Envelope};

    fn event(stream: &StreamId, position: u64) -> RecordedEvent {
        let command = uuid::Uuid::new_v4();
        RecordedEvent {
            envelope: Envelope {
                event_id: uuid::Uuid::new_v4(),
                event_type: "Noted".into(),
                schema_version: 1,
                aggregate_type: stream.aggregate_type.clone(),
                aggregate_id: stream.id,
                position,
                occurred_at: chrono::Utc::now(),
                actor: Actor::System,
                command_id: command,
                correlation_id: command,
                causation_id: None,
                command_size: Some(1),
                request_hash: None,
            },
            data: serde_json::json!({ "n": position }),
        }
    }

    fn positions(p: &Prefix) -> Vec<u64> {
        p.iter().map(|e| e.position()).collect()
    }

    #[test]
    fn a_stream_read_again_is_what_was_kept_and_what_came_after() {
        let cache = StreamCache::new(100).expect("a cache");
        let s = StreamId::new("report", uuid::Uuid::new_v4());
        assert!(cache.get(&s).is_none());
        let first = cache.extend(&s, None, vec![event(&s, 3), event(&s, 7)]);
        assert_eq!(positions(&first), [3, 7]);
        let kept = cache.get(&s).expect("kept");
        assert_eq!(positions(&kept), [3, 7]);
        let later = cache.extend(&s, Some(kept), vec![event(&s, 9)]);
        assert_eq!(positions(&later), [3, 7, 9]);
        assert_eq!(positions(&cache.get(&s).expect("kept")), [3, 7, 9]);
    }

    #[test]
    fn a_shorter_prefix_never_replaces_a_longer_one_and_nothing_empty_is_kept() {
        let cache = StreamCache::new(100).expect("a cache");
        let s = StreamId::new("patrol", uuid::Uuid::new_v4());
        let stale = cache.get(&s);
        cache.extend(&s, None, vec![event(&s, 1), event(&s, 2)]);
        // A reader that started before the first one finished, with less.
        let theirs = cache.extend(&s, stale, vec![event(&s, 1)]);
        assert_eq!(positions(&theirs), [1], "each reader gets what it read");
        assert_eq!(positions(&cache.get(&s).expect("kept")), [1, 2]);
        let empty = StreamId::new("patrol", uuid::Uuid::new_v4());
        assert!(cache.extend(&empty, None, Vec::new()).is_empty());
        assert!(
            cache.get(&empty).is_none(),
            "a stream with no events is not kept"
        );
    }

    #[test]
    fn the_cache_holds_about_its_capacity_in_events_and_zero_turns_it_off() {
        assert!(StreamCache::new(0).is_none());
        let cache = StreamCache::new(50).expect("a cache");
        for _ in 0..40 {
            let s = StreamId::new("report", uuid::Uuid::new_v4());
            cache.extend(&s, None, (1..=5).map(|p| event(&s, p)).collect());
        }
        assert!(cache.streams.weight() <= 50, "{cache:?}");
    }
}
