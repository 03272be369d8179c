//! Logs and traces, set up in this one place.
//!
//! - Logs go to stderr: readable text when stderr is a terminal (`make run`), JSON lines
//!   otherwise (a container, a pipe, a log shipper); `PRECINCT_LOG_FORMAT=json|text`
//!   chooses explicitly.
//!   Each line of an HTTP request carries the request's `http` span: method, route,
//!   path, `request_id`, `correlation_id`, actor and status.
//! - Filter with `RUST_LOG` (default `info,sqlx=warn,async_nats=warn`).
//! - Traces are exported over OTLP (HTTP/protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` is
//!   set (e.g. `http://127.0.0.1:4318`; `OTEL_SERVICE_NAME`, default `precinct`, and the
//!   other standard `OTEL_*` variables apply) — in builds with the `otlp` cargo feature,
//!   which is off by default to keep the OpenTelemetry stack out of ordinary builds.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

const DEFAULT_FILTER: &str = "info,sqlx=warn,async_nats=warn";

/// What must outlive the process's work: flushes pending spans when shut down.
#[derive(Debug)]
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered (call after the runtime has stopped).
    pub fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("OTLP trace export did not shut down cleanly: {e}");
            }
        }
    }
}

fn otlp_endpoint() -> Option<String> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").ok())
        .filter(|v| !v.trim().is_empty())
}

/// Whether log lines are JSON: as configured, else text for a person at a terminal and
/// JSON for everything else.
fn json_logs(configured: Option<&str>, terminal: bool) -> anyhow::Result<bool> {
    match configured.map(str::trim) {
        None | Some("") => Ok(!terminal),
        Some("json") => Ok(true),
        Some("text") => Ok(false),
        Some(other) => anyhow::bail!("PRECINCT_LOG_FORMAT={other:?}: expected json or text"),
    }
}

/// Installs the global subscriber. Call once, before the async runtime starts.
pub fn init() -> anyhow::Result<Telemetry> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let json = json_logs(
        std::env::var("PRECINCT_LOG_FORMAT").ok().as_deref(),
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    )?;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed()
    } else {
        fmt.boxed()
    };
    let endpoint = otlp_endpoint();

    #[cfg(feature = "otlp")]
    {
        let (otel, provider) = match &endpoint {
            Some(_) => {
                let (layer, provider) = otlp::layer()?;
                (Some(layer), Some(provider))
            }
            None => (None, None),
        };
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt)
            .with(otel)
            .try_init()?;
        if let Some(endpoint) = &endpoint {
            tracing::info!(%endpoint, "exporting traces over OTLP");
        }
        Ok(Telemetry { provider })
    }

    #[cfg(not(feature = "otlp"))]
    {
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt)
            .try_init()?;
        if endpoint.is_some() {
            tracing::warn!(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set, but this build has no OTLP export \
                 (build with `--features otlp`)"
            );
        }
        Ok(Telemetry {})
    }
}

#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    /// A layer that sends every span to the OTLP collector, batched on the SDK's own
    /// thread (so it works before, during and after the async runtime).
    pub fn layer<S>() -> anyhow::Result<(Box<dyn Layer<S> + Send + Sync>, SdkTracerProvider)>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        // Endpoint, headers, timeout and compression come from the standard OTEL_* variables.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("precinct");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("precinct");
        let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
        Ok((layer, provider))
    }
}

#[cfg(test)]
mod tests {
    use super::json_logs;

    #[test]
    fn logs_are_text_at_a_terminal_json_elsewhere_unless_configured() {
        assert_eq!(json_logs(None, true).ok(), Some(false));
        assert_eq!(json_logs(None, false).ok(), Some(true));
        assert_eq!(json_logs(Some("json"), true).ok(), Some(true));
        assert_eq!(json_logs(Some("text"), false).ok(), Some(false));
        assert!(json_logs(Some("yaml"), false).is_err());
    }
}
