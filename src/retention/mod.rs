//! Retention: removing what is older than a cutoff, for `chronicle prune` and the scheduled pruning
//! of `serve`.
//!
//! - Audit events older than the cutoff are removed.
//! - With `history`, so are the history records older than the cutoff of objects whose newer records
//!   remain: for each object, a prefix of its versions ending before its latest record, which is never
//!   removed. The last removed record's version and hash go to `history_prune_anchor`, where
//!   verification of the object's chain resumes. History tables refuse deletes except in a transaction
//!   marked for retention (see `migration::shadow::RETENTION_MARK`), which only this module opens.
//! - Work goes in batches. With an [`archive::Archive`], each batch is written to it and synced before
//!   the batch is deleted.
//! - The run ends with a `SYSTEM` audit event (`action: "prune"`) saying what was removed.

pub mod archive;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use entity::history::{HISTORY_COLUMNS, HistoryEntity, HistoryRow};
use entity::{audit_event, prune_anchor};
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
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

/// What a prune removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    /// The cutoff.
    pub cutoff: DateTime<Utc>,
    /// Audit events removed.
    pub audit_events: u64,
    /// History records removed, per entity (`TASK`, …); empty without `history`.
    pub history_records: BTreeMap<&'static str, u64>,
    /// Objects whose oldest records were removed.
    pub objects: u64,
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
        for entity in HistoryEntity::ALL {
            let select = Query::select()
                .column(Alias::new("id"))
                .from(Alias::new(entity.history_table()))
                .and_where(Expr::col(Alias::new("at")).lt(options.cutoff))
                .to_owned();
            total += crate::history::query::count(db, select).await?;
        }
    }
    Ok(total)
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
    mut progress: impl FnMut(u64),
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
    progress: &mut impl FnMut(u64),
    report: &mut PruneReport,
) -> AppResult<()> {
    let batch = Ord::max(options.batch_size, 1);
    report.audit_events = prune_audit_events(
        db,
        options.cutoff,
        batch,
        archive.as_deref_mut(),
        &mut *progress,
    )
    .await?;
    if options.history {
        for entity in HistoryEntity::ALL {
            let (records, objects) = prune_history(
                db,
                entity,
                options.cutoff,
                batch,
                archive.as_deref_mut(),
                &mut *progress,
            )
            .await?;
            report.history_records.insert(entity.as_str(), records);
            report.objects += objects;
        }
    }
    Ok(())
}

