//! The push deliverer (role `webhooks`, ADR 0032): notifies the crew of a patrol on
//! every device they registered when a report is assigned to it, reassigned to it, the
//! desk asks to notify it ("Notify officer") or its SLA warning level is reached, and
//! the station's supervisors of SLA warnings, breaches and escalations when the
//! station's policy says so (ADR 0035) — as Web Push messages (RFC 8030),
//! encrypted for the subscription (aes128gcm, RFC 8291) and signed with the server's
//! VAPID key (RFC 8292), through the `web-push` crate; or, for a device gateway
//! (ADR 0038), as a JSON POST signed as Standard Webhooks say under the device's own
//! secret (`webhook-id` from device and log position, as the webhooks derive theirs).
//!
//! - One active deliverer across processes: the advisory lock of
//!   `precinct_projections::while_leading`; others stand by, and this one stops and
//!   stands by again if its lock's session ends.
//! - Two halves. The *follower* reads the report events from the cursor in
//!   `push_cursor`, turns each triggering event ([`trigger`]) into one outbox row per
//!   (device, position) and moves the cursor in the same transaction: a restart neither
//!   loses nor doubles a notification. The *senders* are one task per device with
//!   something due: each sends its device's rows with its own HTTP client and a
//!   per-request timeout, so a hanging push service holds back only its own device.
//! - A failed attempt is tried again after an exponential pause, up to
//!   `max_attempts`; 404 or 410 from the push service means the subscription expired:
//!   the device is removed through the command `device::expire` (an event) and its
//!   pending rows are dropped. A row older than `ttl` is not sent (`EXPIRED`): a late
//!   assignment alert misleads more than none.
//! - Endpoints are checked before every attempt with the webhooks' SSRF rules
//!   (`precinct_api::webhook_target`, the same operator allow-list) and the client
//!   connects to exactly the checked addresses; redirects are not followed.
//! - The payload is minimal and carries no personal data: the report's id, the kind of
//!   notification, the report's priority and the log position.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use precinct_api::webhook_target::{Target, TargetPolicy};

use crate::outbound::{answer, Failure, PinnedClient, Signed};
use precinct_app::commands::device as devices;
use precinct_app::App;
use precinct_domain::device::{Device, DeviceKind, Devices, PushKeys};
use precinct_domain::ids::{AccountId, DeviceId};
use precinct_domain::patrol::Patrol;
use precinct_domain::report::{Report, ReportEvent};
use precinct_domain::station::Station;
use precinct_domain::{Aggregate, DomainEvent};
use precinct_eventlog::{EventLog, RecordedEvent, StreamId};
use precinct_readmodel::push_outbox::{self as outbox, NewNotification, OutboxRow};
use precinct_retry::{self as backoff, Backoff};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The advisory lock's name (one active push deliverer).
const LOCK: &str = "push-deliverer";
/// How often the senders' scan looks for devices with something due.
const SCAN_INTERVAL: Duration = Duration::from_millis(250);
/// Most devices served at once.
const DEVICES_AT_ONCE: i64 = 500;
/// How often the follower saves its cursor when no event triggered anything.
const CURSOR_EVERY: Duration = Duration::from_secs(1);

/// The server's VAPID identity (`PRECINCT_VAPID_PRIVATE_KEY`, `PRECINCT_VAPID_SUBJECT`).
#[derive(Clone)]
pub struct Vapid {
    /// base64url of the raw 32-byte P-256 private key.
    private_key: String,
    /// base64url of the uncompressed public key: the `applicationServerKey` browsers
    /// subscribe with.
    pub public_key: String,
    /// `mailto:` or `https:` contact of the operator (the JWT's `sub`).
    pub subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("private_key", &"<redacted>")
            .field("public_key", &self.public_key)
            .field("subject", &self.subject)
            .finish()
    }
}

