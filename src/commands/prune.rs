//! `chronicle prune --older-than 90d [--history] [--archive FILE.ndjson.gz | --dry-run]`: remove old
//! audit events (and old history records, never an object's latest), archiving each batch first, with
//! a progress bar on a terminal, then print what was removed; with `--dry-run`, count what would be
//! removed and remove nothing. Exit status 0 when done, 2 when it could not run (what
//! was removed before the error is archived and stays removed).

use std::io::Write;
use std::process::ExitCode;

use crate::config::{DatabaseSettings, PruneSettings};
use crate::database::connect_migrated;
use crate::retention::archive::Archive;
use crate::retention::{PruneOptions, PruneReport, candidates, cutoff, dry_run, prune};

/// Runs the prune and prints its report to stdout.
pub async fn run(settings: &PruneSettings) -> ExitCode {
    let args = serde_json::json!({
        "olderThanSecs": settings.older_than.as_secs(), "history": settings.history,
        "archive": settings.archive.as_ref().map(|p| p.display().to_string()),
        "batchSize": settings.batch_size, "dryRun": settings.dry_run,
    });
    match super::audited(
        "prune",
        settings.actor.as_deref(),
        args,
        &settings.database,
        run_prune(settings),
    )
    .await
    {
        Ok(report) => {
            print_report(&report, &mut std::io::stdout().lock());
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "prune failed");
            ExitCode::from(2)
        }
    }
}

async fn run_prune(settings: &PruneSettings) -> Result<PruneReport, Box<dyn std::error::Error>> {
    let options = PruneOptions {
        cutoff: cutoff(settings.older_than)?,
        history: settings.history,
        batch_size: settings.batch_size,
        trigger: "command",
    };
    let mut archive = match &settings.archive {
        Some(path) => Some(
            Archive::create(path)
                .map_err(|e| format!("cannot create the archive {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let result = prune_with_bar(settings, &options, archive.as_mut()).await;
    if let Some(archive) = archive {
        match &result {
            Ok(_) => {
                archive.finish()?;
            }
            // Nothing written: no half-made file to refuse the next try.
            Err(_) => archive.discard_if_empty()?,
        }
    }
    result
}

async fn prune_with_bar(
    settings: &PruneSettings,
    options: &PruneOptions,
    archive: Option<&mut Archive>,
) -> Result<PruneReport, Box<dyn std::error::Error>> {
    // A pool of one: on MySQL the retention mark is a session variable.
    let db = connect_migrated(&DatabaseSettings {
        max_connections: 1,
        ..settings.database.clone()
    })
    .await?;
    let total = candidates(&db, options).await.map_err(|e| e.detailed())?;
    let bar = super::progress_bar(
        total,
        settings.quiet,
        if settings.dry_run {
            "counting [{bar:40}] {pos}/{len} rows ({per_sec}, {eta})"
        } else {
            "pruning [{bar:40}] {pos}/{len} rows ({per_sec}, {eta})"
        },
    )?;
    let report = if settings.dry_run {
        dry_run(&db, options, |n| bar.inc(n)).await
    } else {
        prune(&db, options, archive, |n| bar.inc(n)).await
    };
    bar.finish_and_clear();
    db.close().await?;
    Ok(report.map_err(|e| e.detailed())?)
}

/// What was removed (or, in a dry run, would be), one line per table, and where it was archived.
fn print_report(report: &PruneReport, out: &mut impl Write) {
    let (pruned, removed) = if report.dry_run {
        ("a dry run: would prune", "would be removed")
    } else {
        ("pruned", "removed")
    };
    let mut lines = vec![
        format!(
            "{pruned} everything older than {}",
            report.cutoff.to_rfc3339()
        ),
        format!("{:<20} {:>12}", "audit_event", report.audit_events),
    ];
    for (entity, records) in &report.history_records {
        lines.push(format!(
            "{:<20} {:>12}",
            format!("{}_history", entity.to_lowercase()),
            records
        ));
    }
    if !report.history_records.is_empty() {
        lines.push(format!(
            "{} history {} of {} {} {removed}; each object's latest record kept",
            report.history_total(),
            if report.history_total() == 1 {
                "record"
            } else {
                "records"
            },
            report.objects,
            if report.objects == 1 {
                "object"
            } else {
                "objects"
            },
        ));
    }
    if report.provenance_tokens > 0 {
        lines.push(format!(
            "{:<20} {:>12}",
            "provenance_token", report.provenance_tokens
        ));
    }
    lines.push(match &report.archive {
        Some(path) => format!("archived to {path}"),
        None if report.dry_run => "nothing removed".to_owned(),
        None => "no archive written".to_owned(),
    });
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
}
