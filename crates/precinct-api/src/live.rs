//! The live path: patrol positions in, live fan-out out.
//!
//! - [`directory`]: [`PatrolDirectory`], patrol station and crew from memory (short
//!   TTL), so a position update does not read the patrol's event stream.
//! - [`hub`]: [`LiveHub`], one fan-out per process of the positions stream and the
//!   event log to SSE subscribers, each with a bounded buffer; catching up a client
//!   that resumes. Its parts:
//!   - [`frames`]: what a position or an event becomes ([`hub::Frame`]) and who may see
//!     it, decoded into the domain's typed events (no server needed to test it);
//!   - [`registry`]: the synchronous fan-out (ring, snapshot, resume, bounded
//!     channels, slow clients dropped) and the connection slots;
//!   - `follow`: the JetStream followers and replays.
//!
//! The HTTP endpoints are in [`crate::routes::live`]. The hub runs only in a process
//! with the `live` role; elsewhere the SSE endpoints answer 503.

pub mod directory;
mod follow;
pub mod frames;
pub mod hub;
pub mod registry;

use std::sync::Arc;
use std::time::Duration;

pub use directory::{PatrolDirectory, PatrolInfo};
pub use hub::{LiveHub, LiveStats};

use precinct_eventlog::PositionLog;

use crate::problem::ApiError;

/// Settings of the live path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// Most concurrent SSE connections per process (beyond: 503). Default 1000.
    pub max_connections: usize,
    /// Most concurrent SSE connections of one account (or, for tracking-token holders,
    /// one report) in this process, over every SSE endpoint (beyond: 429). Default 5.
    pub max_streams_per_account: usize,
    /// Frames buffered per client; a client whose buffer is full is dropped. Default
    /// 1024.
    pub client_buffer: usize,
    /// SSE keep-alive comment interval. Default 15 s.
    pub keep_alive: Duration,
    /// How long a patrol's crew is trusted from memory. Default 5 s.
    pub patrol_cache_ttl: Duration,
    /// Recent frames kept for clients that reconnect (`Last-Event-ID`). Default 4096.
    pub recent: usize,
    /// A reconnecting client further behind than this many messages of a stream gets
    /// a snapshot (positions) or skips ahead (log) instead of a replay. Default 100,000.
    pub max_replay: u64,
    /// On resume, the stream the id does not name is replayed from this long before
    /// the named message. Default 2 s.
    pub resume_slack: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            max_streams_per_account: 5,
            client_buffer: 1024,
            keep_alive: Duration::from_secs(15),
            patrol_cache_ttl: Duration::from_secs(5),
            recent: 4096,
            max_replay: 100_000,
            resume_slack: Duration::from_secs(2),
        }
    }
}

/// The live path's share of the application state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Live {
    pub directory: Arc<PatrolDirectory>,
    /// The positions stream (built once, not per request).
    pub positions: PositionLog,
    pub hub: Option<LiveHub>,
}

impl Live {
    /// The hub, or 503 in a process that does not run one.
    pub fn hub(&self) -> Result<&LiveHub, ApiError> {
        self.hub.as_ref().ok_or_else(|| {
            ApiError::Unavailable("live streams are not served by this process".into())
        })
    }
}
