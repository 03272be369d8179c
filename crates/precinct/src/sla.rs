//! The SLA worker (ADR 0035): every scan, for each clock (accept, respond, resolve) it
//! records the warnings and then the breaches that are due under each report's station
//! policy for its priority (else the server's defaults), and escalates the assignments
//! still unaccepted after their breach as the station's policy says (requeue or
//! reassign). Each is an event appended through a command of
//! [`precinct_app::commands::sla`] whose command id derives from (report, kind, start
//! of the clock): several workers (or a restarted one) record each once.
//!
//! Telling people is not this worker's job: the push deliverer (`push.rs`) and the
//! webhooks follow the events it appends.

use std::time::Duration;

use precinct_app::commands::sla::{self as commands, Escalated};
use precinct_app::App;
use precinct_domain::sla::SlaDefaults;
use precinct_domain::values::{EscalationAction, SlaKind};
use precinct_retry as backoff;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// The longest pause between two scans.
const MAX_INTERVAL: Duration = Duration::from_secs(1);

/// Most reports of one kind handled per scan.
const PER_SCAN: u32 = 200;

#[derive(Debug, Clone)]
pub struct SlaWorker {
    pub app: App,
    pub pool: PgPool,
    pub defaults: SlaDefaults,
}

impl SlaWorker {
    /// A tenth of the shortest default deadline, 200 ms to 1 s: a station's policy may
    /// set deadlines of seconds, so a scan (a few queries over the partial indexes of
    /// open assignments) runs at least every second and records a warning, breach or
    /// escalation within about a second of it falling due.
    fn interval(&self) -> Duration {
        let shortest = self.defaults.accept_secs.min(self.defaults.respond_secs);
        (Duration::from_secs(u64::from(shortest)) / 10)
            .clamp(Duration::from_millis(200), MAX_INTERVAL)
    }

    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "SLA scan failed");
            }
            if !backoff::pause(&shutdown, self.interval()).await {
                return;
            }
        }
    }

    /// One scan: records every warning and breach that is due and makes every escalation
    /// that is due; returns how many events-making commands it ran.
    #[tracing::instrument(skip(self))]
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let mut recorded = 0;
        for kind in SlaKind::ALL.iter().copied() {
            let label = kind.as_str().to_ascii_lowercase();
            let now = chrono::Utc::now();
            let warnings = precinct_readmodel::queries::sla_warning_candidates(
                &self.pool,
                kind,
                &self.defaults,
                now,
                PER_SCAN,
            )
            .await?;
            for due in warnings {
                let percent = u8::try_from(due.percent).unwrap_or(0);
                if commands::record_warning(
                    &self.app,
                    due.id,
                    kind,
                    secs(due.deadline_secs),
                    percent,
                )
                .await?
                {
                    recorded += 1;
                    metrics::counter!("precinct_sla_warnings_total", "kind" => label.clone())
                        .increment(1);
                }
            }
            let breaches = precinct_readmodel::queries::sla_breach_candidates(
                &self.pool,
                kind,
                &self.defaults,
                now,
                PER_SCAN,
            )
            .await?;
            for due in breaches {
                if commands::record_breach(&self.app, due.id, kind, secs(due.deadline_secs)).await?
                {
                    recorded += 1;
                    metrics::counter!("precinct_sla_breaches_total", "kind" => label.clone())
                        .increment(1);
                }
            }
        }
        let due = precinct_readmodel::queries::sla_escalation_candidates(
            &self.pool,
            chrono::Utc::now(),
            PER_SCAN,
        )
        .await?;
        for e in due {
            let Ok(action) = e.action.parse::<EscalationAction>() else {
                continue;
            };
            let candidates = match action {
                EscalationAction::Requeue => vec![],
                EscalationAction::Reassign => {
                    precinct_readmodel::queries::workload_snapshot(&self.pool, e.station_id).await?
                }
            };
            let done = commands::escalate_unaccepted(
                &self.app,
                e.id,
                action,
                secs(e.after_secs),
                &candidates,
            )
            .await?;
            let label = match done {
                Escalated::Nothing => continue,
                Escalated::Requeued => "requeue",
                Escalated::Reassigned(_) => "reassign",
            };
            recorded += 1;
            metrics::counter!("precinct_sla_escalations_total", "action" => label).increment(1);
        }
        Ok(recorded)
    }
}

fn secs(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}