impl Vapid {
    /// Parses the private key (base64url of 32 bytes) and checks the subject.
    pub fn parse(private_key: &str, subject: &str) -> anyhow::Result<Self> {
        let private_key = private_key.trim().trim_end_matches('=').to_owned();
        let builder =
            web_push::VapidSignatureBuilder::from_base64_no_sub(&private_key).map_err(|_| {
                anyhow::anyhow!(
                    "PRECINCT_VAPID_PRIVATE_KEY must be the base64url of a raw 32-byte P-256 \
                     private key"
                )
            })?;
        if !(subject.starts_with("mailto:") || subject.starts_with("https://")) {
            anyhow::bail!("PRECINCT_VAPID_SUBJECT must be a mailto: or https: URL");
        }
        Ok(Vapid {
            private_key,
            public_key: b64url(&builder.get_public_key()),
            subject: subject.to_owned(),
        })
    }
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The push deliverer's settings (`PRECINCT_PUSH_*`, `PRECINCT_VAPID_*`,
/// docs/operations.md).
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// None: Web Push is off (devices cannot be registered; nothing is sent).
    pub vapid: Option<Vapid>,
    /// The webhooks' SSRF rules (`PRECINCT_WEBHOOK_ALLOW_HTTP`, `PRECINCT_WEBHOOK_ALLOW`).
    pub targets: TargetPolicy,
    /// `PRECINCT_PUSH_TIMEOUT_MS` (5 000): one request, connection included.
    pub timeout: Duration,
    /// `PRECINCT_PUSH_MAX_ATTEMPTS` (5): attempts at one notification.
    pub max_attempts: u32,
    /// The first and the longest pause between attempts (1 s, 60 s).
    pub retry_first: Duration,
    pub retry_max: Duration,
    /// `PRECINCT_PUSH_TTL_SECS` (3 600): the push service keeps a message this long
    /// (`TTL`), and a notification not sent by then is dropped.
    pub ttl: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            vapid: None,
            targets: TargetPolicy::default(),
            timeout: Duration::from_secs(5),
            max_attempts: 5,
            retry_first: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            ttl: Duration::from_secs(3600),
        }
    }
}

/// What a report event notifies of, if anything.
pub fn trigger(event_type: &str) -> Option<&'static str> {
    match event_type {
        "ReportAssigned" => Some("ASSIGNED"),
        "PatrolNotified" => Some("NOTIFY"),
        "SlaWarned" => Some("SLA_WARNING"),
        "SlaBreached" => Some("SLA_BREACH"),
        "SlaEscalated" => Some("SLA_ESCALATION"),
        _ => None,
    }
}

/// Who a notification of `kind` goes to: (the patrol's crew, the station's supervisors
/// when its SLA policy says so — ADR 0035).
pub fn audience(kind: &str) -> (bool, bool) {
    match kind {
        "SLA_WARNING" => (true, true),
        "SLA_BREACH" | "SLA_ESCALATION" => (false, true),
        _ => (true, false),
    }
}

/// Most supervisors of one station notified of one event.
const SUPERVISORS_MAX: u32 = 50;

/// The deliverer of one process.
#[derive(Clone)]
pub struct PushDeliverer {
    pub app: App,
    pub log: EventLog,
    pub pool: PgPool,
    pub config: PushConfig,
}

impl PushDeliverer {
    /// Runs until `shutdown`: waits to be the active deliverer, then follows the log and
    /// keeps one sender per device with something due.
    /// It stands by again if its lock's session ends (ADR 0006).
    pub async fn run(self, shutdown: CancellationToken) {
        let shared = Arc::new(self);
        let pool = shared.pool.clone();
        let work = |stop| shared.clone().deliver(stop);
        precinct_projections::while_leading(&pool, LOCK, &shutdown, work).await;
    }

