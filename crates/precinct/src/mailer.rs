//! The mailer (ADR 0033): follows the report events of the log and e-mails a report's
//! reporter, at the address they gave for it, on assignment, resolution, closure,
//! rejection (with the public reason) and every public update; and the active
//! supervisors of the report's station on an SLA breach or escalation when the
//! station's policy says to notify them (ADR 0035, [`Alert`]) — over SMTP with
//! `lettre`, when `PRECINCT_SMTP_URL` is set. Runs in the processes of role `webhooks`
//! (the outbound role).
//!
//! - One active mailer across processes: the advisory lock of
//!   `precinct_projections::while_leading`; others stand by, and this one stops and
//!   stands by again if its lock's session ends.
//! - The ledger (`precinct_readmodel::mail_ledger`) holds the last log position
//!   handled; it moves past a mail only once the mail was sent or failed for good, so a
//!   restart or failover repeats at most the mail in flight (same `Message-ID`), and
//!   never mails the history again. A mailer that starts with no ledger begins at the
//!   log's head (nothing is mailed of what happened before mail was configured).
//! - The address is read from the log through the vault at each send (stream
//!   `reporter_contact.<report>`, or the supervisor's `account.<id>`); never cached,
//!   never taken from PostgreSQL. Once its data subject is erased it reads as nothing
//!   and nothing is sent.
//! - An SLA alert is one message per supervisor (no one sees another's address), each
//!   its own ledger row and `Message-ID`: one refused address fails only its own mail,
//!   and a restart resends only the recipients not done yet.
//! - What a mail says comes from the reporter view only: the status, the public reason
//!   of a rejection, the text of a public update. Never a note, a patrol, an officer or
//!   an author ([`News`]).
//! - Failures: the SMTP server cannot be reached → retried (exponential, jittered)
//!   until it can, holding later mails back; a temporary refusal (4xx) → retried up to
//!   `max_attempts`, then `FAILED`; a permanent refusal (5xx) → `FAILED` at once. A
//!   failed mail is recorded and the mailer moves on.

use std::time::{Duration, Instant};

use futures::StreamExt;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use precinct_domain::account::Account;
use precinct_domain::report::{Report, ReportEvent};
use precinct_domain::reporter_contact::ReporterContact;
use precinct_domain::station::Station;
use precinct_domain::values::{EscalationAction, Role, SlaKind};
use precinct_domain::{Aggregate, DomainEvent};
use precinct_eventlog::{EventLog, ReadError, RecordedEvent, StreamId};
use precinct_readmodel::mail_ledger::{self as ledger, Attempt};
use precinct_retry::Backoff;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The advisory lock's name (one active mailer).
const LOCK: &str = "reporter-mailer";
/// The cursor is written at least this often while nothing is mailed.
const CURSOR_FLUSH: Duration = Duration::from_millis(500);

/// The mailer's settings (`PRECINCT_SMTP_*`, docs/operations.md).
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `PRECINCT_SMTP_URL`: `smtp://host:port` (plain, or `?tls=required` for
    /// STARTTLS), `smtps://host:port` (TLS); credentials as `user:password@`.
    pub url: String,
    /// `PRECINCT_SMTP_FROM`: the sender, `Name <address>` or an address.
    pub from: Mailbox,
    /// `PRECINCT_SMTP_TIMEOUT_MS` (10 000): one SMTP command.
    pub timeout: Duration,
    /// `PRECINCT_SMTP_MAX_ATTEMPTS` (10): temporary refusals of one mail before it is
    /// `FAILED`.
    pub max_attempts: u32,
    /// `PRECINCT_SMTP_RETRY_FIRST_MS` (1 000) and `PRECINCT_SMTP_RETRY_MAX_MS`
    /// (300 000): the first and the longest pause between attempts.
    pub retry_first: Duration,
    pub retry_max: Duration,
}

