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
//! Bounded by the stored size of the events it holds (`LogConfig::stream_cache_bytes`;
//! parsed, they take more memory than that), with [`quick_cache`]'s eviction (S3-FIFO:
//! streams read once leave first), in [`SHARDS`] shards: a stream is kept only if it
//! fits in a shard's share.

use std::sync::Arc;

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{DefaultHashBuilder, OptionsBuilder, Weighter};

use crate::envelope::{RecordedEvent, StreamId};

/// The cache's shards. quick_cache defaults to four per core, and refuses an entry
/// heavier than its shard's share: on a large host a long stream would never be kept.
/// With four, a stream up to about a quarter of the capacity is.
pub(crate) const SHARDS: usize = 4;

/// One stream's first events, in order, as stored, and their stored size.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    pub events: Vec<Arc<RecordedEvent>>,
    pub bytes: u64,
}

pub(crate) type Prefix = Arc<Kept>;

/// Weighs a cached stream by the stored size of its events.
#[derive(Clone)]
struct BySize;

impl Weighter<StreamId, Prefix> for BySize {
    fn weight(&self, _stream: &StreamId, kept: &Prefix) -> u64 {
        kept.bytes.max(1)
    }
}

type Streams =
    Cache<StreamId, Prefix, BySize, DefaultHashBuilder, DefaultLifecycle<StreamId, Prefix>>;

/// Recently read streams' events (see the module).
pub(crate) struct StreamCache {
    streams: Streams,
}

impl std::fmt::Debug for StreamCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamCache")
            .field("streams", &self.streams.len())
            .field("bytes", &self.streams.weight())
            .finish()
    }
}

impl StreamCache {
    /// A cache of at most about `max_bytes` of stored events; `None` for 0 (no cache).
    pub fn new(max_bytes: u64) -> Option<Self> {
        if max_bytes == 0 {
            return None;
        }
        // Items: assuming streams of about 4 KiB stored (a report of a few events).
        let items = usize::try_from(max_bytes / 4096)
            .unwrap_or(usize::MAX)
            .max(64);
        let options = OptionsBuilder::new()
            .shards(SHARDS)
            .estimated_items_capacity(items)
            .weight_capacity(max_bytes)
            .build()
            .ok()?;
        Some(Self {
            streams: Cache::with_options(
                options,
                BySize,
                DefaultHashBuilder::default(),
                DefaultLifecycle::default(),
            ),
        })
    }

    /// The first events of `stream` read before (none: not cached).
    pub fn get(&self, stream: &StreamId) -> Option<Prefix> {
        self.streams.get(stream)
    }

    /// The same without counting as a use (for eviction).
    pub fn peek(&self, stream: &StreamId) -> Option<Prefix> {
        self.streams.peek(stream)
    }

    /// `cached` (what [`get`](Self::get) gave) followed by `after` (the events read after
    /// it, with their stored sizes), kept for the next read if it holds anything and is
    /// longer than what is kept now. Two readers racing may still leave the shorter:
    /// any prefix of the stream is correct, and the next read reads a little more.
    pub fn extend(
        &self,
        stream: &StreamId,
        cached: Option<Prefix>,
        after: Vec<(RecordedEvent, usize)>,
    ) -> Prefix {
        let cached = cached.unwrap_or_default();
        if after.is_empty() {
            return cached;
        }
        let mut events = Vec::with_capacity(cached.events.len() + after.len());
        events.extend(cached.events.iter().cloned());
        let mut bytes = cached.bytes;
        for (event, size) in after {
            bytes = bytes.saturating_add(u64::try_from(size).unwrap_or(u64::MAX));
            events.push(Arc::new(event));
        }
        let kept = Arc::new(Kept { events, bytes });
        let longer = self
            .streams
            .peek(stream)
            .is_none_or(|now| now.events.len() < kept.events.len());
        if longer {
            self.streams.insert(stream.clone(), kept.clone());
        }
        kept
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
        p.events.iter().map(|e| e.position()).collect()
    }

    fn sized(events: Vec<RecordedEvent>) -> Vec<(RecordedEvent, usize)> {
        events.into_iter().map(|e| (e, 100)).collect()
    }

    #[test]
    fn a_stream_read_again_is_what_was_kept_and_what_came_after() {
        let cache = StreamCache::new(100_000).expect("a cache");
        let s = StreamId::new("report", uuid::Uuid::new_v4());
        assert!(cache.get(&s).is_none());
        let first = cache.extend(&s, None, sized(vec![event(&s, 3), event(&s, 7)]));
        assert_eq!(positions(&first), [3, 7]);
        let kept = cache.get(&s).expect("kept");
        assert_eq!(positions(&kept), [3, 7]);
        let later = cache.extend(&s, Some(kept), sized(vec![event(&s, 9)]));
        assert_eq!(positions(&later), [3, 7, 9]);
        assert_eq!(positions(&cache.get(&s).expect("kept")), [3, 7, 9]);
    }

    #[test]
    fn a_shorter_prefix_never_replaces_a_longer_one_and_nothing_empty_is_kept() {
        let cache = StreamCache::new(100_000).expect("a cache");
        let s = StreamId::new("patrol", uuid::Uuid::new_v4());
        let stale = cache.get(&s);
        cache.extend(&s, None, sized(vec![event(&s, 1), event(&s, 2)]));
        // A reader that started before the first one finished, with less.
        let theirs = cache.extend(&s, stale, sized(vec![event(&s, 1)]));
        assert_eq!(positions(&theirs), [1], "each reader gets what it read");
        assert_eq!(positions(&cache.get(&s).expect("kept")), [1, 2]);
        let empty = StreamId::new("patrol", uuid::Uuid::new_v4());
        assert!(cache.extend(&empty, None, Vec::new()).events.is_empty());
        assert!(
            cache.get(&empty).is_none(),
            "a stream with no events is not kept"
        );
    }

    #[test]
    fn the_cache_holds_about_its_capacity_in_stored_bytes_and_zero_turns_it_off() {
        assert!(StreamCache::new(0).is_none());
        let cache = StreamCache::new(50_000).expect("a cache");
        // 200 streams of 500 bytes: twice the capacity.
        for _ in 0..200 {
            let s = StreamId::new("report", uuid::Uuid::new_v4());
            cache.extend(&s, None, sized((1..=5).map(|p| event(&s, p)).collect()));
        }
        assert!(cache.streams.weight() <= 50_000, "{cache:?}");
        assert!(cache.streams.weight() >= 25_000, "{cache:?}");
        // A stream of a fifth of the capacity is kept, whatever the host's core count.
        let long = StreamId::new("patrol", uuid::Uuid::new_v4());
        let events = (1..=100).map(|p| (event(&long, p), 100)).collect();
        cache.extend(&long, None, events);
        assert_eq!(cache.peek(&long).map(|k| k.events.len()), Some(100));
    }
}