    /// Delivers while this process is the active deliverer, until `shutdown`.
    async fn deliver(self: Arc<Self>, shutdown: CancellationToken) {
        let shared = self;
        let follower = {
            let (shared, token) = (shared.clone(), shutdown.clone());
            tokio::spawn(async move { shared.follow(token).await })
        };
        let mut senders: HashMap<Uuid, JoinHandle<()>> = HashMap::new();
        loop {
            senders.retain(|_, t| !t.is_finished());
            match outbox::due_devices(&shared.pool, DEVICES_AT_ONCE).await {
                Ok(due) => {
                    for device in due {
                        senders.entry(device).or_insert_with(|| {
                            let (shared, token) = (shared.clone(), shutdown.clone());
                            tokio::spawn(async move { shared.send_due(device, token).await })
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list due push notifications"),
            }
            if !backoff::pause(&shutdown, SCAN_INTERVAL).await {
                break;
            }
        }
        for (_, task) in senders {
            let _ = task.await;
        }
        let _ = follower.await;
    }

    /// The follower: report events → outbox rows, until shutdown.
    async fn follow(&self, shutdown: CancellationToken) {
        let mut pause =
            Backoff::new(Duration::from_millis(200), Duration::from_secs(5)).until(&shutdown);
        loop {
            match self.follow_once(&shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "push follower interrupted; retrying");
                    if !pause.pause().await {
                        return;
                    }
                }
            }
        }
    }

    async fn follow_once(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let mut position = u64::try_from(outbox::cursor(&self.pool).await?).unwrap_or(0);
        let mut saved = position;
        let mut saved_at = Instant::now();
        let mut events = self.log.subscribe_to(position + 1, &[Report::TYPE]).await?;
        let mut tick = tokio::time::interval(CURSOR_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                event = events.next() => {
                    let Some(event) = event else {
                        anyhow::bail!("the log subscription ended");
                    };
                    let event = event?;
                    if event.position() <= position {
                        continue;
                    }
                    let rows = self.notifications(&event).await?;
                    position = event.position();
                    if !rows.is_empty() {
                        outbox::enqueue(&self.pool, position as i64, event.envelope.occurred_at, &rows)
                            .await?;
                        saved = position;
                        saved_at = Instant::now();
                    }
                }
            }
            // Events that notify nobody move the cursor now and then: redoing them
            // after a restart is harmless.
            if position > saved && saved_at.elapsed() >= CURSOR_EVERY {
                outbox::enqueue(&self.pool, position as i64, chrono::Utc::now(), &[]).await?;
                saved = position;
                saved_at = Instant::now();
            }
        }
        if position > saved {
            outbox::enqueue(&self.pool, position as i64, chrono::Utc::now(), &[]).await?;
        }
        Ok(())
    }

    /// The notifications report event `event` makes: one per device of each member of
    /// the patrol it names (its crew now), none for an event older than the TTL.
    async fn notifications(&self, event: &RecordedEvent) -> anyhow::Result<Vec<NewNotification>> {
        let Some(mut kind) = trigger(&event.envelope.event_type) else {
            return Ok(vec![]);
        };
        let age = chrono::Utc::now() - event.envelope.occurred_at;
        if age.to_std().is_ok_and(|a| a > self.config.ttl) {
            return Ok(vec![]);
        }
        let report_id = event.envelope.aggregate_id;
        // The report as it stood at this event: its priority, and whether this
        // assignment replaced another in the same command (a reassignment).
        let history = self
            .log
            .read(&StreamId::new(Report::TYPE, report_id))
            .await?;
        let mut state = Report::default();
        let mut previous: Option<&RecordedEvent> = None;
        for e in history
            .iter()
            .take_while(|e| e.position() <= event.position())
        {
            let decoded = ReportEvent::from_parts_ref(&e.envelope.event_type, &e.data)?;
            state.apply(&decoded);
            if e.position() < event.position() {
                previous = Some(e);
            }
        }
        if kind == "ASSIGNED"
            && previous.is_some_and(|p| {
                p.envelope.event_type == "AssignmentWithdrawn"
                    && p.envelope.command_id == event.envelope.command_id
            })
        {
            kind = "REASSIGNED";
        }
        let decoded = ReportEvent::from_parts_ref(&event.envelope.event_type, &event.data)?;
        let patrol_id = match &decoded {
            ReportEvent::ReportAssigned(e) => e.patrol_id,
            ReportEvent::PatrolNotified(e) => e.patrol_id,
            ReportEvent::SlaWarned(e) => e.patrol_id,
            ReportEvent::SlaBreached(e) => e.patrol_id,
            ReportEvent::SlaEscalated(e) => e.patrol_id,
            _ => return Ok(vec![]),
        };
        let (crew, supervisors) = audience(kind);
        let mut recipients: Vec<AccountId> = Vec::new();
        if crew {
            let (patrol, _) = self.app.load::<Patrol>(patrol_id.as_uuid()).await?;
            recipients.extend(patrol.officer_ids.iter().copied());
        }
        if supervisors {
            let (station, _) = self.app.load::<Station>(state.station_id.as_uuid()).await?;
            if station.sla_policy.unwrap_or_default().notify_supervisors {
                let ids = precinct_readmodel::queries::station_supervisors(
                    &self.pool,
                    state.station_id.as_uuid(),
                    SUPERVISORS_MAX,
                )
                .await?;
                for id in ids.into_iter().map(AccountId::new) {
                    if !recipients.contains(&id) {
                        recipients.push(id);
                    }
                }
            }
        }
        let mut rows = Vec::new();
        for account in &recipients {
            let (devices, _) = self.app.load::<Devices>(account.as_uuid()).await?;
            for d in &devices.devices {
                rows.push(NewNotification {
                    device_id: d.id.as_uuid(),
                    account_id: account.as_uuid(),
                    report_id,
                    kind,
                    priority: state.priority.as_str().to_owned(),
                });
            }
        }
        Ok(rows)
    }

    /// A sender: sends `device`'s due notifications in log order, then ends (the scan
    /// starts it again when more are due).
    async fn send_due(&self, device: Uuid, shutdown: CancellationToken) {
        let mut client = PinnedClient::default();
        while !shutdown.is_cancelled() {
            let row = match outbox::next_due(&self.pool, device).await {
                Ok(Some(row)) => row,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(device = %device, error = %e, "cannot read the push outbox");
                    return;
                }
            };
            if let Err(e) = self.send_one(&row, &mut client, &shutdown).await {
                tracing::warn!(device = %device, position = row.position, error = %e, "push notification interrupted");
                return;
            }
        }
    }

