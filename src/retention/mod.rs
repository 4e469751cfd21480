//! Retention: removing what is older than a cutoff, for `chronicle prune` and the scheduled pruning
//! of `serve`.
//!
//! - Audit events older than the cutoff are removed.
//! - With `history`, so are the history records older than the cutoff of objects whose newer records
//!   remain (`sea_orm_history::retention`: never an object's latest record; anchors keep the chains
//!   verifiable).
//! - Work goes in batches. With an [`archive::Archive`], each batch is written to it and synced before
//!   the batch is deleted.
//! - Provenance tokens a day past their expiry are forgotten (their `jti`s can no longer be replayed:
//!   the tokens are refused as expired).
//! - The run ends with a `SYSTEM` audit event (`action: "prune"`) saying what was removed.

pub mod archive;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::{HistoryEntity, audit_event, provenance_token};
use sea_orm::sea_query::Order;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use sea_orm_history::retention::{ArchiveSink, HistoryPruned};
use sea_orm_history::{EntityInfo, EntitySet, HistoryRow};
use serde::Serialize;

use crate::audit::{AuditKind, NewEvent};
use crate::error::{AppError, AppResult};
use archive::Archive;

/// What to prune.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Everything strictly older than this goes.
    pub cutoff: DateTime<Utc>,
    /// Also prune history records (never an object's latest).
    pub history: bool,
    /// Audit events, or objects, handled per batch.
    pub batch_size: u64,
    /// Who asked (`command` or `schedule`), kept in the closing audit event.
    pub trigger: &'static str,
}

/// What a prune removed (or, in a dry run, would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    /// A dry run: counted, nothing removed (only said when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// The cutoff.
    pub cutoff: DateTime<Utc>,
    /// Audit events removed.
    pub audit_events: u64,
    /// History records removed, per entity (`TASK`, …); empty without `history`.
    pub history_records: BTreeMap<String, u64>,
    /// Objects whose oldest records were removed.
    pub objects: u64,
    /// Seen provenance tokens forgotten: a day past their expiry, when no token with their `jti` can
    /// be accepted any more.
    pub provenance_tokens: u64,
    /// The archive file, if one was written.
    pub archive: Option<String>,
}

impl PruneReport {
    /// History records removed, over every entity.
    pub fn history_total(&self) -> u64 {
        self.history_records.values().sum()
    }
}

/// How many rows a prune at `options` will look at (for a progress bar): audit events older than the
/// cutoff, plus history records older than it with `history` (an upper bound: latest records stay).
///
/// # Errors
/// Database errors.
pub async fn candidates(db: &DatabaseConnection, options: &PruneOptions) -> AppResult<u64> {
    let mut total = audit_event::Entity::find()
        .filter(audit_event::Column::At.lt(options.cutoff))
        .count(db)
        .await?;
    if options.history {
        let registry = HistoryEntity::registry()?;
        total += sea_orm_history::retention::count_older(db, registry, options.cutoff).await?;
    }
    Ok(total)
}

/// What [`prune`] at `options` would remove, counted as it chooses it, removing nothing (no audit
/// event either: a dry run changes nothing); `progress` hears how many rows each batch counted.
///
/// # Errors
/// Database errors.
pub async fn dry_run(
    db: &DatabaseConnection,
    options: &PruneOptions,
    mut progress: impl FnMut(u64) + Send,
) -> AppResult<PruneReport> {
    let mut report = PruneReport {
        dry_run: true,
        cutoff: options.cutoff,
        ..PruneReport::default()
    };
    report.provenance_tokens = provenance_token::Entity::find()
        .filter(provenance_token::Column::ExpiresAt.lt(token_horizon()))
        .count(db)
        .await?;
    report.audit_events = audit_event::Entity::find()
        .filter(audit_event::Column::At.lt(options.cutoff))
        .count(db)
        .await?;
    progress(report.audit_events);
    if options.history {
        let registry = HistoryEntity::registry()?;
        let counted = sea_orm_history::retention::count_prunable(
            db,
            registry,
            options.cutoff,
            Ord::max(options.batch_size, 1),
            &mut progress,
        )
        .await?;
        report.history_records = counted.records;
        report.objects = counted.objects;
    }
    Ok(report)
}

/// Seen provenance tokens that expired before this are forgotten: a day past their expiry, no token
/// with their `jti` can be accepted any more.
fn token_horizon() -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(1)
}