impl MailConfig {
    /// The settings for `url` and `from`, with the default timings; refuses a URL or
    /// a sender `lettre` cannot use.
    pub fn new(url: &str, from: &str) -> anyhow::Result<Self> {
        let config = Self {
            url: url.to_owned(),
            from: from
                .parse()
                .map_err(|_| anyhow::anyhow!("PRECINCT_SMTP_FROM is not an e-mail address"))?,
            timeout: Duration::from_secs(10),
            max_attempts: 10,
            retry_first: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
        };
        config.transport()?;
        Ok(config)
    }

    fn transport(&self) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(&self.url)
            .map_err(|_| {
                anyhow::anyhow!(
                    "PRECINCT_SMTP_URL is not an smtp:// or smtps:// URL lettre can use"
                )
            })?
            .timeout(Some(self.timeout))
            .build())
    }
}

/// What a reporter is told of a report event (`None`: nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum News {
    Assigned,
    Resolved,
    Closed,
    /// With the public reason (or the neutral default), never the justification.
    Rejected(String),
    /// The text of a public update, never its author.
    Update(String),
}

impl News {
    pub fn of(event: &ReportEvent) -> Option<Self> {
        Some(match event {
            ReportEvent::ReportAssigned(_) => News::Assigned,
            ReportEvent::ReportResolved(_) => News::Resolved,
            ReportEvent::ClosureApproved(_) | ReportEvent::ReportMarkedDuplicate(_) => News::Closed,
            ReportEvent::ReportRejected(r) => News::Rejected(
                r.public_reason
                    .clone()
                    .unwrap_or_else(|| precinct_api::views::DEFAULT_REJECTION_REASON.to_owned()),
            ),
            ReportEvent::PublicUpdatePosted(u) => News::Update(u.message.clone()),
            _ => return None,
        })
    }

    /// The ledger's name of it.
    pub fn kind(&self) -> &'static str {
        match self {
            News::Assigned => "ASSIGNED",
            News::Resolved => "RESOLVED",
            News::Closed => "CLOSED",
            News::Rejected(_) => "REJECTED",
            News::Update(_) => "UPDATE",
        }
    }

    /// The subject and the plain-text body of the mail about report `report`.
    pub fn text(&self, report: Uuid) -> (String, String) {
        let (headline, detail) = match self {
            News::Assigned => (
                "assigned",
                "A patrol has been assigned to your report.".to_owned(),
            ),
            News::Resolved => ("resolved", "Your report has been resolved.".to_owned()),
            News::Closed => ("closed", "Your report has been closed.".to_owned()),
            News::Rejected(reason) => (
                "not taken further",
                format!("Your report will not be taken further.\n\n{reason}"),
            ),
            News::Update(message) => (
                "an update",
                format!("An update on your report:\n\n{message}"),
            ),
        };
        let subject = format!("Your report {}: {headline}", short(report));
        let body = format!(
            "{detail}\n\nReport: {report}\n\nYou receive this because you asked for e-mail about \
             this report when you submitted it.\n"
        );
        (subject, body)
    }
}

/// What a station's supervisors are e-mailed of an SLA event when the station's policy
/// says to notify them (ADR 0035): a breach and an escalation — what needs someone to
/// act. Warnings go to the crew's and supervisors' devices, not to their inboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    Breach(SlaKind),
    Escalation(SlaKind, EscalationAction),
}

impl Alert {
    pub fn of(event: &ReportEvent) -> Option<Self> {
        match event {
            ReportEvent::SlaBreached(e) => Some(Alert::Breach(e.kind)),
            ReportEvent::SlaEscalated(e) => Some(Alert::Escalation(e.kind, e.action)),
            _ => None,
        }
    }

