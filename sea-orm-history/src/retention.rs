//! Retention of history: removing records older than a cutoff, never an object's latest record.
//!
//! For each object with records older than the cutoff, a prefix of its versions is removed, ending
//! before its latest record; the last removed record's version and hash go to
//! `history_prune_anchor`, where verification of the object's chain resumes, and an anchor only moves
//! forward (two prunes racing never set it back). History tables refuse deletes except in a
//! transaction marked for retention (see [`migration`](crate) helpers), which only this module opens.
//! Work goes in batches of objects; with an [`ArchiveSink`], each batch is handed to it, and must be
//! stored safely, before it is deleted. [`count_prunable`] walks the tables the same way and counts
//! instead (a dry run).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    FromQueryResult, QueryFilter, Set,
};

use crate::capture::{history_select, latest_versions};
use crate::entity::EntityInfo;
use crate::error::{HistoryError, HistoryResult};
use crate::query::{count, fetch};
use crate::record::{HistoryRow, now};
use crate::registry::Registry;
use crate::tables::prune_anchor;

/// Objects per statement when pruning: each adds two parameters and one OR branch, and SQLite refuses
/// expressions nested deeper than 1,000.
const OBJECT_CHUNK: usize = 200;

/// Where removed records go before they are deleted (a file, another database, …).
pub trait ArchiveSink {
    /// Stores `rows` of `info`'s history table durably, or fails; the rows are deleted only after it
    /// returns `Ok`.
    ///
    /// # Errors
    /// Whatever kept the rows from being stored.
    fn store(&mut self, info: &EntityInfo, rows: &[HistoryRow]) -> Result<(), String>;
}

/// What a history prune removed (or, from [`count_prunable`], would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryPruned {
    /// Records removed, per entity name.
    pub records: BTreeMap<String, u64>,
    /// Objects whose oldest records were removed.
    pub objects: u64,
}

/// How many records older than `cutoff` the history tables of `registry` hold (an upper bound of what
/// a prune removes: latest records stay).
///
/// # Errors
/// Database errors.
pub async fn count_older<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    cutoff: DateTime<Utc>,
) -> HistoryResult<u64> {
    let mut total = 0;
    for info in registry.entities() {
        let select = Query::select()
            .column(Alias::new("id"))
            .from(Alias::new(&info.history_table))
            .and_where(Expr::col(Alias::new("at")).lt(cutoff))
            .to_owned();
        total += count(db, select).await?;
    }
    Ok(total)
}

/// Removes the history older than `cutoff` of every entity of `registry` (never an object's latest
/// record), `batch` objects at a time, handing each batch to `archive` first; `progress` hears how
/// many records each batch removed. What was removed before an error stays removed (and archived);
/// `report` says what.
///
/// Give it a connection pool of its own: on MySQL the retention mark is a session variable.
///
/// # Errors
/// Database and archive errors.
pub async fn prune_history<A: ArchiveSink + Send + ?Sized>(
    db: &DatabaseConnection,
    registry: &Registry,
    cutoff: DateTime<Utc>,
    batch: u64,
    archive: Option<&mut A>,
    progress: &mut (dyn FnMut(u64) + Send),
    report: &mut HistoryPruned,
) -> HistoryResult<()> {
    let mut cut = Cut::Remove(archive);
    walk_tables(db, registry, cutoff, batch, &mut cut, progress, report).await
}

/// What [`prune_history`] would remove at `cutoff`, counted the same way, `batch` objects at a time,
/// without removing anything (a dry run); `progress` hears how many records each batch counted.
///
/// # Errors
/// Database errors.
pub async fn count_prunable(
    db: &DatabaseConnection,
    registry: &Registry,
    cutoff: DateTime<Utc>,
    batch: u64,
    progress: &mut (dyn FnMut(u64) + Send),
) -> HistoryResult<HistoryPruned> {
    let mut report = HistoryPruned::default();
    let mut cut = Cut::<dyn ArchiveSink + Send>::Count;
    walk_tables(db, registry, cutoff, batch, &mut cut, progress, &mut report).await?;
    Ok(report)
}

