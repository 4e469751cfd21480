//! Logging: the process's `tracing` subscriber. Lines filtered by `RUST_LOG` go to stdout (stderr for
//! commands other than `serve`), as text
//! (coloured on a terminal) or as one JSON object per line (`--log-format json`); in text mode
//! access-log lines ([`ACCESS_TARGET`]) are written bare, in the combined log format, so log tools
//! read them as they are. [`CaptureLayer`] copies the events a mutation emits into its audit event.
//! With `--otlp-endpoint`, spans (each request's, with the ids its history records and events keep)
//! are also exported to an OpenTelemetry collector over OTLP/HTTP; [`Telemetry::shutdown`] flushes
//! them before the process ends.

use std::fmt::Write as _;
use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::audit::capture::{CaptureLayer, install_panic_hook};
use crate::config::LogFormat;
use crate::operations::access::ACCESS_TARGET;

fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"))
}

/// What [`init`] installed that must be shut down: the OpenTelemetry exporter, when on.
#[must_use = "shut it down before exiting, or the last spans are lost"]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still queued and stops the exporter.
    pub fn shutdown(self) {
        if let Some(tracer) = self.tracer
            && let Err(e) = tracer.shutdown()
        {
            tracing::warn!(error = %e, "cannot flush the last spans to the OTLP endpoint");
        }
    }
}

/// The OTLP/HTTP traces URL of `endpoint`: as given when it names a path, else with `/v1/traces`
/// appended (the collector's base address, as `OTEL_EXPORTER_OTLP_ENDPOINT` has it).
///
/// # Errors
/// Not an `http://` URL (TLS is not built in: put a collector beside the server).
pub fn otlp_traces_url(endpoint: &str) -> Result<String, String> {
    let scheme = endpoint
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    let rest = match scheme.as_deref() {
        Some("http") => &endpoint["http://".len()..],
        Some("https") => {
            return Err(format!(
                "--otlp-endpoint {endpoint:?}: OTLP over TLS is not built in; run a collector beside \
                 the server and give its http:// address"
            ));
        }
        _ => {
            return Err(format!(
                "--otlp-endpoint {endpoint:?} is not a URL: give the collector's OTLP/HTTP address, \
                 like http://127.0.0.1:4318"
            ));
        }
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("--otlp-endpoint {endpoint:?} names no host"));
    }
    Ok(match rest.split_once('/') {
        Some((_, path)) if !path.is_empty() => endpoint.to_owned(),
        Some(_) => format!("{endpoint}v1/traces"),
        None => format!("{endpoint}/v1/traces"),
    })
}

/// The tracer provider exporting to `endpoint` in batches (on a thread of its own).
fn otlp_tracer(endpoint: &str) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::WithExportConfig;
    let url = otlp_traces_url(endpoint)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .with_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| format!("the OTLP exporter: {e}"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("chronicle")
                .build(),
        )
        .build())
}

/// Installs the subscriber for the `chronicle` binary: logs to stdout for `serve`, to stderr for the
/// other commands (whose stdout is their report); spans to `otlp_endpoint` when given.
///
/// # Errors
/// `otlp_endpoint` is not a usable OTLP/HTTP address.
pub fn init(
    format: LogFormat,
    to_stderr: bool,
    otlp_endpoint: Option<&str>,
) -> Result<Telemetry, String> {
    // An empty setting (`CHRONICLE_OTLP_ENDPOINT=`) is no setting.
    let tracer = otlp_endpoint
        .filter(|e| !e.trim().is_empty())
        .map(otlp_tracer)
        .transpose()?;
    let otel = tracer.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("chronicle"))
            .with_filter(LevelFilter::INFO)
    });
    let writer = move || -> Box<dyn std::io::Write> {
        if to_stderr {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    };
    let is_access = |meta: &tracing::Metadata<'_>| meta.target() == ACCESS_TARGET;
    let (text, access, json) = match format {
        LogFormat::Text => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(if to_stderr {
                        std::io::stderr().is_terminal()
                    } else {
                        std::io::stdout().is_terminal()
                    })
                    .with_filter(env_filter())
                    .with_filter(filter_fn(move |meta| !is_access(meta))),
            ),
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .event_format(MessageOnly)
                    .with_filter(env_filter())
                    .with_filter(filter_fn(is_access)),
            ),
            None,
        ),
        LogFormat::Json => (
            None,
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .json()
                    .with_current_span(false)
                    .with_filter(env_filter()),
            ),
        ),
    };
    let _ = tracing_subscriber::registry()
        .with(text)
        .with(access)
        .with(json)
        .with(CaptureLayer.with_filter(LevelFilter::INFO))
        .with(otel)
        .try_init();
    install_panic_hook();
    Ok(Telemetry { tracer })
}

/// Installs a subscriber that only captures (for servers spawned inside a test process); a no-op when
/// one is installed already.
pub fn init_for_tests() {
    let _ = tracing_subscriber::registry()
        .with(CaptureLayer.with_filter(LevelFilter::INFO))
        .try_init();
    install_panic_hook();
}

/// Writes an event's message and nothing else (access-log lines).
struct MessageOnly;

impl<S, N> FormatEvent<S, N> for MessageOnly
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut message = Message(String::new());
        event.record(&mut message);
        writeln!(writer, "{}", message.0)
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::otlp_traces_url;

    #[test]
    fn an_otlp_base_address_gets_the_traces_path_and_a_full_url_is_kept() {
        assert_eq!(
            otlp_traces_url("http://collector:4318").as_deref(),
            Ok("http://collector:4318/v1/traces")
        );
        assert_eq!(
            otlp_traces_url("http://collector:4318/").as_deref(),
            Ok("http://collector:4318/v1/traces")
        );
        assert_eq!(
            otlp_traces_url("http://collector:4318/custom/traces").as_deref(),
            Ok("http://collector:4318/custom/traces")
        );
        assert_eq!(
            otlp_traces_url("HTTP://collector:4318").as_deref(),
            Ok("HTTP://collector:4318/v1/traces")
        );
        assert!(otlp_traces_url("https://collector:4318").is_err());
        assert!(otlp_traces_url("collector:4318").is_err());
        assert!(otlp_traces_url("http:///v1/traces").is_err());
    }
}
