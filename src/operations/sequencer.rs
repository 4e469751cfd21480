//! The verifiable log's background work in `serve`: every `--sequence-every-ms` the sequencer
//! appends committed history records to the log (a full sweep at start-up and hourly, else only the
//! recent ones), and with `--checkpoint-key`, a checkpoint is signed every `--checkpoint-every` when
//! the log grew. Replicas each run it; the log's lock lets one sequence at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;
use sea_orm_history::Registry;
use sea_orm_history::log::{CheckpointKey, SequenceOptions, make_checkpoint, sequence};

use crate::config::LogSettings;

/// How often a full sweep looks at every record.
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(3_600);

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
        let mut last_checkpoint: Option<Instant> = None;
        let window = chrono::Duration::from_std(settings.sequencer_window)
            .unwrap_or(chrono::Duration::minutes(10));
        loop {
            ticks.tick().await;
            let full_sweep = last_sweep.is_none_or(|t| t.elapsed() >= FULL_SWEEP_EVERY);
            let options = SequenceOptions {
                window,
                full_sweep,
                ..SequenceOptions::default()
            };
            match sequence(&db, registry, &options).await {
                Ok(report) => {
                    if full_sweep && !report.busy {
                        last_sweep = Some(Instant::now());
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
