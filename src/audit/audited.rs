//! Audited functions: any async Rust code — a CLI command, a background job, a script — recorded as
//! one `FUNCTION` event the way a mutation field is: its masked arguments, its result or error, the
//! log lines it emitted, a panic's message and backtrace, its duration, the user, app and assignation
//! of the change context it ran in (or that the caller names), and notes it adds while it runs. Wrap
//! a call in [`Audited`], or put [`audited`] on the function.
//!
//! ```no_run
//! # async fn example(db: &sea_orm::DatabaseConnection) -> Result<(), std::io::Error> {
//! use chronicle::audit::audited::{Audited, note};
//! let removed: u64 = Audited::new("cleanup")
//!     .user("ops")
//!     .args(serde_json::json!({"olderThanDays": 30, "token": "s3cret"})) // "token" is masked
//!     .run(db, async {
//!         note("started by cron");
//!         Ok::<_, std::io::Error>(42)
//!     })
//!     .await?;
//! # Ok(()) }
//! ```

use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sea_orm::DatabaseConnection;
use sea_orm_history::ChangeContext;
use serde::Serialize;
use serde_json::{Value as Json, json};
use tracing::level_filters::LevelFilter;

use super::{AuditKind, NewEvent, capture, mask, record};
use crate::config::DEFAULT_AUDIT_MASK;

/// `#[audited(db = …, action = "…", skip(…))]` on an async fn: each call recorded as
/// [`Audited`] records one (see the macro's own documentation).
pub use chronicle_macros::audited;

tokio::task_local! {
    static NOTES: Arc<Mutex<Vec<Json>>>;
}

/// The arguments [`audited`] records: each parameter under its name (a value that does not
/// serialize is recorded as its error).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct Args(serde_json::Map<String, Json>);

impl Args {
    /// No argument yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `value` as `name`.
    pub fn add(&mut self, name: &str, value: &impl Serialize) {
        let value = serde_json::to_value(value)
            .unwrap_or_else(|e| Json::String(format!("<not serializable: {e}>")));
        self.0.insert(name.to_owned(), value);
    }
}

/// Adds a note to the audited function running in this task (nothing happens outside one).
pub fn note(text: impl Into<String>) {
    note_json(Json::String(text.into()));
}

/// Adds a structured note to the audited function running in this task.
pub fn note_json(value: Json) {
    let _ = NOTES.try_with(|notes| {
        if let Ok(mut notes) = notes.lock() {
            notes.push(value);
        }
    });
}

/// One audited call: what it is named, with what arguments, on whose behalf.
#[derive(Clone, Debug)]
#[must_use]
pub struct Audited {
    action: String,
    args: Option<Json>,
    user: Option<String>,
    app: Option<String>,
    assignation_id: Option<String>,
    mask: Vec<String>,
    log_level: LevelFilter,
}

impl Audited {
    /// A call named `action` (the event's `action`).
    pub fn new(action: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            args: None,
            user: None,
            app: None,
            assignation_id: None,
            // The names masked unless [`Audited::mask`] says otherwise: `--audit-mask`'s default.
            mask: DEFAULT_AUDIT_MASK.map(String::from).to_vec(),
            log_level: LevelFilter::INFO,
        }
    }

    /// Its arguments (stored masked, in the event's `input`).
    pub fn args(mut self, args: impl Serialize) -> Self {
        self.args = serde_json::to_value(args).ok();
        self
    }

    /// The acting user (default: the change context's).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The app (default: the change context's).
    pub fn app(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into());
        self
    }

    /// The assignation (default: the change context's).
    pub fn assignation(mut self, id: impl Into<String>) -> Self {
        self.assignation_id = Some(id.into());
        self
    }

    /// The argument and result names to mask, at any depth (replacing the default list).
    pub fn mask(mut self, names: &[String]) -> Self {
        self.mask = names.to_vec();
        self
    }

    /// The least severe log level kept in the event (default `info`; `debug` and `trace` lines reach
    /// it only when the process's subscriber lets them through to [`capture::CaptureLayer`], which
    /// Chronicle's own installs at `info`).
    pub fn log_level(mut self, level: LevelFilter) -> Self {
        self.log_level = level;
        self
    }

    /// Runs `work`, then records its event on `db` (on its own, after `work` ended: a failure that
    /// rolled `work`'s transaction back still leaves its event). The result is returned as it was;
    /// a panic is recorded and then resumed. A failure to record is logged, never returned.
    ///
    /// Log lines and panics are captured by [`capture::CaptureLayer`], which must be in the
    /// process's `tracing` subscriber (Chronicle's [`crate::telemetry`] installs it). A call inside
    /// another audited call (or inside a mutation) keeps its own lines and notes: the outer event
    /// does not see them. Do not call it while holding a transaction on a one-connection pool
    /// (SQLite in memory): the event waits for a connection.
    ///
    /// # Errors
    /// Whatever `work` returns.
    pub async fn run<T, E, F>(self, db: &DatabaseConnection, work: F) -> Result<T, E>
    where
        T: Serialize,
        E: Display,
        F: Future<Output = Result<T, E>>,
    {
        use futures_util::FutureExt;
        capture::install_panic_hook();
        let context = ChangeContext::current();
        let notes = Arc::new(Mutex::new(Vec::new()));
        let at = sea_orm_history::now();
        let started = Instant::now();
        let (outcome, captured) = capture::scope(
            self.log_level,
            NOTES.scope(
                notes.clone(),
                std::panic::AssertUnwindSafe(work).catch_unwind(),
            ),
        )
        .await;
        let elapsed = started.elapsed();

        let mut event = NewEvent::new(AuditKind::Function, self.action.clone());
        // Stamped with its start, as a mutation's event is, so it sorts before what it wrote.
        event.at = at;
        event.duration_ms = Some(i32::try_from(elapsed.as_millis()).unwrap_or(i32::MAX));
        event.user = self
            .user
            .clone()
            .or_else(|| context.as_ref().and_then(|c| c.user.clone()));
        event.app = self
            .app
            .clone()
            .or_else(|| context.as_ref().and_then(|c| c.app.clone()));
        event.assignation_id = self
            .assignation_id
            .clone()
            .or_else(|| context.as_ref().map(|c| c.assignation.to_string()));
        event.input = self.args.clone().map(|mut args| {
            mask(&mut args, &self.mask);
            args
        });
        event.logs = captured.lines;
        let mut details = serde_json::Map::new();
        let notes = notes.lock().map(|n| n.clone()).unwrap_or_default();
        if !notes.is_empty() {
            details.insert("notes".into(), Json::Array(notes));
        }
        let result = match outcome {
            Ok(Ok(value)) => {
                event.output = serde_json::to_value(&value)
                    .ok()
                    .filter(|output| !output.is_null())
                    .map(|mut output| {
                        mask(&mut output, &self.mask);
                        output
                    });
                Ok(Ok(value))
            }
            Ok(Err(e)) => {
                event = event.failed(e.to_string());
                Ok(Err(e))
            }
            Err(payload) => {
                let (message, backtrace) = captured.panic.unwrap_or_else(|| {
                    (
                        super::panic_message(payload.as_ref()).to_owned(),
                        String::new(),
                    )
                });
                event = event.failed(format!("panicked: {message}"));
                details.insert(
                    "panic".into(),
                    json!({"message": message, "backtrace": backtrace}),
                );
                Err(payload)
            }
        };
        if !details.is_empty() {
            event = event.details(Json::Object(details));
        }
        if let Err(e) = record(db, event).await {
            tracing::error!(action = %self.action, error = %e, "cannot record an audited call's event");
        }
        match result {
            Ok(result) => result,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }
}