async fn prune_audit_events(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
    batch: u64,
    mut archive: Option<&mut Archive>,
    progress: &mut impl FnMut(u64),
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

/// One object's prunable prefix: versions `1..=cut` (or the versions after its anchor).
#[derive(Debug, FromQueryResult)]
struct OldVersions {
    object_id: String,
    newest_old: i32,
}

#[derive(Debug, FromQueryResult)]
struct Latest {
    object_id: String,
    latest: i32,
}

/// Prunes one shadow table; returns (records removed, objects touched).
async fn prune_history(
    db: &DatabaseConnection,
    entity: HistoryEntity,
    cutoff: DateTime<Utc>,
    batch: u64,
    mut archive: Option<&mut Archive>,
    progress: &mut impl FnMut(u64),
) -> AppResult<(u64, u64)> {
    let table = entity.history_table();
    let backend = db.get_database_backend();
    let (mut removed, mut objects) = (0, 0);
    let mut after: Option<String> = None;
    loop {
        // Objects with records older than the cutoff, and the newest such version of each.
        let mut select = Query::select();
        select
            .column(Alias::new("object_id"))
            .expr_as(
                Expr::col(Alias::new("version")).max(),
                Alias::new("newest_old"),
            )
            .from(Alias::new(table))
            .and_where(Expr::col(Alias::new("at")).lt(cutoff))
            .group_by_col(Alias::new("object_id"))
            .order_by(Alias::new("object_id"), Order::Asc)
            .limit(batch);
        if let Some(id) = &after {
            select.and_where(Expr::col(Alias::new("object_id")).gt(id.as_str()));
        }
        let old = OldVersions::find_by_statement(backend.build(&select))
            .all(db)
            .await?;
        let Some(last) = old.last() else { break };
        after = Some(last.object_id.clone());
        let full = (old.len() as u64) == batch;

        let ids: Vec<String> = old.iter().map(|o| o.object_id.clone()).collect();
        let latest_select = Query::select()
            .column(Alias::new("object_id"))
            .expr_as(Expr::col(Alias::new("version")).max(), Alias::new("latest"))
            .from(Alias::new(table))
            .and_where(Expr::col(Alias::new("object_id")).is_in(ids.iter().cloned()))
            .group_by_col(Alias::new("object_id"))
            .to_owned();
        let latest: HashMap<String, i32> = Latest::find_by_statement(backend.build(&latest_select))
            .all(db)
            .await?
            .into_iter()
            .map(|l| (l.object_id, l.latest))
            .collect();
        // Never an object's latest record, nor what an earlier prune already removed.
        let anchors = anchored_versions(db, entity, &ids).await?;
        let cuts: Vec<(String, i32)> = old
            .into_iter()
            .filter_map(|o| {
                let latest = *latest.get(&o.object_id)?;
                let cut = Ord::min(o.newest_old, latest - 1);
                let floor = anchors.get(&o.object_id).copied().unwrap_or(0);
                (cut > floor).then_some((o.object_id, cut))
            })
            .collect();
        for chunk in cuts.chunks(OBJECT_CHUNK) {
            let (deleted, touched) = prune_chunk(db, entity, chunk, archive.as_deref_mut()).await?;
            removed += deleted;
            objects += touched;
            progress(deleted);
        }
        if !full {
            break;
        }
    }
    Ok((removed, objects))
}

/// Objects per statement when pruning history: each adds two parameters and one OR branch, and
/// SQLite refuses expressions nested deeper than 1,000.
const OBJECT_CHUNK: usize = 200;

/// The anchored (already pruned) version of each of `ids` that has one.
async fn anchored_versions(
    db: &DatabaseConnection,
    entity: HistoryEntity,
    ids: &[String],
) -> AppResult<HashMap<String, i32>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(OBJECT_CHUNK) {
        for anchor in prune_anchor::Entity::find()
            .filter(prune_anchor::Column::Entity.eq(entity.as_str()))
            .filter(prune_anchor::Column::ObjectId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?
        {
            found.insert(anchor.object_id, anchor.version);
        }
    }
    Ok(found)
}

/// Archives, then deletes versions `1..=cut` of each object of `cuts` (at most [`OBJECT_CHUNK`]) and
/// moves their anchors forward, in one marked transaction. Returns (records removed, objects).
async fn prune_chunk(
    db: &DatabaseConnection,
    entity: HistoryEntity,
    cuts: &[(String, i32)],
    archive: Option<&mut Archive>,
) -> AppResult<(u64, u64)> {
    let table = entity.history_table();
    let backend = db.get_database_backend();
    let prefix = cuts.iter().fold(Condition::any(), |any, (id, cut)| {
        any.add(
            Condition::all()
                .add(Expr::col(Alias::new("object_id")).eq(id.as_str()))
                .add(Expr::col(Alias::new("version")).lte(*cut)),
        )
    });
    let rows_select = Query::select()
        .columns(HISTORY_COLUMNS.map(Alias::new))
        .from(Alias::new(table))
        .cond_where(prefix.clone())
        .order_by(Alias::new("object_id"), Order::Asc)
        .order_by(Alias::new("version"), Order::Asc)
        .to_owned();
    let rows = HistoryRow::find_by_statement(backend.build(&rows_select))
        .all(db)
        .await?;
    if rows.is_empty() {
        // Another prune got there first.
        return Ok((0, 0));
    }
    if let Some(archive) = archive {
        let json = rows
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AppError::internal(format!("archiving history: {e}")))?;
        write_blocking(|| archive.write_batch(table, &json)).map_err(archive_error)?;
    }
    let now = entity::history::now();
    // The last removed record of each object: where its chain now starts.
    let mut last: BTreeMap<&str, &HistoryRow> = BTreeMap::new();
    for row in &rows {
        last.insert(row.object_id.as_str(), row);
    }
    let anchors: Vec<prune_anchor::ActiveModel> = last
        .values()
        .map(|row| prune_anchor::ActiveModel {
            entity: Set(entity.as_str().to_owned()),
            object_id: Set(row.object_id.clone()),
            version: Set(row.version),
            hash: Set(row.hash.clone()),
            pruned_at: Set(now),
        })
        .collect();

    let txn = db.begin().await?;
    mark(&txn, backend, true).await?;
    let delete = Query::delete()
        .from_table(Alias::new(table))
        .cond_where(prefix)
        .to_owned();
    let deleted = txn.execute(&delete).await?.rows_affected();
    prune_anchor::Entity::insert_many(anchors)
        .on_conflict(forward_only(backend))
        .exec_without_returning(&txn)
        .await?;
    mark(&txn, backend, false).await?;
    txn.commit().await?;
    Ok((deleted, last.len() as u64))
}