/// Prunes what `options` says, writing each batch to `archive` first; `progress` hears how many rows
/// each batch removed. Ends with a `SYSTEM` audit event.
///
/// Give it a connection pool of its own: on MySQL the retention mark is a session variable.
///
/// # Errors
/// Database and archive errors; what was removed before the error stays removed (and archived).
pub async fn prune(
    db: &DatabaseConnection,
    options: &PruneOptions,
    archive: Option<&mut Archive>,
    mut progress: impl FnMut(u64) + Send,
) -> AppResult<PruneReport> {
    let mut report = PruneReport {
        cutoff: options.cutoff,
        archive: archive.as_ref().map(|a| a.path().display().to_string()),
        ..PruneReport::default()
    };
    let outcome = prune_into(db, options, archive, &mut progress, &mut report).await;
    // What was removed is said even when the run stopped half way.
    let mut event = NewEvent::new(AuditKind::System, "prune").details(serde_json::json!({
        "trigger": options.trigger,
        "report": report,
    }));
    event.app = Some("chronicle".into());
    if let Err(e) = &outcome {
        event = event.failed(format!("{}: {e}", e.code()));
    }
    let recorded = crate::audit::record(db, event).await;
    outcome?;
    recorded?;
    Ok(report)
}

async fn prune_into(
    db: &DatabaseConnection,
    options: &PruneOptions,
    mut archive: Option<&mut Archive>,
    progress: &mut (impl FnMut(u64) + Send),
    report: &mut PruneReport,
) -> AppResult<()> {
    let batch = Ord::max(options.batch_size, 1);
    report.provenance_tokens = provenance_token::Entity::delete_many()
        .filter(provenance_token::Column::ExpiresAt.lt(token_horizon()))
        .exec(db)
        .await?
        .rows_affected;
    report.audit_events = prune_audit_events(
        db,
        options.cutoff,
        batch,
        archive.as_deref_mut(),
        &mut *progress,
    )
    .await?;
    if options.history {
        let registry = HistoryEntity::registry()?;
        let mut pruned = HistoryPruned::default();
        let outcome = sea_orm_history::retention::prune_history(
            db,
            registry,
            options.cutoff,
            batch,
            archive,
            progress,
            &mut pruned,
        )
        .await;
        report.history_records = pruned.records;
        report.objects = pruned.objects;
        outcome?;
    }
    Ok(())
}

async fn prune_audit_events(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
    batch: u64,
    mut archive: Option<&mut Archive>,
    progress: &mut (impl FnMut(u64) + Send),
) -> AppResult<u64> {
    let mut removed = 0;
    let mut after: Option<(DateTime<Utc>, uuid::Uuid)> = None;
    loop {
        let mut select = audit_event::Entity::find().filter(audit_event::Column::At.lt(cutoff));
        if let Some((at, id)) = after {
            select = select.filter(crate::audit::query::past(at, id, Order::Asc));
        }
        let events = select
            .order_by_asc(audit_event::Column::At)
            .order_by_asc(audit_event::Column::Id)
            .limit(batch)
            .all(db)
            .await?;
        let Some(last) = events.last() else { break };
        after = Some((last.at, last.id));
        if let Some(archive) = archive.as_deref_mut() {
            let rows = events
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| AppError::internal(format!("archiving audit events: {e}")))?;
            write_blocking(|| archive.write_batch("audit_event", &rows)).map_err(archive_error)?;
        }
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
        let deleted = audit_event::Entity::delete_many()
            .filter(audit_event::Column::Id.is_in(ids))
            .exec(db)
            .await?
            .rows_affected;
        removed += deleted;
        progress(deleted);
        if (events.len() as u64) < batch {
            break;
        }
    }
    Ok(removed)
}

/// Runs blocking archive I/O (compression, fsync) off the async workers when the runtime allows.
fn write_blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// History records go to the archive as the rows of their table.
impl ArchiveSink for Archive {
    fn store(&mut self, info: &EntityInfo, rows: &[HistoryRow]) -> Result<(), String> {
        let json = rows
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        write_blocking(|| self.write_batch(&info.history_table, &json)).map_err(|e| e.to_string())
    }
}

fn archive_error(e: std::io::Error) -> AppError {
    AppError::internal(format!("writing the archive: {e}"))
}

/// The cutoff for an age: now minus `age`.
///
/// # Errors
/// An age too large to subtract.
pub fn cutoff(age: std::time::Duration) -> Result<DateTime<Utc>, String> {
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| Utc::now().checked_sub_signed(age))
        .ok_or_else(|| "the age is too large".to_owned())
}
