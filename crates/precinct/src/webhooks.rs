//! The webhook deliverer (role `webhooks`, ADR 0028): follows the event log and POSTs
//! every report event a subscription's filter matches to its target, signed as the
//! Standard Webhooks specification says.
//!
//! - One active deliverer across processes: the advisory lock of
//!   `precinct_projections::while_leading`; others stand by, and this one stops and
//!   stands by again if its lock's session ends.
//! - One task per subscription, each with its own ordered consumer of the report
//!   events, its own cursor in the ledger and its own HTTP client with a per-request
//!   timeout: a hanging receiver holds back only its own subscription.
//! - Shutdown abandons an attempt in flight (unrecorded): the next active deliverer
//!   sends it again under the same `webhook-id`.
//! - At least once, in log order per subscription: the cursor moves past an event only
//!   after a 2xx (or when the filter does not match); a failed attempt is retried
//!   after an exponential, jittered pause (`precinct_retry::Backoff`). After
//!   `max_failures` failed attempts in a row the delivery is `DEAD` and the
//!   subscription is disabled through the command `webhook::disable` (an event); a
//!   `410 Gone` disables it at once.
//! - The `webhook-id` derives from (subscription, log position): an event delivered
//!   again after a restart or a replay carries the same id.
//! - Redirects are not followed; the target is checked (SSRF rules of
//!   `precinct_api::webhook_target`) before every attempt and the client connects to
//!   the addresses that check resolved.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use precinct_api::webhook_target::{Target, TargetPolicy};

use crate::outbound::{answer, Failure, PinnedClient, Signed};
use precinct_app::commands::webhook as commands;
use precinct_app::App;
use precinct_domain::ids::StationId;
use precinct_domain::report::{Report, ReportEvent};
use precinct_domain::values::GeoPoint;
use precinct_domain::webhook::{delivery_data, Webhook};
use precinct_domain::{Aggregate, DomainEvent};
use precinct_eventlog::{EventLog, RecordedEvent, StreamId};
use precinct_readmodel::queries::{self, WebhookRow};
use precinct_readmodel::webhook_ledger::{self as ledger, Attempt};
use precinct_retry::{self as backoff, Backoff};
use sha2::Sha256;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The advisory lock's name (one active deliverer).
const LOCK: &str = "webhook-deliverer";
/// How often the deliverer looks for new or re-enabled subscriptions, and a task for
/// changes to its own.
const SCAN_INTERVAL: Duration = Duration::from_millis(250);
/// Most subscriptions one deliverer serves.
const SUBSCRIPTIONS_MAX: i64 = 1000;
/// Reports whose facts a task keeps in memory before it forgets them all.
const FACTS_MAX: usize = 10_000;

/// The deliverer's settings (`PRECINCT_WEBHOOK_*`, docs/operations.md).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `PRECINCT_WEBHOOK_ALLOW_HTTP` and `PRECINCT_WEBHOOK_ALLOW`.
    pub targets: TargetPolicy,
    /// `PRECINCT_WEBHOOK_TIMEOUT_MS` (10 000): one request, connection included.
    pub timeout: Duration,
    /// `PRECINCT_WEBHOOK_MAX_FAILURES` (10): failed attempts in a row before the
    /// delivery is dead and the subscription disabled.
    pub max_failures: u32,
    /// `PRECINCT_WEBHOOK_RETRY_FIRST_MS` (1 000) and `PRECINCT_WEBHOOK_RETRY_MAX_MS`
    /// (300 000): the first and the longest pause between attempts.
    pub retry_first: Duration,
    pub retry_max: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            targets: TargetPolicy::default(),
            timeout: Duration::from_secs(10),
            max_failures: 10,
            retry_first: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
        }
    }
}

/// The deliverer of one process.
#[derive(Clone)]
pub struct Deliverer {
    pub app: App,
    pub log: EventLog,
    pub pool: PgPool,
    pub config: WebhookConfig,
}

impl Deliverer {
    /// Runs until `shutdown`: waits to be the active deliverer, then keeps one task per
    /// enabled subscription.
    /// It stands by again if its lock's session ends (ADR 0006).
    pub async fn run(self, shutdown: CancellationToken) {
        let shared = Arc::new(self);
        let pool = shared.pool.clone();
        let work = |stop| shared.clone().serve(stop);
        precinct_projections::while_leading(&pool, LOCK, &shutdown, work).await;
    }

