//! Logging: the process's `tracing` subscriber. Lines filtered by `RUST_LOG` go to stdout (stderr for
//! commands other than `serve`), as text
//! (coloured on a terminal) or as one JSON object per line (`--log-format json`); in text mode
//! access-log lines ([`ACCESS_TARGET`]) are written bare, in the combined log format, so log tools
//! read them as they are. [`CaptureLayer`] copies the events a mutation emits into its audit event.

use std::fmt::Write as _;
use std::io::IsTerminal;

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

/// Installs the subscriber for the `chronicle` binary: logs to stdout for `serve`, to stderr for the
/// other commands (whose stdout is their report).
pub fn init(format: LogFormat, to_stderr: bool) {
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
        .try_init();
    install_panic_hook();
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
