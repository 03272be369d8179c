//! The SLA worker: finds reports overdue to accept or to respond and records each
//! breach once as an `SlaBreached` event (audited and replayable like any change).
//!
//! The command id of a breach is derived from (report, kind, since), so several workers
//! (or a restarted one) record each breach once.

use std::time::Duration;

use precinct_app::{App, AppError};
use precinct_domain::report::{Report, ReportCommand};
use precinct_domain::values::SlaKind;
use precinct_eventlog::{Actor, CommandMeta};
use precinct_retry as backoff;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SLA_NS: Uuid = Uuid::from_u128(0x51a0_77e2_0b4c_4f1d_8e3a_c2d4_9f60_1b37);

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
                }
            }
        }
        Ok(recorded)
    }

    async fn record(&self, report_id: Uuid, kind: SlaKind, sla: Duration) -> anyhow::Result<bool> {
        let (report, _) = self.app.load::<Report>(report_id).await?;
        let Some(since) = report.sla_since(kind) else {
            return Ok(false);
        };
        let command_id = Uuid::new_v5(
            &SLA_NS,
            format!("{report_id}|{kind}|{}", since.timestamp_micros()).as_bytes(),
        );
        let meta = CommandMeta::new(command_id, Actor::System);
        let sla = chrono::Duration::from_std(sla)?;
        let result = precinct_app::run!(self.app, &meta, Report, AppError, report_id, |uow| {
            let at = uow.now();
            uow.execute::<Report>(report_id, ReportCommand::RecordSlaBreach { kind, sla, at })
                .await?;
            Ok(())
        });
        match result {
            Ok(out) => Ok(!out.duplicate),
            // Accepted meanwhile, or already recorded: nothing to do.
            Err(AppError::Domain { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