/// The anchor upsert: an anchor only moves forward, so two prunes racing (replicas, or the command
/// beside a scheduled run) never leave it behind records already removed.
fn forward_only(backend: DatabaseBackend) -> OnConflict {
    let mut on_conflict =
        OnConflict::columns([prune_anchor::Column::Entity, prune_anchor::Column::ObjectId]);
    if backend == DatabaseBackend::MySql {
        // Assignments run left to right: `version` last, so the others compare against the old one.
        on_conflict
            .value(
                prune_anchor::Column::Hash,
                Expr::cust("IF(VALUES(version) > version, VALUES(hash), hash)"),
            )
            .value(
                prune_anchor::Column::PrunedAt,
                Expr::cust("IF(VALUES(version) > version, VALUES(pruned_at), pruned_at)"),
            )
            .value(
                prune_anchor::Column::Version,
                Expr::cust("GREATEST(version, VALUES(version))"),
            );
    } else {
        on_conflict
            .update_columns([
                prune_anchor::Column::Version,
                prune_anchor::Column::Hash,
                prune_anchor::Column::PrunedAt,
            ])
            .action_and_where(
                Expr::col((Alias::new("history_prune_anchor"), Alias::new("version")))
                    .lt(Expr::col((Alias::new("excluded"), Alias::new("version")))),
            );
    }
    on_conflict.to_owned()
}

/// Runs blocking archive I/O (compression, fsync) off the async workers when the runtime allows.
fn write_blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Marks (or unmarks) the transaction as the retention command's, the one writer the history
/// tables' triggers let delete.
async fn mark<C: ConnectionTrait>(txn: &C, backend: DatabaseBackend, on: bool) -> AppResult<()> {
    let statement = match (backend, on) {
        (DatabaseBackend::Postgres, true) => "SET LOCAL chronicle.retention = 'on'",
        (DatabaseBackend::Postgres, false) => return Ok(()),
        (DatabaseBackend::MySql, true) => "SET @chronicle_retention = 'on'",
        (DatabaseBackend::MySql, false) => "SET @chronicle_retention = NULL",
        (_, true) => "INSERT INTO chronicle_retention (active) VALUES (1)",
        (_, false) => "DELETE FROM chronicle_retention",
    };
    txn.execute_unprepared(statement).await?;
    Ok(())
}

fn archive_error(e: std::io::Error) -> AppError {
    AppError::internal(format!("writing the archive: {e}"))
}

/// Parses an age: a whole number and a unit, `s`, `m`, `h`, `d` or `w` (`90d`, `12h`).
///
/// # Errors
/// Anything else, with a message saying what is expected.
pub fn parse_age(value: &str) -> Result<std::time::Duration, String> {
    let expected = || format!("`{value}` is not an age like 90d, 12h, 30m, 2w or 45s");
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(expected)?;
    let (number, unit) = value.split_at(split);
    let number: u64 = number.parse().map_err(|_| expected())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(expected()),
    };
    number
        .checked_mul(seconds)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("`{value}` is more than 100 years"))
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

#[cfg(test)]
mod tests {
    use super::parse_age;
    use std::time::Duration;

    #[test]
    fn ages_read_as_a_number_and_a_unit() {
        assert_eq!(parse_age("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_age("0s"), Ok(Duration::ZERO));
        for bad in [
            "",
            "d",
            "90",
            "90 days",
            "-1d",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_age(bad).is_err(), "{bad} should be refused");
        }
    }
}