    /// The ledger's name of it.
    pub fn kind(&self) -> &'static str {
        match self {
            Alert::Breach(_) => "SLA_BREACH",
            Alert::Escalation(..) => "SLA_ESCALATION",
        }
    }

    /// The subject and plain-text body about report `report` of priority `priority`:
    /// the report's id, priority and what happened — nothing of the reporter, no
    /// officer (the console shows the rest to whoever may see it).
    pub fn text(&self, report: Uuid, priority: &str) -> (String, String) {
        let (headline, detail) = match self {
            Alert::Breach(kind) => (
                format!("{} deadline missed", kind.as_str().to_lowercase()),
                format!(
                    "The {} deadline of this report has passed.",
                    kind.as_str().to_lowercase()
                ),
            ),
            Alert::Escalation(_, action) => (
                "escalated".to_owned(),
                match action {
                    EscalationAction::Requeue => {
                        "The assignment was not accepted in time: it was withdrawn and the \
                         report is back in the queue."
                    }
                    EscalationAction::Reassign => {
                        "The assignment was not accepted in time: it was withdrawn and the \
                         report was assigned to another patrol."
                    }
                }
                .to_owned(),
            ),
        };
        let subject = format!("SLA: report {} ({priority}): {headline}", short(report));
        let body = format!(
            "{detail}\n\nReport: {report}\nPriority: {priority}\n\nYou receive this as a \
             supervisor of the report's station, whose SLA policy notifies its supervisors.\n"
        );
        (subject, body)
    }
}

/// One mail: its ledger kind and recipient (`""`: the reporter; a supervisor's account
/// id), its address, subject and body.
struct Mail {
    kind: &'static str,
    recipient: String,
    to: String,
    subject: String,
    body: String,
}

/// Most supervisors of one station mailed about one event.
const SUPERVISORS_MAX: u32 = 50;

fn short(report: Uuid) -> String {
    report.simple().to_string()[..8].to_owned()
}

/// The `Message-ID` of the mail of log position `position` about `report`: the same on
/// every attempt and after a restart, so a repeat is recognisable.
pub fn message_id(report: Uuid, position: u64) -> String {
    format!(
        "<{}@precinct>",
        Uuid::new_v5(&report, &position.to_be_bytes()).simple()
    )
}

/// The `Message-ID` of the mail of `position` about `report` to `recipient` (a
/// supervisor's account id; `""`, the reporter, gives [`message_id`]).
pub fn message_id_to(report: Uuid, position: u64, recipient: &str) -> String {
    if recipient.is_empty() {
        return message_id(report, position);
    }
    let mut name = position.to_be_bytes().to_vec();
    name.extend_from_slice(recipient.as_bytes());
    format!("<{}@precinct>", Uuid::new_v5(&report, &name).simple())
}

/// The mailer of one process.
#[derive(Clone)]
pub struct Mailer {
    /// The log, with the vault's opener (addresses are sealed).
    pub log: EventLog,
    pub pool: PgPool,
    pub config: MailConfig,
}

/// How one mail ended.
enum Outcome {
    /// Sent, failed for good, or nothing to send: move on.
    Done,
    /// Shutdown came first: the mail stays where it was.
    Stop,
}

impl Mailer {
    /// Runs until `shutdown`: waits to be the active mailer, then follows the log.
    /// It stands by again if its lock's session ends (ADR 0006).
    pub async fn run(self, shutdown: CancellationToken) {
        let pool = self.pool.clone();
        precinct_projections::while_leading(&pool, LOCK, &shutdown, |stop| self.mail(stop)).await;
    }

