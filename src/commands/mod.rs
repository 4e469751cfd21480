//! The command-line tasks besides `serve`, each a function `main.rs` calls with its settings:
//! [`verify`] checks every hash chain (and, against a checkpoint, the verifiable log); [`checkpoint`]
//! signs a checkpoint of the log; [`export`] writes history or events as NDJSON or CSV; [`migrate`] applies schema and data
//! migrations; [`prune`] removes old audit events and history; [`token`] issues a JWT or a provenance
//! token for trying jwt mode. `migrate`, `prune` and `verify` are audited calls (`FUNCTION` events).

pub mod checkpoint;
pub mod export;
pub mod migrate;
pub mod prune;
pub mod token;
pub mod verify;

use std::fmt::Display;
use std::future::Future;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::audit::audited::Audited;
use crate::config::DatabaseSettings;

/// Runs a command's `work` as an audited call named `action` (a `FUNCTION` event, app `chronicle`,
/// user `actor`: `--actor`, else `$USER`), recorded in the database of `database`. When that database
/// cannot be reached (or is not migrated), the work runs unrecorded: it then reports why itself.
pub(crate) async fn audited<T, E, F>(
    action: &str,
    actor: Option<&str>,
    args: serde_json::Value,
    database: &DatabaseSettings,
    work: F,
) -> Result<T, E>
where
    T: Serialize,
    E: Display,
    F: Future<Output = Result<T, E>>,
{
    match crate::database::connect_migrated(database).await {
        Ok(db) => {
            let mut call = Audited::new(action).app("chronicle").args(args);
            if let Some(actor) = actor {
                call = call.user(actor);
            }
            let result = call.run(&db, work).await;
            db.close().await.ok();
            result
        }
        Err(e) => {
            tracing::debug!(error = %e, "{action} runs without its audit event");
            work.await
        }
    }
}

/// A progress bar on stderr of `total` steps drawn with `template` (hidden with `quiet`; indicatif
/// also hides it when stderr is not a terminal).
///
/// # Errors
/// A malformed template (a programming error).
pub(crate) fn progress_bar(
    total: u64,
    quiet: bool,
    template: &str,
) -> Result<ProgressBar, indicatif::style::TemplateError> {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    bar.set_style(ProgressStyle::with_template(template)?.progress_chars("=> "));
    Ok(bar)
}