    async fn send_one(
        &self,
        row: &OutboxRow,
        client: &mut PinnedClient,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let (device, position) = (row.device_id, row.position);
        let age = chrono::Utc::now() - row.occurred_at;
        if age.to_std().is_ok_and(|a| a > self.config.ttl) {
            outbox::finish(&self.pool, device, position, "EXPIRED", false, None, None).await?;
            metrics::counter!("precinct_push_attempts_total", "outcome" => "expired").increment(1);
            return Ok(());
        }
        let (devices, _) = self.app.load::<Devices>(row.account_id).await?;
        // Removed, or erased with its owner (the endpoint no longer opens).
        let Some(how) = devices.get(DeviceId::new(device)).and_then(Reachable::of) else {
            outbox::drop_device(&self.pool, device).await?;
            return Ok(());
        };
        let vapid = match (&how, &self.config.vapid) {
            (Reachable::WebPush { .. }, None) => {
                let error = "Web Push is not configured (PRECINCT_VAPID_PRIVATE_KEY)";
                outbox::finish(
                    &self.pool,
                    device,
                    position,
                    "DEAD",
                    false,
                    Some(error),
                    None,
                )
                .await?;
                return Ok(());
            }
            (_, vapid) => vapid.as_ref(),
        };
        let mut payload = serde_json::json!({
            "report_id": row.report_id,
            "kind": row.kind,
            "priority": row.priority,
            "position": row.position,
        });
        // A gateway serves many devices: it is told which one (the id its owner got
        // on registration) to forward to.
        if let Reachable::Gateway { .. } = how {
            payload["device_id"] = serde_json::json!(device);
        }
        let payload = serde_json::to_vec(&payload)?;
        let started = Instant::now();
        let result = match self.config.targets.check(how.url()).await {
            Err(reason) => Err(Failure::new(None, format!("endpoint refused: {reason}"))),
            Ok(target) => {
                let send = async {
                    match (&how, vapid) {
                        (Reachable::WebPush { endpoint, keys }, Some(vapid)) => {
                            let message =
                                message(vapid, endpoint, keys, &payload, self.config.ttl)?;
                            client
                                .send_push(&self.config, &target, endpoint, message)
                                .await
                        }
                        (Reachable::WebPush { .. }, None) => {
                            Err(Failure::new(None, "Web Push is not configured".into()))
                        }
                        (Reachable::Gateway { url, secret }, _) => {
                            let id = crate::webhooks::message_id(
                                device,
                                u64::try_from(position).unwrap_or(0),
                            );
                            let timestamp = chrono::Utc::now().timestamp();
                            let signature = crate::webhooks::sign(
                                std::slice::from_ref(secret),
                                &id,
                                timestamp,
                                &payload,
                            );
                            let signed = Signed {
                                message_id: &id,
                                timestamp,
                                signature: &signature,
                            };
                            client
                                .send_gateway(&self.config, &target, url, &signed, &payload)
                                .await
                        }
                    }
                };
                // Shutdown does not wait for a slow push service: the attempt is
                // abandoned unrecorded and sent again by the next deliverer.
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return Ok(()),
                    result = send => result,
                }
            }
        };
        let latency = started.elapsed();
        match result {
            Ok(status) => {
                tracing::debug!(device = %device, position, ?latency, "push notification delivered");
                metrics::counter!("precinct_push_attempts_total", "outcome" => "delivered")
                    .increment(1);
                outbox::finish(
                    &self.pool,
                    device,
                    position,
                    "DELIVERED",
                    true,
                    None,
                    Some(i32::from(status)),
                )
                .await?;
            }
            // A push service's 404 or 410 means the subscription expired; a gateway's
            // 404 is more likely a routing mistake on its side than a device that is
            // gone: only its 410 removes the device.
            Err(f) if how.gone(f.status) => {
                let status = f.status.unwrap_or(410);
                tracing::info!(device = %device, status, "push subscription expired; removing the device");
                metrics::counter!("precinct_push_attempts_total", "outcome" => "gone").increment(1);
                outbox::finish(
                    &self.pool,
                    device,
                    position,
                    "GONE",
                    true,
                    Some(&f.error),
                    Some(i32::from(status)),
                )
                .await?;
                outbox::drop_device(&self.pool, device).await?;
                devices::expire(
                    &self.app,
                    AccountId::new(row.account_id),
                    DeviceId::new(device),
                    status,
                )
                .await?;
            }
            Err(f) => {
                let attempts = row.attempts + 1;
                let http_status = f.status.map(i32::from);
                if attempts >= i32::try_from(self.config.max_attempts).unwrap_or(i32::MAX) {
                    metrics::counter!("precinct_push_attempts_total", "outcome" => "dead")
                        .increment(1);
                    outbox::finish(
                        &self.pool,
                        device,
                        position,
                        "DEAD",
                        true,
                        Some(&f.error),
                        http_status,
                    )
                    .await?;
                } else {
                    metrics::counter!("precinct_push_attempts_total", "outcome" => "retrying")
                        .increment(1);
                    // A push service that asked for time (429/503 with Retry-After,
                    // RFC 8030 §8.4) gets at least that long.
                    let pause = self
                        .retry_pause(attempts)
                        .max(f.retry_after.unwrap_or_default());
                    let at = chrono::Utc::now()
                        + chrono::Duration::from_std(pause).unwrap_or(chrono::Duration::MAX);
                    outbox::retry_later(&self.pool, device, position, at, &f.error, http_status)
                        .await?;
                }
                tracing::info!(device = %device, position, attempts, error = %f.error, "push notification failed");
            }
        }
        Ok(())
    }

    /// The pause after the `attempts`-th failed attempt: doubling from `retry_first`, at
    /// most `retry_max`, jittered into its upper half.
    fn retry_pause(&self, attempts: i32) -> Duration {
        use rand::Rng as _;
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        let full = self
            .config
            .retry_first
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.config.retry_max);
        full.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }
}