    /// Mails while this process is the active mailer, until `shutdown`.
    async fn mail(&self, shutdown: CancellationToken) {
        let transport = match self.config.transport() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "mailer: no SMTP transport; nothing will be mailed");
                return;
            }
        };
        let mut pause =
            Backoff::new(Duration::from_millis(200), Duration::from_secs(5)).until(&shutdown);
        loop {
            match self.follow(&transport, &shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "mailer interrupted; resuming from its cursor");
                    if !pause.pause().await {
                        return;
                    }
                }
            }
        }
    }

    /// Follows the report events from the cursor until shutdown (Ok) or a failure.
    async fn follow(
        &self,
        transport: &AsyncSmtpTransport<Tokio1Executor>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let head = self.log.head().await?;
        let start = ledger::cursor(&self.pool, i64::try_from(head).unwrap_or(i64::MAX)).await?;
        let mut position = u64::try_from(start).unwrap_or(0);
        let mut written = position;
        let mut flushed = Instant::now();
        let mut events = self.log.subscribe_to(position + 1, &[Report::TYPE]).await?;
        let mut tick = tokio::time::interval(CURSOR_FLUSH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let item = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    // Idle: what was passed over without a mail is written now and then.
                    if written < position {
                        ledger::advance(&self.pool, i64::try_from(position).unwrap_or(i64::MAX))
                            .await?;
                        written = position;
                        flushed = Instant::now();
                    }
                    continue;
                }
                item = events.next() => item,
            };
            let event = match item {
                None => anyhow::bail!("the log subscription ended"),
                Some(Ok(event)) => event,
                Some(Err(ReadError::Corrupt {
                    position: p,
                    reason,
                })) => {
                    tracing::error!(position = p, %reason, "mailer: undecodable event skipped");
                    position = position.max(p);
                    continue;
                }
                Some(Err(e)) => return Err(e.into()),
            };
            if event.position() <= position {
                continue;
            }
            let mailed = match self.handle(transport, &event, shutdown).await? {
                Some(Outcome::Stop) => break,
                Some(Outcome::Done) => true,
                None => false,
            };
            position = event.position();
            // After a mail at once (a restart must not send it again); otherwise now
            // and then (a restart looks at a few events again, and mails nothing twice).
            if mailed || flushed.elapsed() >= CURSOR_FLUSH {
                ledger::advance(&self.pool, i64::try_from(position).unwrap_or(i64::MAX)).await?;
                written = position;
                flushed = Instant::now();
            }
        }
        if written < position {
            ledger::advance(&self.pool, i64::try_from(position).unwrap_or(i64::MAX)).await?;
        }
        Ok(())
    }

    /// The mail of one event, if it makes one and it has someone to go to (`None`:
    /// nothing to mail).
    async fn handle(
        &self,
        transport: &AsyncSmtpTransport<Tokio1Executor>,
        event: &RecordedEvent,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<Outcome>> {
        let decoded = match ReportEvent::from_parts_ref(&event.envelope.event_type, &event.data) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(position = event.position(), error = %e, "mailer: undecodable report event skipped");
                return Ok(None);
            }
        };
        let report = event.envelope.aggregate_id;
        let position = event.position();
        let mails = if let Some(news) = News::of(&decoded) {
            let Some(address) = self.address(report).await? else {
                return Ok(None);
            };
            let (subject, body) = news.text(report);
            vec![Mail {
                kind: news.kind(),
                recipient: String::new(),
                to: address,
                subject,
                body,
            }]
        } else if let Some(alert) = Alert::of(&decoded) {
            let state: Report = self.fold(report, Some(position)).await?;
            let (subject, body) = alert.text(report, state.priority.as_str());
            self.supervisors(state.station_id.as_uuid())
                .await?
                .into_iter()
                .map(|(account, to)| Mail {
                    kind: alert.kind(),
                    recipient: account.to_string(),
                    to,
                    subject: subject.clone(),
                    body: body.clone(),
                })
                .collect()
        } else {
            return Ok(None);
        };
        if mails.is_empty() {
            return Ok(None);
        }
        let p = i64::try_from(position).unwrap_or(i64::MAX);
        if mails.iter().any(|m| !m.recipient.is_empty()) {
            let accounts: Vec<Uuid> = mails
                .iter()
                .filter_map(|m| m.recipient.parse().ok())
                .collect();
            ledger::give_up_others(&self.pool, report, p, &accounts).await?;
        }
        for mail in mails {
            // A restart in the middle of an alert's recipients resends only the others.
            if ledger::done(&self.pool, report, p, &mail.recipient).await? {
                continue;
            }
            if let Outcome::Stop = self
                .send(transport, report, position, mail, shutdown)
                .await?
            {
                return Ok(Some(Outcome::Stop));
            }
        }
        Ok(Some(Outcome::Done))
    }

    /// Sends `mail` of log position `position` about `report`, retrying as the module
    /// says, and records each attempt in the ledger.
    async fn send(
        &self,
        transport: &AsyncSmtpTransport<Tokio1Executor>,
        report: Uuid,
        position: u64,
        mail: Mail,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Outcome> {
        let (kind, recipient) = (mail.kind, mail.recipient.as_str());
        let record = |status: &'static str, error: Option<String>| async move {
            let outcome = match status {
                "SENT" => "sent",
                "FAILED" => "failed",
                _ => "retrying",
            };
            metrics::counter!("precinct_mail_attempts_total", "outcome" => outcome).increment(1);
            ledger::record(
                &self.pool,
                &Attempt {
                    report,
                    position: i64::try_from(position).unwrap_or(i64::MAX),
                    recipient,
                    kind,
                    status,
                    error: error.as_deref(),
                    at: chrono::Utc::now(),
                },
            )
            .await
        };
        let Ok(to) = mail.to.parse::<Mailbox>() else {
            record("FAILED", Some("the address cannot be mailed".into())).await?;
            tracing::info!(%report, position, recipient, "mailer: an address lettre cannot mail; not sent");
            return Ok(Outcome::Done);
        };
        let message = Message::builder()
            .from(self.config.from.clone())
            .to(to)
            .subject(mail.subject)
            .message_id(Some(message_id_to(report, position, recipient)))
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)?;
        let mut pause =
            Backoff::new(self.config.retry_first, self.config.retry_max).until(shutdown);
        loop {
            // Shutdown does not wait for a slow server: the mail is left unrecorded and
            // the next active mailer sends it again, under the same Message-ID.
            let result = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(Outcome::Stop),
                result = transport.send(message.clone()) => result,
            };
            let error = match result {
                Ok(_) => {
                    record("SENT", None).await?;
                    return Ok(Outcome::Done);
                }
                Err(e) => e,
            };
            // A permanent refusal, or an address this server cannot take at all (not
            // ASCII, and the server has no SMTPUTF8): failed for good, not retried. Other
            // client errors (no STARTTLS, no usable authentication) are the connection's
            // and are retried like an unreachable server: nothing is lost to them.
            let unsendable = error.is_client() && !mail.to.is_ascii();
            if error.is_permanent() || unsendable {
                let code = error.status().map_or(String::new(), |c| format!(" {c}"));
                let what = if unsendable {
                    "cannot be sent to this address".to_owned()
                } else {
                    format!("refused{code}")
                };
                record("FAILED", Some(what)).await?;
                tracing::info!(%report, position, recipient, "mailer: a mail failed for good");
                return Ok(Outcome::Done);
            }
            let (class, counts) = if error.is_transient() {
                let code = error.status().map_or(String::new(), |c| format!(" {c}"));
                (format!("temporarily refused{code}"), true)
            } else if error.is_timeout() {
                ("timed out".to_owned(), false)
            } else {
                ("the SMTP server cannot be reached".to_owned(), false)
            };
            let attempts = record("RETRYING", Some(class.clone())).await?;
            if counts && attempts >= i32::try_from(self.config.max_attempts).unwrap_or(i32::MAX) {
                ledger::give_up(
                    &self.pool,
                    report,
                    i64::try_from(position).unwrap_or(i64::MAX),
                    recipient,
                )
                .await?;
                metrics::counter!("precinct_mail_attempts_total", "outcome" => "gave_up")
                    .increment(1);
                tracing::info!(%report, position, error = %class, attempts, "mailer: mail given up");
                return Ok(Outcome::Done);
            }
            tracing::info!(%report, position, error = %class, attempts, "mailer: mail not sent yet; retrying");
            if !pause.pause().await {
                return Ok(Outcome::Stop);
            }
        }
    }

    /// The active supervisors of `station` (account id, address) when its SLA policy
    /// says to notify them (ADR 0035): candidates from the accounts read model (at most
    /// [`SUPERVISORS_MAX`]), each checked against its account as the log holds it now,
    /// opened through the vault — active, still a SUPERVISOR of this station, with an
    /// address (none once erased) — so a read model behind the log never mails a
    /// deactivated, moved or erased account.
    async fn supervisors(&self, station: Uuid) -> anyhow::Result<Vec<(Uuid, String)>> {
        let policy: Station = self.fold(station, None).await?;
        if !policy.sla_policy.unwrap_or_default().notify_supervisors {
            return Ok(vec![]);
        }
        let candidates =
            precinct_readmodel::queries::station_supervisors(&self.pool, station, SUPERVISORS_MAX)
                .await?;
        if candidates.len() >= SUPERVISORS_MAX as usize {
            tracing::warn!(%station, max = SUPERVISORS_MAX, "mailer: more supervisors than an SLA alert is mailed to");
        }
        let mut out = Vec::with_capacity(candidates.len());
        for id in candidates {
            let account: Account = self.fold(id, None).await?;
            let here = account.station_id.is_some_and(|s| s.as_uuid() == station);
            if let (true, true, true, Some(email)) = (
                account.active,
                account.role == Role::Supervisor,
                here,
                account.email,
            ) {
                out.push((id, email.as_str().to_owned()));
            }
        }
        Ok(out)
    }

    /// Aggregate `id` folded from the log (up to `upto`, if given), opened through the
    /// vault.
    async fn fold<A: Aggregate>(&self, id: Uuid, upto: Option<u64>) -> anyhow::Result<A> {
        let events = self.log.read(&StreamId::new(A::TYPE, id)).await?;
        let mut state = A::default();
        for e in events
            .iter()
            .take_while(|e| upto.is_none_or(|u| e.position() <= u))
        {
            state.apply(&A::Event::from_parts_ref(&e.envelope.event_type, &e.data)?);
        }
        Ok(state)
    }

    /// The address the reporter of `report` gave for news of it, read through the
    /// vault now (`None`: none given, or erased).
    async fn address(&self, report: Uuid) -> anyhow::Result<Option<String>> {
        let contact: ReporterContact = self.fold(report, None).await?;
        Ok(contact.email)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use precinct_domain::ids::{AccountId, PatrolId};
    use precinct_domain::report::{
        NoteAdded, PublicUpdatePosted, ReportAssigned, ReportRejected, ReportResolved,
    };

    use super::*;

    #[test]
    fn supervisors_are_alerted_of_breaches_and_escalations_never_of_warnings() {
        use precinct_domain::report::{SlaBreached, SlaEscalated, SlaWarned};
        let (report, patrol, now) = (Uuid::from_u128(7), Uuid::from_u128(9), Utc::now());
        let breach: ReportEvent = SlaBreached {
            kind: SlaKind::Respond,
            patrol_id: PatrolId::new(patrol),
            since: now,
            deadline: now,
            at: now,
        }
        .into();
        let alert = Alert::of(&breach).expect("a breach alerts");
        assert_eq!(alert.kind(), "SLA_BREACH");
        let (subject, body) = alert.text(report, "HIGH");
        assert_eq!(
            subject,
            "SLA: report 00000000 (HIGH): respond deadline missed"
        );
        assert!(body.contains(&report.to_string()) && !body.contains(&patrol.to_string()));
        let escalated: ReportEvent = SlaEscalated {
            kind: SlaKind::Accept,
            action: EscalationAction::Reassign,
            patrol_id: PatrolId::new(patrol),
            to_patrol_id: Some(PatrolId::new(Uuid::from_u128(10))),
            since: now,
            at: now,
        }
        .into();
        let alert = Alert::of(&escalated).expect("an escalation alerts");
        assert_eq!(alert.kind(), "SLA_ESCALATION");
        let (_, body) = alert.text(report, "CRITICAL");
        assert!(body.contains("assigned to another patrol"), "{body}");
        assert!(
            !body.contains(&patrol.to_string())
                && !body.contains("00000000-0000-0000-0000-00000000000a")
        );
        let warned: ReportEvent = SlaWarned {
            kind: SlaKind::Accept,
            patrol_id: PatrolId::new(patrol),
            since: now,
            deadline: now,
            at: now,
        }
        .into();
        assert_eq!(Alert::of(&warned), None);
        assert_eq!(
            News::of(&breach),
            None,
            "the reporter is not told of the SLA"
        );
    }

    #[test]
    fn a_mail_tells_the_reporter_view_and_nothing_of_the_officers_work() {
        let report = Uuid::from_u128(7);
        let officer = Uuid::from_u128(8);
        let patrol = Uuid::from_u128(9);
        let secret = "Internal: suspect is the neighbour";
        let events: Vec<ReportEvent> = vec![
            ReportAssigned {
                patrol_id: PatrolId::new(patrol),
                auto: None,
                at: Utc::now(),
            }
            .into(),
            ReportResolved {
                patrol_id: PatrolId::new(patrol),
                resolution_notes: secret.into(),
                at: Utc::now(),
            }
            .into(),
            PublicUpdatePosted {
                update_id: Uuid::from_u128(10).into(),
                message: "Officers are on their way.".into(),
                author_id: AccountId::new(officer),
                at: Utc::now(),
            }
            .into(),
            ReportRejected {
                justification: secret.into(),
                by: AccountId::new(officer),
                at: Utc::now(),
                public_reason: None,
            }
            .into(),
        ];
        let kinds: Vec<&str> = events
            .iter()
            .filter_map(News::of)
            .map(|n| n.kind())
            .collect();
        assert_eq!(kinds, ["ASSIGNED", "RESOLVED", "UPDATE", "REJECTED"]);
        for news in events.iter().filter_map(News::of) {
            let (subject, body) = news.text(report);
            for leak in [secret.to_owned(), officer.to_string(), patrol.to_string()] {
                assert!(
                    !subject.contains(&leak) && !body.contains(&leak),
                    "{leak}: {body}"
                );
            }
            assert!(body.contains(&report.to_string()));
        }
        let (_, body) = News::of(&events[2]).expect("an update").text(report);
        assert!(body.contains("Officers are on their way."));
        let (_, body) = News::of(&events[3]).expect("a rejection").text(report);
        assert!(body.contains(precinct_api::views::DEFAULT_REJECTION_REASON));
        let note: ReportEvent = NoteAdded {
            note_id: Uuid::from_u128(11).into(),
            note: secret.into(),
            author_id: AccountId::new(officer),
            at: Utc::now(),
        }
        .into();
        assert_eq!(News::of(&note), None, "a note is never mailed");
    }

    #[test]
    fn the_message_id_depends_on_report_and_position_only() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(message_id(a, 7), message_id(a, 7));
        assert_ne!(message_id(a, 7), message_id(a, 8));
        assert_ne!(message_id(a, 7), message_id(b, 7));
    }

    #[test]
    fn settings_refuse_what_lettre_cannot_use() {
        assert!(
            MailConfig::new("smtp://127.0.0.1:2525", "Precinct <noreply@precinct.test>").is_ok()
        );
        assert!(MailConfig::new("http://127.0.0.1:2525", "noreply@precinct.test").is_err());
        assert!(MailConfig::new("smtp://127.0.0.1:2525", "not an address").is_err());
    }
}
