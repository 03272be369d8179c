//! Direct access to the NATS store, for the tests that inspect it (raw messages, stream
//! settings, headers). Precinct itself reaches JetStream only through
//! `precinct-eventlog`; these tests look underneath on purpose.

use async_nats::jetstream;

/// A JetStream context on the server at `url` (a test app's `config.nats_url`).
pub async fn jetstream(url: &str) -> jetstream::Context {
    let client = async_nats::connect(url)
        .await
        .expect("connect to NATS to inspect the store");
    jetstream::new(client)
}
