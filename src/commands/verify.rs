//! `chronicle verify`: recompute the hash chain of every object of every history table, with a progress
//! bar on a terminal, and print what was checked and every broken link. With `--checkpoint`, also
//! prove the history against that checkpoint of the verifiable log (kept outside the database): every
//! record it covers still there, unchanged and in place, and the log extending it; the first record
//! at fault is named. The exit status tells a script the answer: 0 when everything holds, 1 when
//! something does not, 2 when the check could not run (including a checkpoint that is not signed by
//! `--public-key`).

use std::io::Write;
use std::process::ExitCode;

use entity::HistoryEntity;
use sea_orm_history::log::{
    ArchivedRecords, LogVerification, VerifyOptions, parse_checkpoint, verify_checkpoint,
};
use sea_orm_history::verify::{TableReport, count_records, verify_table};
use sea_orm_history::{EntitySet, HistoryRow};

use crate::config::VerifySettings;
use crate::database::connect_migrated;

/// Runs the check and prints its report to stdout.
pub async fn run(settings: &VerifySettings) -> ExitCode {
    let args = serde_json::json!({
        "checkpoint": settings.checkpoint.as_ref().map(|p| p.display().to_string()),
        "publicKey": settings.public_key.as_ref().map(|p| p.display().to_string()),
        "archive": settings.archive.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    });
    match super::audited(
        "verify",
        settings.actor.as_deref(),
        args,
        &settings.database,
        check(settings),
    )
    .await
    {
        Ok(_) => ExitCode::SUCCESS,
        Err(Outcome::Broken(_)) => ExitCode::from(1),
        Err(Outcome::Failed(e)) => {
            tracing::error!(error = %e, "verify failed");
            ExitCode::from(2)
        }
    }
}

/// How a verification that did not succeed ended.
#[derive(Debug)]
enum Outcome {
    /// Something does not hold (what is in the report).
    Broken(String),
    /// The check could not run.
    Failed(Box<dyn std::error::Error>),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Broken(what) => write!(f, "the history does not hold: {what}"),
            Self::Failed(e) => write!(f, "the check could not run: {e}"),
        }
    }
}

/// Checks the chains, then the checkpoint if one is given; prints both reports; the audited result
/// says what was checked.
async fn check(settings: &VerifySettings) -> Result<serde_json::Value, Outcome> {
    let reports = verify(settings).await.map_err(Outcome::Failed)?;
    let chains_broken = print_report(&reports, &mut std::io::stdout().lock());
    let records: u64 = reports.iter().map(|(_, r)| r.records).sum();
    let broken: usize = reports.iter().map(|(_, r)| r.broken.len()).sum();
    let mut faults = Vec::new();
    if chains_broken {
        faults.push(format!("{broken} object(s) with a broken hash chain"));
    }
    let mut log = serde_json::Value::Null;
    if let Some(path) = &settings.checkpoint {
        let report = against_checkpoint(settings, path).await.map_err(|e| {
            faults.push(format!(
                "verifying against the checkpoint could not run: {e}"
            ));
            Outcome::Failed(faults.join("; ").into())
        })?;
        print_log_report(&report, &mut std::io::stdout().lock());
        if let Some(fault) = &report.fault {
            faults.push(format!("against the checkpoint: {fault}"));
        }
        log = serde_json::json!({
            "checkpointSize": report.checkpoint_size, "logSize": report.log_size,
            "checked": report.checked, "archived": report.archived, "pruned": report.pruned,
        });
    }
    if !faults.is_empty() {
        return Err(Outcome::Broken(faults.join("; ")));
    }
    Ok(serde_json::json!({"records": records, "brokenObjects": broken, "log": log}))
}

