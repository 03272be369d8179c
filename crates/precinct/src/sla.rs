//! The SLA worker: finds reports overdue to accept or to respond and records each
//! breach once as an `SlaBreached` event (audited and replayable like any change)
//! through the command [`precinct_app::commands::sla::record_breach`], whose command id
//! derives from (report, kind, since): several workers (or a restarted one) record each
//! breach once.

use std::time::Duration;

use precinct_app::App;
use precinct_domain::values::SlaKind;
use precinct_retry as backoff;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct SlaWorker {
    pub app: App,
    pub pool: PgPool,
    pub accept: Duration,
    pub respond: Duration,
}

impl SlaWorker {
    fn interval(&self) -> Duration {
        (self.accept.min(self.respond) / 10)
            .clamp(Duration::from_millis(200), Duration::from_secs(15))
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

    /// One scan: records every breach that is due; returns how many it recorded.
    #[tracing::instrument(skip(self))]
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let mut recorded = 0;
        for (kind, sla) in [
            (SlaKind::Accept, self.accept),
            (SlaKind::Respond, self.respond),
        ] {
            let due = precinct_readmodel::queries::sla_breach_candidates(
                &self.pool,
                kind,
                sla.as_secs() as i64,
                chrono::Utc::now(),
                200,
            )
            .await?;
            for report_id in due {
                if self.record(report_id, kind, sla).await? {
                    recorded += 1;
                    let kind = match kind {
                        SlaKind::Accept => "accept",
                        SlaKind::Respond => "respond",
                    };
                    metrics::counter!("precinct_sla_breaches_total", "kind" => kind).increment(1);
                }
            }
        }
        Ok(recorded)
    }

    async fn record(&self, report_id: Uuid, kind: SlaKind, sla: Duration) -> anyhow::Result<bool> {
        Ok(precinct_app::commands::sla::record_breach(&self.app, report_id, kind, sla).await?)
    }
}