    /// Delivers while this process is the active deliverer, until `shutdown`.
    async fn serve(self: Arc<Self>, shutdown: CancellationToken) {
        let shared = self;
        let mut tasks: HashMap<Uuid, JoinHandle<()>> = HashMap::new();
        loop {
            tasks.retain(|_, t| !t.is_finished());
            match queries::active_webhooks(&shared.pool, SUBSCRIPTIONS_MAX).await {
                Ok(rows) => {
                    for row in rows {
                        tasks.entry(row.id).or_insert_with(|| {
                            let (shared, token) = (shared.clone(), shutdown.clone());
                            tokio::spawn(async move { shared.follow(row.id, token).await })
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list webhook subscriptions"),
            }
            if !backoff::pause(&shutdown, SCAN_INTERVAL).await {
                break;
            }
        }
        for (_, task) in tasks {
            let _ = task.await;
        }
    }

    /// Delivers subscription `id`'s events until it is disabled or deleted, or shutdown.
    async fn follow(&self, id: Uuid, shutdown: CancellationToken) {
        let mut pause =
            Backoff::new(Duration::from_millis(200), Duration::from_secs(5)).until(&shutdown);
        let mut facts = ReportFacts::default();
        let mut client = PinnedClient::default();
        loop {
            match self
                .follow_once(id, &shutdown, &mut facts, &mut client)
                .await
            {
                Ok(Next::Stop) => return,
                Ok(Next::Again) => pause.reset(),
                Err(e) => {
                    tracing::warn!(webhook = %id, error = %e, "webhook delivery interrupted; retrying");
                    if !pause.pause().await {
                        return;
                    }
                }
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
    }

    /// One run from the cursor until the subscription changes.
    async fn follow_once(
        &self,
        id: Uuid,
        shutdown: &CancellationToken,
        facts: &mut ReportFacts,
        client: &mut PinnedClient,
    ) -> anyhow::Result<Next> {
        let Some(row) = queries::get_webhook(&self.pool, id).await? else {
            return Ok(Next::Stop);
        };
        if !row.enabled {
            return Ok(Next::Stop);
        }
        // A new cursor starts after the creating event with no replay applied yet: a
        // replay requested before this deliverer first saw the subscription still runs.
        let cursor = ledger::cursor(&self.pool, id, row.created_position, 0).await?;
        if let (Some(from), Some(request)) = (row.replay_from, row.replay_position) {
            if request > cursor.replay_seen {
                ledger::apply_replay(&self.pool, id, from, request).await?;
                return Ok(Next::Again);
            }
        }
        let (hook, _) = self.app.load::<Webhook>(id).await?;
        if !hook.enabled || hook.deleted {
            return Ok(Next::Stop);
        }
        let mut position = u64::try_from(cursor.position).unwrap_or(0);
        // The cursor as written: events the filter passes over move it lazily (at the
        // next tick or delivery) — handling them again after a restart sends nothing.
        let mut written = position;
        let mut events = self.log.subscribe_to(position + 1, &[Report::TYPE]).await?;
        let mut changes = tokio::time::interval(SCAN_INTERVAL);
        changes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = changes.tick() => {
                    if written < position {
                        ledger::advance(&self.pool, id, position as i64).await?;
                        written = position;
                    }
                    if changed(&self.pool, &row).await? {
                        return Ok(Next::Again);
                    }
                }
                event = events.next() => {
                    let Some(event) = event else { return Ok(Next::Again) };
                    let event = event?;
                    if event.position() <= position {
                        continue;
                    }
                    match self.deliver(&row, &hook, &event, shutdown, facts, client).await? {
                        // The ledger moved the cursor with the delivery.
                        Delivery::Delivered => {
                            position = event.position();
                            written = position;
                        }
                        Delivery::Skipped => position = event.position(),
                        Delivery::Stop => break,
                        Delivery::Again => {
                            // The next run starts from the cursor: what this run passed
                            // over is not handled again under a changed filter.
                            if written < position {
                                ledger::advance(&self.pool, id, position as i64).await?;
                            }
                            return Ok(Next::Again);
                        }
                    }
                }
            }
        }
        if written < position {
            ledger::advance(&self.pool, id, position as i64).await?;
        }
        Ok(Next::Stop)
    }

    /// Delivers one event to one subscription, retrying until a 2xx, a change to the
    /// subscription, shutdown, or the run of failures that disables it.
    async fn deliver(
        &self,
        row: &WebhookRow,
        hook: &Webhook,
        event: &RecordedEvent,
        shutdown: &CancellationToken,
        facts: &mut ReportFacts,
        client: &mut PinnedClient,
    ) -> anyhow::Result<Delivery> {
        let event_type = event.envelope.event_type.as_str();
        let report_id = event.envelope.aggregate_id;
        let (station, point) = if hook.filter.station_id.is_some() || hook.filter.area.is_some() {
            facts.at(&self.log, report_id, event.position()).await?
        } else {
            (None, None)
        };
        if !hook.filter.matches(event_type, station, point) {
            return Ok(Delivery::Skipped);
        }
        let position = event.position();
        let message_id = message_id(row.id, position);
        let body = serde_json::to_vec(&serde_json::json!({
            "type": event_type,
            "timestamp": event.envelope.occurred_at,
            "position": position,
            "event_id": event.envelope.event_id,
            "report_id": report_id,
            "occurred_at": event.envelope.occurred_at,
            "data": delivery_data(event_type, event.data.clone(), hook.personal_data),
        }))?;
        let mut pause =
            Backoff::new(self.config.retry_first, self.config.retry_max).until(shutdown);
        loop {
            let now = chrono::Utc::now();
            let secrets = hook.signing_secrets(now);
            let started = Instant::now();
            let result = if secrets.is_empty() {
                Err(Failure::new(
                    None,
                    "the signing secret cannot be read".into(),
                ))
            } else {
                match self.config.targets.check(&hook.url).await {
                    Err(reason) => Err(Failure::new(None, format!("target refused: {reason}"))),
                    Ok(target) => {
                        let timestamp = now.timestamp();
                        let signature = sign(&secrets, &message_id, timestamp, &body);
                        let signed = Signed {
                            message_id: &message_id,
                            timestamp,
                            signature: &signature,
                        };
                        let send =
                            client.send_webhook(&self.config, &target, &hook.url, &signed, &body);
                        // Shutdown does not wait for a slow receiver: the attempt is
                        // abandoned unrecorded and the next deliverer sends it again,
                        // under the same id.
                        tokio::select! {
                            biased;
                            _ = shutdown.cancelled() => return Ok(Delivery::Stop),
                            result = send => result,
                        }
                    }
                }
            };
            let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
            let (status, error, http_status) = match &result {
                Ok(code) => ("DELIVERED", None, Some(i32::from(*code))),
                Err(f) => ("RETRYING", Some(f.error.clone()), f.status.map(i32::from)),
            };
            let attempt = Attempt {
                webhook: row.id,
                position: position as i64,
                message_id: &message_id,
                event_type,
                status,
                error: error.as_deref(),
                http_status,
                latency_ms,
                at: now,
            };
            let failure = match result {
                Ok(_) => {
                    ledger::record_delivered(&self.pool, &attempt).await?;
                    metrics::counter!("precinct_webhook_attempts_total", "outcome" => "delivered")
                        .increment(1);
                    return Ok(Delivery::Delivered);
                }
                Err(f) => f,
            };
            let failures = ledger::record(&self.pool, &attempt).await?;
            metrics::counter!("precinct_webhook_attempts_total", "outcome" => "retrying")
                .increment(1);
            tracing::info!(webhook = %row.id, position, error = %failure.error, failures, "webhook delivery failed");
            // 410 Gone: the receiver wants no more (the specification: disable).
            let gone = failure.status == Some(410);
            if gone || failures >= i32::try_from(self.config.max_failures).unwrap_or(i32::MAX) {
                ledger::mark_dead(&self.pool, row.id, position as i64).await?;
                metrics::counter!("precinct_webhook_attempts_total", "outcome" => "dead")
                    .increment(1);
                let reason = format!(
                    "{failures} failed attempts in a row at position {position}: {}",
                    failure.error
                );
                commands::disable(&self.app, row.id, position, reason).await?;
                return Ok(Delivery::Stop);
            }
            // A receiver that asked for time (429/503 with Retry-After) gets at least
            // that long.
            let waited = match failure.retry_after {
                Some(asked) => {
                    let own = pause.next_delay().unwrap_or(asked);
                    backoff::pause(shutdown, own.max(asked)).await
                }
                None => pause.pause().await,
            };
            if !waited {
                return Ok(Delivery::Stop);
            }
            if changed(&self.pool, row).await? {
                return Ok(Delivery::Again);
            }
        }
    }
}

enum Next {
    /// Start again from the cursor (the subscription changed, or a replay).
    Again,
    /// Disabled, deleted, or shutdown.
    Stop,
}

enum Delivery {
    /// Delivered: the ledger moved the cursor past it.
    Delivered,
    /// Not for this subscription (its filter).
    Skipped,
    Again,
    Stop,
}

/// Has the subscription changed since `row` (an edit, rotation, replay, disabling)?
async fn changed(pool: &PgPool, row: &WebhookRow) -> anyhow::Result<bool> {
    Ok(match queries::get_webhook(pool, row.id).await? {
        Some(now) => now.version != row.version || !now.enabled,
        None => true,
    })
}

/// The `webhook-id` of the delivery of log position `position` to `webhook`: the same
/// on every attempt, after a restart and on a replay.
pub fn message_id(webhook: Uuid, position: u64) -> String {
    format!(
        "msg_{}",
        Uuid::new_v5(&webhook, &position.to_be_bytes()).simple()
    )
}

/// The `webhook-signature` header: `v1,<base64 HMAC-SHA256>` under each secret, over
/// `<id>.<timestamp>.<body>`, separated by spaces.
pub fn sign(secrets: &[String], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    secrets
        .iter()
        .filter_map(|s| {
            let key = b64
                .decode(s.strip_prefix(precinct_domain::webhook::SECRET_PREFIX)?)
                .ok()?;
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
            mac.update(format!("{message_id}.{timestamp}.").as_bytes());
            mac.update(body);
            Some(format!("v1,{}", b64.encode(mac.finalize().into_bytes())))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl PinnedClient {
    async fn send_webhook(
        &mut self,
        config: &WebhookConfig,
        target: &Target,
        url: &str,
        signed: &Signed<'_>,
        body: &[u8],
    ) -> Result<u16, Failure> {
        let response = self
            .post_signed(
                config.timeout,
                "Precinct-Webhooks/1",
                target,
                url,
                signed,
                body,
            )
            .await?;
        if response.status() == reqwest::StatusCode::GONE {
            return Err(Failure::new(
                Some(410),
                "HTTP 410: the receiver is gone".into(),
            ));
        }
        answer(response)
    }
}

/// A report's station and place after each of its events, read from the log: what
/// the filter of an event is decided on (the report as it stood at that event).
#[derive(Default)]
struct ReportFacts {
    reports: HashMap<Uuid, Vec<(u64, StationId, GeoPoint)>>,
}

impl ReportFacts {
    async fn at(
        &mut self,
        log: &EventLog,
        report: Uuid,
        position: u64,
    ) -> anyhow::Result<(Option<StationId>, Option<GeoPoint>)> {
        let known = self
            .reports
            .get(&report)
            .and_then(|v| v.last())
            .is_some_and(|(p, _, _)| *p >= position);
        if !known {
            if self.reports.len() >= FACTS_MAX {
                self.reports.clear();
            }
            let events = log.read(&StreamId::new(Report::TYPE, report)).await?;
            let mut state = Report::default();
            let mut after = Vec::with_capacity(events.len());
            for e in &events {
                let decoded = ReportEvent::from_parts_ref(&e.envelope.event_type, &e.data)?;
                state.apply(&decoded);
                after.push((e.position(), state.station_id, state.location.point()));
            }
            self.reports.insert(report, after);
        }
        Ok(self
            .reports
            .get(&report)
            .and_then(|v| v.iter().rev().find(|(p, _, _)| *p <= position))
            .map_or((None, None), |(_, s, g)| (Some(*s), Some(*g))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_id_depends_on_subscription_and_position_only() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_eq!(message_id(a, 7), message_id(a, 7));
        assert_ne!(message_id(a, 7), message_id(a, 8));
        assert_ne!(message_id(a, 7), message_id(b, 7));
        assert!(message_id(a, 7).starts_with("msg_"));
    }

    #[test]
    fn the_signature_matches_the_specifications_example() {
        // The known-answer vector of the Standard Webhooks libraries (checked with
        // Python's hmac module).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn two_secrets_give_two_signatures() {
        let s1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        let s2 = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk=".to_owned();
        let both = sign(&[s1.clone(), s2], "msg_1", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign(&[s1], "msg_1", 1, b"{}"));
    }
}
