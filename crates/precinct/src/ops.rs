//! The operations listener of `precinct serve` (ADR 0025): plain HTTP on
//! `PRECINCT_OPS_ADDR`, serving only `GET /metrics`, `GET /health/live` and
//! `GET /health/ready` ([`precinct_api::ops::router`]), so that a process without the
//! HTTP API (`--roles projector,sla`) can be scraped and probed.
//!
//! It is not the API listener (no API route, no request log, no TLS: it is meant for the
//! cluster network, where the kubelet and Prometheus reach pods directly), nor the
//! readiness rules or the metrics (both in `precinct-api`).

use std::net::SocketAddr;

use anyhow::Context;
use precinct_api::AppState;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Binds `addr` and serves the operations routes over `state` until `shutdown`; the
/// bound address (the real port for port 0) and the serving task.
pub async fn listen(
    addr: SocketAddr,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (PRECINCT_OPS_ADDR)"))?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "operations listener (metrics, probes) listening");
    let app = precinct_api::ops::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .context("operations listener")
    });
    Ok((bound, task))
}
