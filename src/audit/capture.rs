//! Log capture for audit events. While a mutation runs inside [`scope`], every `tracing` event at or
//! above the scope's level that the task emits is also appended, formatted, to the scope's lines, by
//! [`CaptureLayer`] (installed in the process's subscriber by [`crate::telemetry`]). A panic inside the
//! scope is recorded there too, with its message and backtrace, by the hook [`install_panic_hook`]
//! sets, so that the audit event can say what happened.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The most lines kept per mutation, and the longest line.
const MAX_LINES: usize = 100;
const MAX_LINE_CHARS: usize = 2_000;

/// What one scope collected.
#[derive(Debug, Default)]
pub struct Captured {
    /// Formatted log lines, oldest first.
    pub lines: Vec<String>,
    /// A panic's message and backtrace, if one happened.
    pub panic: Option<(String, String)>,
}

struct Capture {
    level: LevelFilter,
    captured: Mutex<Captured>,
}

tokio::task_local! {
    static CAPTURE: Arc<Capture>;
}

/// Runs `future`, collecting the log lines at or above `level` it emits (and a panic's details).
pub async fn scope<F: Future>(level: LevelFilter, future: F) -> (F::Output, Captured) {
    let capture = Arc::new(Capture {
        level,
        captured: Mutex::new(Captured::default()),
    });
    let output = CAPTURE.scope(capture.clone(), future).await;
    let captured = match capture.captured.lock() {
        Ok(mut c) => std::mem::take(&mut *c),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    (output, captured)
}

/// Runs `future` like [`scope`] but returns the panic as an `Err` instead of unwinding further.
pub async fn scope_catching<F: Future>(
    level: LevelFilter,
    future: F,
) -> (Result<F::Output, ()>, Captured) {
    use futures_util::FutureExt;
    let (output, captured) =
        scope(level, std::panic::AssertUnwindSafe(future).catch_unwind()).await;
    (output.map_err(|_| ()), captured)
}

fn with_capture(f: impl FnOnce(&Capture)) {
    // Outside a scope (or on another task) there is nothing to do.
    let _ = CAPTURE.try_with(|c| f(c));
}

/// The layer that copies events into the current scope.
pub struct CaptureLayer;

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        with_capture(|capture| {
            let metadata = event.metadata();
            if capture.level < *metadata.level() {
                return;
            }
            let mut line = format!("{} {}:", metadata.level(), metadata.target());
            event.record(&mut LineVisitor(&mut line));
            let line: String = line.chars().take(MAX_LINE_CHARS).collect();
            if let Ok(mut captured) = capture.captured.lock()
                && captured.lines.len() < MAX_LINES
            {
                captured.lines.push(line);
            }
        });
    }
}

struct LineVisitor<'a>(&'a mut String);

impl Visit for LineVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

/// Chains a panic hook that records a panic's message and backtrace into the current scope (the
/// previous hook still runs). Idempotent.
pub fn install_panic_hook() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            with_capture(|capture| {
                let message = super::panic_message(info.payload());
                let location = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let backtrace = std::backtrace::Backtrace::force_capture().to_string();
                if let Ok(mut captured) = capture.captured.lock() {
                    captured.panic = Some((format!("{message}{location}"), backtrace));
                }
            });
            previous(info);
        }));
    });
}
