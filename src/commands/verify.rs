//! `chronicle verify`: recompute the hash chain of every object of every shadow table, with a progress
//! bar on a terminal, and print what was checked and every broken link. The exit status tells a
//! script the answer: 0 when every chain holds, 1 when one breaks, 2 when the check could not run.

use std::io::Write;
use std::process::ExitCode;

use crate::config::VerifySettings;
use crate::database::connect_migrated;
use crate::history::verify::{TableReport, count_records, verify_table};
use entity::history::HistoryEntity;

/// Runs the check and prints its report to stdout.
pub async fn run(settings: &VerifySettings) -> ExitCode {
    match verify(settings).await {
        Ok(reports) => {
            let broken = print_report(&reports, &mut std::io::stdout().lock());
            if broken {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "verify failed");
            ExitCode::from(2)
        }
    }
}

async fn verify(
    settings: &VerifySettings,
) -> Result<Vec<(HistoryEntity, TableReport)>, Box<dyn std::error::Error>> {
    let db = connect_migrated(&settings.database).await?;
    let mut total = 0;
    for entity in HistoryEntity::ALL {
        total += count_records(&db, entity).await.map_err(|e| e.detailed())?;
    }
    let bar = super::progress_bar(
        total,
        settings.quiet,
        "{msg:>10} [{bar:40}] {pos}/{len} records ({per_sec}, {eta})",
    )?;
    let mut reports = Vec::new();
    for entity in HistoryEntity::ALL {
        bar.set_message(entity.as_str());
        let report = verify_table(&db, entity, |n| bar.inc(n))
            .await
            .map_err(|e| e.detailed())?;
        reports.push((entity, report));
    }
    bar.finish_and_clear();
    db.close().await?;
    Ok(reports)
}

/// Prints one line per table and one per broken link; returns whether any link is broken.
fn print_report(reports: &[(HistoryEntity, TableReport)], out: &mut impl Write) -> bool {
    let mut broken = 0;
    let mut lines = vec![format!(
        "{:<12} {:>12} {:>10} {:>8}",
        "entity", "records", "objects", "broken"
    )];
    for (entity, report) in reports {
        lines.push(format!(
            "{:<12} {:>12} {:>10} {:>8}",
            entity.as_str(),
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
                link.entity.as_str(),
                link.object_id,
                link.version,
                link.reason
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
