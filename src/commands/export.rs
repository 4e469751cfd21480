//! `chronicle export history|events`: the rows the filters select, oldest first, as NDJSON or CSV,
//! to a new file or stdout, with a progress bar; memory stays flat however many rows. The export is
//! recorded as an `EXPORT` audit event (who, the filters, the row count, the output's SHA-256), which
//! is also printed on stderr.

use std::io::Write;
use std::process::ExitCode;

use tokio::sync::mpsc;

use crate::audit::AuditKind;
use crate::audit::query::EventFilter;
use crate::config::{ExportCommon, ExportSettings, ExportWhat};
use crate::database::connect_migrated;
use crate::export::{Export, HistoryFilter, Written, count, entity_named, event, write};

/// Runs the export.
pub async fn run(settings: &ExportSettings) -> ExitCode {
    match export(settings).await {
        Ok(written) => {
            eprintln!(
                "exported {} rows ({} bytes, sha256 {})",
                written.rows, written.bytes, written.sha256
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "export failed");
            ExitCode::FAILURE
        }
    }
}

async fn export(settings: &ExportSettings) -> Result<Written, Box<dyn std::error::Error>> {
    let (what, common) = match &settings.what {
        ExportWhat::History {
            entity: name,
            object_id,
            assignation_id,
            user,
            trace_id,
            common,
        } => (
            Export::History(HistoryFilter {
                entity: name.as_deref().map(entity_named).transpose()?,
                object_id: object_id.clone(),
                assignation_id: assignation_id.clone(),
                user: user.clone(),
                since: common.since,
                until: common.until,
                trace_id: trace_id
                    .as_deref()
                    .map(crate::export::trace_id)
                    .transpose()?,
            }),
            common,
        ),
        ExportWhat::Events {
            kind,
            action,
            user,
            app,
            trace_id,
            common,
        } => (
            Export::Events(EventFilter {
                kind: kind
                    .as_deref()
                    .map(|k| AuditKind::parse(k).ok_or(format!("{k} is not an audit kind")))
                    .transpose()?,
                action: action.clone(),
                user: user.clone(),
                app: app.clone(),
                since: common.since,
                until: common.until,
                trace_id: trace_id
                    .as_deref()
                    .map(crate::export::trace_id)
                    .transpose()?,
                ..EventFilter::default()
            }),
            common,
        ),
    };
    let ExportCommon {
        database,
        format,
        output,
        actor,
        quiet,
        ..
    } = common;
    let mut sink: Box<dyn Write + Send> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let db = connect_migrated(database).await?;
    let total = count(&db, &what).await?;
    let bar = super::progress_bar(
        total,
        *quiet,
        "{msg:>8} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta})",
    )?;
    bar.set_message(what.name());
    let (tx, mut rx) = mpsc::channel::<crate::export::Chunk>(8);
    let consumer = tokio::task::spawn_blocking(move || {
        while let Some(chunk) = rx.blocking_recv() {
            sink.write_all(&chunk?)?;
        }
        sink.flush()
    });
    let started = std::time::Instant::now();
    let outcome = write(&db, &what, *format, tx, |n| bar.inc(n)).await;
    let written = consumer.await?;
    bar.finish_and_clear();
    let outcome = match (outcome, written) {
        (Ok(w), Ok(())) => Ok(w),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(crate::error::AppError::internal(format!(
            "writing the export: {e}"
        ))),
    };
    let mut record = event(&what, *format, "cli", &outcome);
    record.duration_ms = Some(i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX));
    record.user = actor.clone();
    record.app = Some("chronicle".into());
    crate::audit::record(&db, record).await?;
    db.close().await?;
    Ok(outcome?)
}
