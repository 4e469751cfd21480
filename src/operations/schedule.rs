//! Scheduled pruning: with `--prune-older-than`, `serve` runs what `chronicle prune` does at startup
//! and then every `--prune-every`, archiving each run to its own file when `--prune-archive-dir` is set.
//! Replicas each run it; the deletes are idempotent, but one replica with the setting is enough.

use std::time::Duration;

use sea_orm::{DatabaseBackend, DatabaseConnection};

use crate::config::{DatabaseSettings, RetentionSettings};
use crate::database::connect;
use crate::retention::archive::Archive;
use crate::retention::{PruneOptions, cutoff, prune};

/// Spawns the pruning loop when `settings` asks for one; abort the handle to stop it.
pub fn spawn(
    db: DatabaseConnection,
    database: DatabaseSettings,
    settings: RetentionSettings,
) -> Option<tokio::task::JoinHandle<()>> {
    let age = settings.prune_older_than?;
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(settings.prune_every.max(Duration::from_secs(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = run_once(&db, &database, &settings, age).await {
                tracing::error!(error = %e, "scheduled prune failed");
            }
        }
    }))
}

async fn run_once(
    db: &DatabaseConnection,
    database: &DatabaseSettings,
    settings: &RetentionSettings,
    age: Duration,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let options = PruneOptions {
        cutoff: cutoff(age)?,
        history: settings.prune_history,
        batch_size: 1_000,
        trigger: "schedule",
    };
    let mut archive = match &settings.prune_archive_dir {
        Some(dir) => {
            let name = format!(
                "chronicle-prune-{}.ndjson.gz",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
            );
            Some(Archive::create(&dir.join(name))?)
        }
        None => None,
    };
    // On MySQL the retention mark is a session variable: it gets a connection of its own, closed
    // afterwards, so it never goes back to the server's pool.
    let outcome = if db.get_database_backend() == DatabaseBackend::MySql {
        let own = connect(&DatabaseSettings {
            max_connections: 1,
            ..database.clone()
        })
        .await?;
        let report = prune(&own, &options, archive.as_mut(), |_| {}).await;
        own.close().await?;
        report
    } else {
        prune(db, &options, archive.as_mut(), |_| {}).await
    };
    if let Some(archive) = archive {
        // Nothing pruned: no file.
        archive.discard_if_empty()?;
    }
    let report = outcome?;
    tracing::info!(
        audit_events = report.audit_events,
        history_records = report.history_total(),
        archive = report
            .archive
            .as_deref()
            .filter(|_| report.audit_events + report.history_total() > 0),
        "scheduled prune done"
    );
    Ok(())
}
