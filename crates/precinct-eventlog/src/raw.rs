//! Plain JetStream publish-and-ack on a scratch stream, with none of the log's
//! guarantees (no envelope, expected version, atomic batch or de-duplication): the raw
//! ceiling `make bench` compares [`crate::EventLog::append`] with. Precinct itself never
//! uses it; it lives here so that no other crate needs to know JetStream.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;

use crate::error::LogError;

/// A connection that publishes raw messages. Cheap to clone.
#[derive(Clone)]
pub struct RawPublisher {
    js: jetstream::Context,
}

impl std::fmt::Debug for RawPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawPublisher")
    }
}

impl RawPublisher {
    /// Connects as `name`; publishes wait (rather than fail) while `max_in_flight`
    /// acknowledgements are pending, and an acknowledgement times out after `timeout`.
    pub async fn connect(
        url: &str,
        name: &str,
        max_in_flight: usize,
        timeout: Duration,
    ) -> Result<Self, LogError> {
        let (options, url) = crate::log::options_for(url);
        let client = options
            .name(name)
            .connect(url)
            .await
            .map_err(|e| LogError::Connect(e.to_string()))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(timeout)
            .max_ack_inflight(max_in_flight)
            .build(client);
        Ok(Self { js })
    }

    /// Creates (afresh: an old one is deleted) a file-backed, one-replica stream `name`
    /// on `subject`.
    pub async fn scratch_stream(&self, name: &str, subject: &str) -> Result<(), LogError> {
        let _ = self.js.delete_stream(name).await;
        self.js
            .create_stream(stream::Config {
                name: name.into(),
                subjects: vec![subject.into()],
                storage: stream::StorageType::File,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| LogError::Stream(e.to_string()))?;
        Ok(())
    }

    /// Publishes `payload` on `subject`; the returned future completes with the stored
    /// sequence once the server acknowledges it. Errors are the kind of failure only
    /// (`publish: …`, `ack: …`), to count them by kind.
    pub async fn publish(
        &self,
        subject: String,
        payload: Bytes,
    ) -> Result<impl Future<Output = Result<u64, String>> + Send + 'static, String> {
        let ack = self
            .js
            .publish(subject, payload)
            .await
            .map_err(|e| format!("publish: {}", e.kind()))?;
        Ok(async move {
            ack.await
                .map(|a| a.sequence)
                .map_err(|e| format!("ack: {}", e.kind()))
        })
    }
}

/// Whether a JetStream server answers at `url`.
pub async fn is_up(url: &str) -> bool {
    match async_nats::connect(url).await {
        Ok(c) => jetstream::new(c).query_account().await.is_ok(),
        Err(_) => false,
    }
}

/// Deletes the streams `names` (and so the key bucket whose stream is named) at `url`,
/// best effort: a bench's leftovers.
pub async fn delete_streams(url: &str, names: &[String]) {
    if let Ok(c) = async_nats::connect(url).await {
        let js = jetstream::new(c);
        for n in names {
            let _ = js.delete_stream(n).await;
        }
    }
}
