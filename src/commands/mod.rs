//! The command-line tasks besides `serve`, each a function `main.rs` calls with its settings:
//! [`verify`] checks every hash chain (and, against a checkpoint, the verifiable log); [`checkpoint`]
//! signs a checkpoint of the log; [`export`] writes history or events as NDJSON or CSV; [`prune`] removes old audit events and history; [`token`] issues a
//! JWT or a provenance token for trying jwt mode.

pub mod checkpoint;
pub mod export;
pub mod prune;
pub mod token;
pub mod verify;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