/// How a device is reached, opened from the log: `None` once its owner is erased.
enum Reachable {
    WebPush { endpoint: String, keys: PushKeys },
    Gateway { url: String, secret: String },
}

impl Reachable {
    fn of(d: &Device) -> Option<Self> {
        match d.kind {
            DeviceKind::WebPush => d
                .subscription()
                .map(|(endpoint, keys)| Reachable::WebPush { endpoint, keys }),
            DeviceKind::Gateway => d
                .gateway()
                .map(|(url, secret)| Reachable::Gateway { url, secret }),
        }
    }

    /// Whether an answer with `status` says the device is gone for good.
    fn gone(&self, status: Option<u16>) -> bool {
        match self {
            Reachable::WebPush { .. } => matches!(status, Some(404 | 410)),
            Reachable::Gateway { .. } => status == Some(410),
        }
    }

    fn url(&self) -> &str {
        match self {
            Reachable::WebPush { endpoint, .. } => endpoint,
            Reachable::Gateway { url, .. } => url,
        }
    }
}

/// A Web Push message for one subscription: the payload encrypted (aes128gcm) and the
/// VAPID signature for the endpoint's origin.
fn message(
    vapid: &Vapid,
    endpoint: &str,
    keys: &PushKeys,
    payload: &[u8],
    ttl: Duration,
) -> Result<web_push::WebPushMessage, Failure> {
    let info = web_push::SubscriptionInfo::new(endpoint, keys.p256dh.as_str(), keys.auth.as_str());
    // The audience is the endpoint's origin, port included (RFC 8292 §2).
    let origin = url::Url::parse(endpoint)
        .map(|u| u.origin().ascii_serialization())
        .map_err(|_| Failure::new(None, "the endpoint is not a URL".into()))?;
    let mut signature = web_push::VapidSignatureBuilder::from_base64(&vapid.private_key, &info)
        .map_err(|_| Failure::new(None, "the VAPID key cannot sign".into()))?;
    signature.add_claim("aud", origin);
    signature.add_claim("sub", vapid.subject.as_str());
    let signature = signature
        .build()
        .map_err(|_| Failure::new(None, "the VAPID signature cannot be built".into()))?;
    let mut builder = web_push::WebPushMessageBuilder::new(&info);
    builder.set_ttl(u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX));
    builder.set_urgency(web_push::Urgency::High);
    builder.set_vapid_signature(signature);
    builder.set_payload(web_push::ContentEncoding::Aes128Gcm, payload);
    builder.build().map_err(|_| {
        Failure::new(
            None,
            "the payload cannot be encrypted for these keys".into(),
        )
    })
}

