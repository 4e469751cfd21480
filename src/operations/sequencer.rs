//! The verifiable log's background work in `serve`: every `--sequence-every-ms` the sequencer
//! appends committed history records to the log, and with `--checkpoint-key`, a checkpoint is signed
//! every `--checkpoint-every` when the log grew. Replicas each run it; the log's lock lets one
//! sequence at a time.
//!
//! How far back a run looks is tiered, so that its cost does not grow with the write rate times the
//! window: each tick reads every table on from the last record this server appended to the log, and
//! a few seconds behind it (concurrent transactions commit out of their records' order; a table it
//! has not appended to yet: from the newest sequenced record less those seconds); once a minute it
//! looks back over the whole `--sequencer-window`, for a transaction that committed late; at start-up
//! and hourly, at every record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;
use sea_orm_history::Registry;
use sea_orm_history::log::{CheckpointKey, Cursors, SequenceOptions, make_checkpoint, sequence_on};

use crate::config::LogSettings;

/// How often a full sweep looks at every record.
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(3_600);
/// How often a run looks back over the whole window.
const WINDOW_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How far back every other run looks.
const RECENT: chrono::Duration = chrono::Duration::seconds(5);

/// Spawns the loop unless sequencing is off; abort the handle to stop it.
pub fn spawn(
    db: DatabaseConnection,
    registry: &'static Registry,
    settings: LogSettings,
    key: Option<Arc<CheckpointKey>>,
) -> Option<tokio::task::JoinHandle<()>> {
    if settings.sequence_every_ms == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(settings.sequence_every_ms));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_sweep: Option<Instant> = None;
        let mut last_window_sweep: Option<Instant> = None;
        let mut cursors = Cursors::default();
        // Where a sweep that another replica's run interrupted (the log was busy) had got to.
        let mut interrupted_sweep: Option<Cursors> = None;
        let mut last_checkpoint: Option<Instant> = None;
        let window = chrono::Duration::from_std(settings.sequencer_window)
            .unwrap_or(chrono::Duration::minutes(10));
        loop {
            ticks.tick().await;
            let full_sweep = last_sweep.is_none_or(|t| t.elapsed() >= FULL_SWEEP_EVERY);
            let window_sweep = last_window_sweep.is_none_or(|t| t.elapsed() >= WINDOW_SWEEP_EVERY);
            let options = SequenceOptions {
                window: if window_sweep {
                    window
                } else {
                    Ord::min(window, RECENT)
                },
                full_sweep,
                batch: settings.sequencer_batch,
            };
            // A sweep starts from the window or the beginning, or goes on from where it was
            // interrupted (starting over would read again, every time it loses the log's lock to
            // another replica, every record it had got past); every other run from the cursors.
            let sweeping = window_sweep || full_sweep;
            let mut run = if sweeping {
                interrupted_sweep.take().unwrap_or_default()
            } else {
                cursors.clone()
            };
            let outcome = sequence_on(&db, registry, &options, &mut run).await;
            if sweeping && outcome.as_ref().is_ok_and(|report| report.busy) {
                interrupted_sweep = Some(run.clone());
            }
            cursors.merge(run);
            match outcome {
                Ok(report) => {
                    if full_sweep && !report.busy {
                        last_sweep = Some(Instant::now());
                    }
                    if window_sweep && !report.busy {
                        last_window_sweep = Some(Instant::now());
                    }
                    if report.appended > 0 {
                        tracing::debug!(
                            appended = report.appended,
                            size = report.size,
                            "sequenced"
                        );
                    }
                }
                Err(e) => tracing::error!(error = %e, "sequencing the log failed"),
            }
            if let Some(key) = &key
                && last_checkpoint.is_none_or(|t| t.elapsed() >= settings.checkpoint_every)
            {
                match make_checkpoint(&db, key).await {
                    Ok(checkpoint) => {
                        last_checkpoint = Some(Instant::now());
                        tracing::debug!(size = checkpoint.size, "checkpoint signed");
                    }
                    Err(e) => tracing::error!(error = %e, "signing a checkpoint failed"),
                }
            }
        }
    }))
}
