//! Each projection's progress against its source, for the operator's `projections
//! status` and the chaos checker: [`precinct_readmodel::status()`] fed with the log's
//! head and event times, and the request log's against its own stream.

use precinct_eventlog::EventLog;
use precinct_readmodel::{ProjectionStatus, QueryError};
use sqlx::PgPool;

use crate::checkpoint;
use crate::error::ProjectionError;
use crate::request_log;

/// The status of every event projection (in [`precinct_readmodel::EVENT_PROJECTIONS`]
/// order).
pub async fn status(
    pool: &PgPool,
    log: &EventLog,
) -> Result<Vec<ProjectionStatus>, ProjectionError> {
    let head = log.head().await?;
    precinct_readmodel::status(pool, head, |p| log.occurred_at(p))
        .await
        .map_err(from_query)
}

/// The status of the request-log projection against its stream.
pub async fn request_log_status(
    pool: &PgPool,
    log: &EventLog,
) -> Result<ProjectionStatus, ProjectionError> {
    let head = log.requests_head().await?;
    checkpoint::ensure(pool, request_log::NAME).await?;
    let mut one = precinct_readmodel::status_of(pool, &[request_log::NAME], head, |seq| {
        log.request_time(seq)
    })
    .await
    .map_err(from_query)?;
    one.pop().ok_or_else(|| ProjectionError::Failed {
        projection: request_log::NAME.into(),
        position: 0,
        error: "no status".into(),
    })
}

fn from_query(e: QueryError) -> ProjectionError {
    match e {
        QueryError::Db(db) => ProjectionError::Db(db),
        other => ProjectionError::Failed {
            projection: "status".into(),
            position: 0,
            error: other.to_string(),
        },
    }
}