/// Proves the history against the checkpoint at `path`.
async fn against_checkpoint(
    settings: &VerifySettings,
    path: &std::path::Path,
) -> Result<LogVerification, Box<dyn std::error::Error>> {
    let note =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let public_key = match &settings.public_key {
        Some(key) => Some(
            std::fs::read_to_string(key).map_err(|e| format!("reading {}: {e}", key.display()))?,
        ),
        None => {
            tracing::warn!("no --public-key: the checkpoint's signature is not checked");
            None
        }
    };
    let checkpoint = parse_checkpoint(&note, public_key.as_deref())?;
    let registry = HistoryEntity::registry()?;
    let mut archive = ArchivedRecords::default();
    for file in &settings.archive {
        read_archive(registry, file, &mut archive)?;
    }
    let db = connect_migrated(&settings.database).await?;
    let bar = super::progress_bar(
        checkpoint.size,
        settings.quiet,
        "{msg:>10} [{bar:40}] {pos}/{len} log entries ({per_sec}, {eta})",
    )?;
    bar.set_message("log");
    let options = VerifyOptions {
        grace: chrono::Duration::from_std(settings.sequencer_window)?,
        archive: (!archive.is_empty()).then_some(&archive),
    };
    let report = verify_checkpoint(&db, registry, &checkpoint, &options, |n| bar.inc(n)).await?;
    bar.finish_and_clear();
    db.close().await?;
    Ok(report)
}

/// Adds the history records of a prune archive (`{"table": "<x>_history", "row": {...}}` lines).
fn read_archive(
    registry: &sea_orm_history::Registry,
    path: &std::path::Path,
    archive: &mut ArchivedRecords,
) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let lines = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file)).lines();
    for line in lines {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)?;
        let table = value["table"].as_str().unwrap_or_default();
        let Some(info) = registry
            .entities()
            .iter()
            .find(|info| info.history_table == table)
        else {
            continue;
        };
        let row: HistoryRow = serde_json::from_value(value["row"].clone())?;
        archive.add(&info.name, row);
    }
    Ok(())
}

/// Prints what the checkpoint covered and the fault, if any; returns whether there is one.
fn print_log_report(report: &LogVerification, out: &mut impl Write) -> bool {
    let mut lines = vec![format!(
        "checkpoint of {} records; the log holds {}; {} checked ({} from archives, {} pruned and \
         checked from the log alone)",
        report.checkpoint_size, report.log_size, report.checked, report.archived, report.pruned
    )];
    lines.push(match &report.fault {
        None => "the history holds against the checkpoint".to_owned(),
        Some(fault) => {
            let record = fault
                .record_id
                .map(|id| format!(" [record {id}]"))
                .unwrap_or_default();
            format!("FAULT {fault}{record}")
        }
    });
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    report.fault.is_some()
}

async fn verify(
    settings: &VerifySettings,
) -> Result<Vec<(String, TableReport)>, Box<dyn std::error::Error>> {
    let registry = HistoryEntity::registry()?;
    let db = connect_migrated(&settings.database).await?;
    let mut total = 0;
    for info in registry.entities() {
        total += count_records(&db, info).await?;
    }
    let bar = super::progress_bar(
        total,
        settings.quiet,
        "{msg:>10} [{bar:40}] {pos}/{len} records ({per_sec}, {eta})",
    )?;
    let mut reports = Vec::new();
    for info in registry.entities() {
        bar.set_message(info.name.clone());
        let report = verify_table(&db, info, |n| bar.inc(n)).await?;
        reports.push((info.name.clone(), report));
    }
    bar.finish_and_clear();
    db.close().await?;
    Ok(reports)
}

/// Prints one line per table and one per broken link; returns whether any link is broken.
fn print_report(reports: &[(String, TableReport)], out: &mut impl Write) -> bool {
    let mut broken = 0;
    let mut lines = vec![format!(
        "{:<12} {:>12} {:>10} {:>8}",
        "entity", "records", "objects", "broken"
    )];
    for (entity, report) in reports {
        lines.push(format!(
            "{:<12} {:>12} {:>10} {:>8}",
            entity,
            report.records,
            report.objects,
            report.broken.len()
        ));
        broken += report.broken.len();
    }
    for (_, report) in reports {
        for link in &report.broken {
            lines.push(format!(
                "BROKEN {} {} at version {}: {}",
                link.entity, link.object_id, link.version, link.reason
            ));
        }
    }
    lines.push(if broken == 0 {
        "every hash chain holds".to_owned()
    } else {
        format!("{broken} broken chain(s)")
    });
    for line in lines {
        // stdout closed (e.g. piped into `head`): nothing more to say.
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    broken > 0
}