/// [`walk_table`] over every entity of `registry`, adding up into `report`.
async fn walk_tables<A: ArchiveSink + Send + ?Sized>(
    db: &DatabaseConnection,
    registry: &Registry,
    cutoff: DateTime<Utc>,
    batch: u64,
    cut: &mut Cut<'_, A>,
    progress: &mut (dyn FnMut(u64) + Send),
    report: &mut HistoryPruned,
) -> HistoryResult<()> {
    for info in registry.entities() {
        let records = report.records.entry(info.name.clone()).or_default();
        walk_table(
            db,
            info,
            cutoff,
            Ord::max(batch, 1),
            cut,
            progress,
            records,
            &mut report.objects,
        )
        .await?;
    }
    Ok(())
}

/// One object's prunable prefix: versions up to `newest_old`.
#[derive(Debug, FromQueryResult)]
struct OldVersions {
    object_id: String,
    newest_old: i32,
}

/// What [`walk_table`] does with each object's prunable prefix.
enum Cut<'a, A: ArchiveSink + Send + ?Sized> {
    /// Archive it (with a sink), then delete it.
    Remove(Option<&'a mut A>),
    /// Count it (a dry run).
    Count,
}

/// Finds, `batch` objects at a time, each object's prunable prefix (its versions older than
/// `cutoff`, never its latest, past what an earlier prune removed), and removes or counts it
/// (`cut`) in chunks, adding up the records and objects.
#[allow(clippy::too_many_arguments)]
async fn walk_table<A: ArchiveSink + Send + ?Sized>(
    db: &DatabaseConnection,
    info: &EntityInfo,
    cutoff: DateTime<Utc>,
    batch: u64,
    cut: &mut Cut<'_, A>,
    progress: &mut (dyn FnMut(u64) + Send),
    removed: &mut u64,
    objects: &mut u64,
) -> HistoryResult<()> {
    let table = Alias::new(&info.history_table);
    let backend = db.get_database_backend();
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
            .from(table.clone())
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
        let latest = latest_versions(db, info, &ids).await?;
        // Never an object's latest record, nor what an earlier prune already removed.
        let anchors = anchored_versions(db, info, &ids).await?;
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
            let (deleted, touched) = match cut {
                Cut::Remove(archive) => {
                    prune_chunk(db, info, chunk, archive.as_deref_mut()).await?
                }
                Cut::Count => count_chunk(db, info, chunk).await?,
            };
            *removed += deleted;
            *objects += touched;
            progress(deleted);
        }
        if !full {
            break;
        }
    }
    Ok(())
}

/// The anchored (already pruned) version of each of `ids` that has one.
async fn anchored_versions(
    db: &DatabaseConnection,
    info: &EntityInfo,
    ids: &[String],
) -> HistoryResult<HashMap<String, i32>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(OBJECT_CHUNK) {
        for anchor in prune_anchor::Entity::find()
            .filter(prune_anchor::Column::Entity.eq(info.name.as_str()))
            .filter(prune_anchor::Column::ObjectId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?
        {
            found.insert(anchor.object_id, anchor.version);
        }
    }
    Ok(found)
}

/// The condition selecting the versions up to the cut of each object of `cuts`.
fn prefix_of(cuts: &[(String, i32)]) -> Condition {
    cuts.iter().fold(Condition::any(), |any, (id, cut)| {
        any.add(
            Condition::all()
                .add(Expr::col(Alias::new("object_id")).eq(id.as_str()))
                .add(Expr::col(Alias::new("version")).lte(*cut)),
        )
    })
}

/// Counts the versions up to the cut of each object of `cuts`: (records, objects with any).
async fn count_chunk(
    db: &DatabaseConnection,
    info: &EntityInfo,
    cuts: &[(String, i32)],
) -> HistoryResult<(u64, u64)> {
    let select = Query::select()
        .column(Alias::new("object_id"))
        .from(Alias::new(&info.history_table))
        .cond_where(prefix_of(cuts))
        .to_owned();
    let records = count(db, select.clone()).await?;
    let mut objects = select;
    objects.distinct();
    let objects = count(db, objects).await?;
    Ok((records, objects))
}

