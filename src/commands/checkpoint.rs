//! `chronicle checkpoint`: sequence every committed history record into the verifiable log (a full
//! sweep), sign a checkpoint of the tree, store it, and print it — the signed note to copy elsewhere.

use std::process::ExitCode;

use entity::HistoryEntity;
use sea_orm_history::EntitySet;
use sea_orm_history::log::{CheckpointKey, SequenceOptions, make_checkpoint, sequence};

use crate::config::{CheckpointSettings, read_pem};
use crate::database::connect_migrated;

/// Runs it; the checkpoint goes to stdout.
pub async fn run(settings: &CheckpointSettings) -> ExitCode {
    match checkpoint(settings).await {
        Ok(note) => {
            print!("{note}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "checkpoint failed");
            ExitCode::FAILURE
        }
    }
}

async fn checkpoint(settings: &CheckpointSettings) -> Result<String, Box<dyn std::error::Error>> {
    let pem =
        read_pem(&settings.checkpoint_key).map_err(|e| format!("reading --checkpoint-key: {e}"))?;
    let key = CheckpointKey::from_pem(&pem, &settings.checkpoint_origin)?;
    let registry = HistoryEntity::registry()?;
    let db = connect_migrated(&settings.database).await?;
    let options = SequenceOptions {
        full_sweep: true,
        ..SequenceOptions::default()
    };
    let report = sequence(&db, registry, &options).await?;
    if report.busy {
        return Err("another sequencer holds the log: try again".into());
    }
    let checkpoint = make_checkpoint(&db, &key).await?;
    db.close().await?;
    Ok(checkpoint.note)
}