impl PinnedClient {
    /// A device gateway's notification: the JSON payload, signed as Standard Webhooks
    /// say (the same scheme as the webhooks, under the device's own secret).
    async fn send_gateway(
        &mut self,
        config: &PushConfig,
        target: &Target,
        url: &str,
        signed: &Signed<'_>,
        body: &[u8],
    ) -> Result<u16, Failure> {
        let response = self
            .post_signed(config.timeout, "Precinct-Push/1", target, url, signed, body)
            .await?;
        answer(response)
    }

    async fn send_push(
        &mut self,
        config: &PushConfig,
        target: &Target,
        endpoint: &str,
        message: web_push::WebPushMessage,
    ) -> Result<u16, Failure> {
        let client = self.for_target(config.timeout, "Precinct-Push/1", target)?;
        let mut request = client.post(endpoint).header("TTL", message.ttl.to_string());
        if let Some(urgency) = message.urgency {
            request = request.header("Urgency", urgency.to_string());
        }
        if let Some(payload) = message.payload {
            request = request
                .header("Content-Encoding", payload.content_encoding.to_str())
                .header("Content-Type", "application/octet-stream");
            for (name, value) in payload.crypto_headers {
                request = request.header(name, value);
            }
            request = request.body(payload.content);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::of_request(&e, config.timeout))?;
        answer(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_the_desks_request_and_sla_events_notify_and_nothing_else_does() {
        assert_eq!(trigger("ReportAssigned"), Some("ASSIGNED"));
        assert_eq!(trigger("PatrolNotified"), Some("NOTIFY"));
        assert_eq!(trigger("SlaWarned"), Some("SLA_WARNING"));
        assert_eq!(trigger("SlaBreached"), Some("SLA_BREACH"));
        assert_eq!(trigger("SlaEscalated"), Some("SLA_ESCALATION"));
        for other in [
            "ReportSubmitted",
            "AssignmentAccepted",
            "NoteAdded",
            "AssignmentWithdrawn",
        ] {
            assert_eq!(trigger(other), None, "{other}");
        }
    }

    #[test]
    fn the_crew_hears_of_its_work_and_supervisors_of_the_service_level() {
        assert_eq!(audience("ASSIGNED"), (true, false));
        assert_eq!(audience("NOTIFY"), (true, false));
        assert_eq!(audience("SLA_WARNING"), (true, true));
        assert_eq!(audience("SLA_BREACH"), (false, true));
        assert_eq!(audience("SLA_ESCALATION"), (false, true));
    }

    #[test]
    fn a_vapid_key_parses_to_its_public_key_and_a_bad_one_is_refused() {
        // RFC 8292's example key pair is not published raw; this one is the web-push
        // crate's documented example private key.
        let v = Vapid::parse(
            "IQ9Ur0ykXoHS9gzfYX0aBjy9lvdrjx_PFUXmie9YRcY",
            "mailto:ops@precinct.test",
        )
        .expect("parses");
        let public = precinct_domain::device::base64url(&v.public_key).expect("base64url");
        assert_eq!(public.len(), 65);
        assert_eq!(public[0], 4);
        assert!(
            !format!("{v:?}").contains("IQ9Ur0yk"),
            "the key is redacted"
        );
        assert!(Vapid::parse("not a key", "mailto:ops@precinct.test").is_err());
        assert!(Vapid::parse("IQ9Ur0ykXoHS9gzfYX0aBjy9lvdrjx_PFUXmie9YRcY", "ops").is_err());
    }
}