/// Archives, then deletes, the versions up to the cut of each object of `cuts`, and moves their
/// anchors forward, in one marked transaction. Returns (records removed, objects).
async fn prune_chunk<A: ArchiveSink + Send + ?Sized>(
    db: &DatabaseConnection,
    info: &EntityInfo,
    cuts: &[(String, i32)],
    archive: Option<&mut A>,
) -> HistoryResult<(u64, u64)> {
    let backend = db.get_database_backend();
    let prefix = prefix_of(cuts);
    let mut rows_select = history_select(info);
    rows_select
        .cond_where(prefix.clone())
        .order_by(Alias::new("object_id"), Order::Asc)
        .order_by(Alias::new("version"), Order::Asc);
    let rows = fetch(db, &rows_select).await?;
    if rows.is_empty() {
        // Another prune got there first.
        return Ok((0, 0));
    }
    if let Some(archive) = archive {
        archive
            .store(info, &rows)
            .map_err(|e| HistoryError::Malformed(format!("archiving history: {e}")))?;
    }
    let at = now();
    // The last removed record of each object: where its chain now starts.
    let mut last: BTreeMap<&str, &HistoryRow> = BTreeMap::new();
    for row in &rows {
        last.insert(row.object_id.as_str(), row);
    }
    let anchors: Vec<prune_anchor::ActiveModel> = last
        .values()
        .map(|row| prune_anchor::ActiveModel {
            entity: Set(info.name.clone()),
            object_id: Set(row.object_id.clone()),
            version: Set(row.version),
            hash: Set(row.hash.clone()),
            pruned_at: Set(at),
        })
        .collect();

    let txn = crate::capture::begin_write(db).await?;
    mark(&txn, backend, true).await?;
    let work = async {
        let delete = Query::delete()
            .from_table(Alias::new(&info.history_table))
            .cond_where(prefix)
            .to_owned();
        let deleted = txn.execute(&delete).await?.rows_affected();
        prune_anchor::Entity::insert_many(anchors)
            .on_conflict(forward_only(backend))
            .exec_without_returning(&txn)
            .await?;
        HistoryResult::Ok(deleted)
    };
    let deleted = work.await;
    // Unmarked whatever happened: MySQL's session variable outlives a rollback, and the connection
    // goes back to the pool.
    let unmarked = mark(&txn, backend, false).await;
    let deleted = deleted?;
    unmarked?;
    txn.commit().await?;
    Ok((deleted, last.len() as u64))
}

/// The anchor upsert: an anchor only moves forward, so two prunes racing (replicas, or a command
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

/// The PostgreSQL setting, MySQL session variable and SQLite table that mark a transaction as the
/// retention's, the one writer the history tables' triggers let delete.
pub(crate) const MARK_SETTING: &str = "sea_orm_history.retention";
pub(crate) const MARK_VARIABLE: &str = "@sea_orm_history_retention";
pub(crate) const MARK_TABLE: &str = "sea_orm_history_retention";

/// Marks (or unmarks) the transaction as the retention's.
async fn mark<C: ConnectionTrait>(
    txn: &C,
    backend: DatabaseBackend,
    on: bool,
) -> HistoryResult<()> {
    let statement = match (backend, on) {
        (DatabaseBackend::Postgres, true) => format!("SET LOCAL {MARK_SETTING} = 'on'"),
        (DatabaseBackend::Postgres, false) => return Ok(()),
        (DatabaseBackend::MySql, true) => format!("SET {MARK_VARIABLE} = 'on'"),
        (DatabaseBackend::MySql, false) => format!("SET {MARK_VARIABLE} = NULL"),
        (_, true) => format!("INSERT INTO {MARK_TABLE} (active) VALUES (1)"),
        (_, false) => format!("DELETE FROM {MARK_TABLE}"),
    };
    txn.execute_unprepared(&statement).await?;
    Ok(())
}
