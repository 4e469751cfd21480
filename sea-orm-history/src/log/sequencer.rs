//! The sequencer: gives committed history records their places in the log, after their transactions
//! committed, so the write path never waits for the log.
//!
//! Each run takes the log's state row under a lock — a replica that finds it locked skips the run, so
//! across replicas one sequences at a time — reads the records of every historized table that the log
//! does not hold yet, oldest first, appends them (their entries, and the tree's new stored hashes),
//! and moves the size on, in one transaction. To stay cheap as history grows it looks only at records
//! dated after its watermark (the newest record sequenced) less a window; a full sweep (at start-up,
//! and now and then) looks at every record, for one that committed later than the window allows.
//! Within a run, each table is read on from the last record appended ([`Cursors`]); a caller that
//! keeps the cursors between runs ([`sequence_on`]) makes each run cost what is new, not the window.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QuerySelect};
use tlog_tiles::{Hash, HashReader, stored_hash_index, stored_hashes_for_record_hash};
use uuid::Uuid;

use super::store::{hex_of, insert_rows, key, read};
use super::tables::{log_entry, log_hash, log_state};
use super::{leaf_hash, without_log_entry};
use crate::error::{HistoryError, HistoryResult};
use crate::registry::Registry;

/// How a run sequences.
#[derive(Clone, Debug)]
pub struct SequenceOptions {
    /// Records appended per transaction.
    pub batch: u64,
    /// How long after its `at` a record may commit and still be found without a full sweep.
    pub window: chrono::Duration,
    /// Look at every record, not only those after the watermark.
    pub full_sweep: bool,
}

impl Default for SequenceOptions {
    fn default() -> Self {
        Self {
            batch: 1_000,
            window: chrono::Duration::minutes(10),
            full_sweep: false,
        }
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SequenceReport {
    /// Records appended.
    pub appended: u64,
    /// The log's size afterwards.
    pub size: u64,
    /// Another sequencer held the log: this run did nothing.
    pub busy: bool,
}

/// A record waiting for its place.
struct Pending {
    at: DateTime<Utc>,
    id: Uuid,
    entity: String,
    object_id: String,
    version: i32,
    hash: String,
}

/// Where a sequencer left off: per table, the `(at, id)` of the last record it appended. A run given
/// cursors reads each table on from there (a table without one, from the watermark less the window):
/// a record that commits later with an earlier `at` is not seen by it, but by the next run without
/// cursors (a window or full sweep).
#[derive(Clone, Debug, Default)]
pub struct Cursors(HashMap<String, (DateTime<Utc>, Uuid)>);

impl Cursors {
    /// Keeps, per table, the later of this cursor and `other`'s.
    pub fn merge(&mut self, other: Cursors) {
        for (table, position) in other.0 {
            let entry = self.0.entry(table).or_insert(position);
            *entry = Ord::max(*entry, position);
        }
    }
}

/// Appends every record the log does not hold yet (see the module docs).
///
/// # Errors
/// Database errors.
pub async fn sequence(
    db: &DatabaseConnection,
    registry: &Registry,
    options: &SequenceOptions,
) -> HistoryResult<SequenceReport> {
    sequence_on(db, registry, options, &mut Cursors::default()).await
}

/// Like [`sequence`], reading each table on from `cursors` and moving them to the last record
/// appended.
///
/// # Errors
/// Database errors.
pub async fn sequence_on(
    db: &DatabaseConnection,
    registry: &Registry,
    options: &SequenceOptions,
    cursors: &mut Cursors,
) -> HistoryResult<SequenceReport> {
    ensure_state(db).await?;
    let mut report = SequenceReport::default();
    let batch = Ord::max(options.batch, 1);
    // Per table, the last record appended: later batches read on from there instead of skipping,
    // again and again, every record already in the log (which made a long catch-up quadratic).
    let cursors = &mut cursors.0;
    let mut first_batch = true;
    loop {
        let txn = crate::capture::begin_write(db).await?;
        let Some(state) = lock_state(&txn).await? else {
            report.busy = true;
            return Ok(report);
        };
        let size = u64::try_from(state.size).unwrap_or_default();
        let since = if options.full_sweep {
            None
        } else {
            state.watermark.map(|w| w - options.window)
        };
        // A run that starts from kept cursors also looks a window back behind each, once: under
        // concurrent writers a record with an earlier `at` may commit after a later one was logged.
        let late = if first_batch && !options.full_sweep {
            Some(options.window)
        } else {
            None
        };
        first_batch = false;
        let pending = pending(&txn, registry, since, cursors, late, batch).await?;
        if pending.is_empty() {
            txn.commit().await?;
            report.size = size;
            return Ok(report);
        }
        for record in &pending {
            let position = (record.at, record.id);
            let cursor = cursors.entry(record.entity.clone()).or_insert(position);
            *cursor = Ord::max(*cursor, position);
        }
        let appended = pending.len() as u64;
        append(&txn, &state, size, pending).await?;
        txn.commit().await?;
        report.appended += appended;
        report.size = size + appended;
        if appended < batch {
            return Ok(report);
        }
    }
}

/// Makes the state row exist.
async fn ensure_state<C: ConnectionTrait>(db: &C) -> HistoryResult<()> {
    let insert = Query::insert()
        .into_table(log_state::Entity)
        .columns([log_state::Column::Id, log_state::Column::Size])
        .values([1.into(), 0_i64.into()])
        .map_err(|e| HistoryError::Malformed(e.to_string()))?
        .on_conflict(
            OnConflict::column(log_state::Column::Id)
                .do_nothing_on([log_state::Column::Id])
                .to_owned(),
        )
        .to_owned();
    db.execute(&insert).await?;
    Ok(())
}

/// The state row, locked for the rest of the transaction; `None` when another sequencer holds it.
/// On SQLite the transaction (`begin_write`: `BEGIN IMMEDIATE`) holds the database's one write lock
/// already.
async fn lock_state<C: ConnectionTrait>(txn: &C) -> HistoryResult<Option<log_state::Model>> {
    let find = log_state::Entity::find_by_id(1);
    if txn.get_database_backend() == DbBackend::Sqlite {
        return Ok(find.one(txn).await?);
    }
    Ok(find
        .lock_with_behavior(
            sea_orm::sea_query::LockType::Update,
            sea_orm::sea_query::LockBehavior::SkipLocked,
        )
        .one(txn)
        .await?)
}

/// Up to `batch` records of every table that the log lacks, oldest first (past each table's cursor).
async fn pending<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    since: Option<DateTime<Utc>>,
    cursors: &HashMap<String, (DateTime<Utc>, Uuid)>,
    late: Option<chrono::Duration>,
    batch: u64,
) -> HistoryResult<Vec<Pending>> {
    let col = |name: &str| Alias::new(name);
    let mut found = Vec::new();
    for info in registry.entities() {
        let table = col(&info.history_table);
        let mut select = Query::select();
        select
            .columns(["id", "object_id", "version", "hash", "at"].map(|c| (table.clone(), col(c))))
            .from(table.clone());
        without_log_entry(&mut select, db.get_database_backend(), &table, None);
        let mut queries = Vec::new();
        if let (Some(back), Some((at, _))) = (late, cursors.get(&info.name)) {
            // Behind the cursor, within the window: the late commits (a range of its own, so that
            // the scan past the cursor stays one index range).
            let at_column = Expr::col((table.clone(), col("at")));
            queries.push(
                select
                    .clone()
                    .and_where(at_column.clone().gte(*at - back))
                    .and_where(at_column.lt(*at))
                    .to_owned(),
            );
        }
        // Past the table's cursor when this run has one (which is past `since` already: a second
        // bound would lead the planner to range over `at` from `since` again); else from `since`.
        let cursor = cursors.get(&info.name);
        if let (Some(since), None) = (since, cursor) {
            select.and_where(Expr::col((table.clone(), col("at"))).gte(since));
        }
        if let Some((at, id)) = cursor {
            let at_column = Expr::col((table.clone(), col("at")));
            let id_column = Expr::col((table.clone(), col("id")));
            if db.get_database_backend() == DbBackend::MySql {
                // InnoDB's `(at)` index holds the key too, and MariaDB ranges over it from the two
                // branches of this condition (it does not for a row-value comparison).
                select.and_where(at_column.clone().gte(*at)).cond_where(
                    sea_orm::Condition::any()
                        .add(at_column.clone().gt(*at))
                        .add(
                            sea_orm::Condition::all()
                                .add(at_column.eq(*at))
                                .add(id_column.gt(*id)),
                        ),
                );
            } else {
                // `(at, id) > (…, …)`: PostgreSQL and SQLite start the `(at, id)` index scan right
                // there, also within one instant.
                select.and_where(
                    Expr::tuple([at_column, id_column])
                        .gt(Expr::tuple([Expr::val(*at), Expr::val(*id)])),
                );
            }
        }
        queries.push(select);
        for mut select in queries {
            select
                .order_by((table.clone(), col("at")), Order::Asc)
                .order_by((table.clone(), col("id")), Order::Asc)
                .limit(batch);
            for row in db.query_all(&select).await? {
                found.push(Pending {
                    at: row.try_get("", "at")?,
                    id: row.try_get("", "id")?,
                    entity: info.name.clone(),
                    object_id: row.try_get("", "object_id")?,
                    version: row.try_get("", "version")?,
                    hash: row.try_get("", "hash")?,
                });
            }
        }
    }
    found.sort_by_key(|a| (a.at, a.id));
    found.truncate(usize::try_from(batch).unwrap_or(usize::MAX));
    Ok(found)
}

/// Answers from the hashes read or computed so far.
struct Known<'a>(&'a HashMap<u64, Hash>);

impl HashReader for Known<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|i| {
                self.0
                    .get(i)
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

/// Appends `pending` to the tree of `size` records: their entries, the new stored hashes, the state.
async fn append<C: ConnectionTrait>(
    txn: &C,
    state: &log_state::Model,
    size: u64,
    pending: Vec<Pending>,
) -> HistoryResult<()> {
    let end = size + pending.len() as u64;
    // The hashes of earlier subtrees the new records complete.
    let first_new = stored_hash_index(0, size);
    let mut older = Vec::new();
    for n in size..end {
        let m = (n + 1).trailing_zeros();
        for i in 0..m {
            let level = u8::try_from(i).unwrap_or(u8::MAX);
            let index = stored_hash_index(level, (n >> i) - 1);
            if index < first_new {
                older.push(index);
            }
        }
    }
    older.sort_unstable();
    older.dedup();
    let mut known = read(txn, &older).await?;
    if known.len() < older.len() {
        return Err(HistoryError::Malformed(
            "the log's stored hashes are incomplete: its tables were edited".into(),
        ));
    }
    let mut entries = Query::insert();
    entries.into_table(log_entry::Entity).columns([
        log_entry::Column::Idx,
        log_entry::Column::Entity,
        log_entry::Column::RecordId,
        log_entry::Column::ObjectId,
        log_entry::Column::Version,
        log_entry::Column::RecordHash,
        log_entry::Column::At,
    ]);
    let mut hashes = Query::insert();
    hashes
        .into_table(log_hash::Entity)
        .columns([log_hash::Column::Idx, log_hash::Column::Hash]);
    let mut entry_rows: Vec<[Expr; 7]> = Vec::with_capacity(pending.len());
    let mut hash_rows: Vec<[Expr; 2]> = Vec::with_capacity(pending.len() * 2);
    let mut watermark = state.watermark;
    for (n, record) in (size..end).zip(pending) {
        let leaf = leaf_hash(&record.entity, &record.id, &record.hash);
        let stored = stored_hashes_for_record_hash(n, leaf, &Known(&known))
            .map_err(|e| HistoryError::Malformed(format!("appending to the log: {e}")))?;
        let base = stored_hash_index(0, n);
        for (offset, hash) in (0_u64..).zip(stored) {
            known.insert(base + offset, hash);
            hash_rows.push([Expr::val(key(base + offset)?), Expr::val(hex_of(&hash))]);
        }
        entry_rows.push([
            Expr::val(key(n)?),
            Expr::val(record.entity),
            Expr::val(record.id),
            Expr::val(record.object_id),
            Expr::val(record.version),
            Expr::val(record.hash),
            Expr::val(record.at),
        ]);
        watermark = Some(watermark.map_or(record.at, |w| Ord::max(w, record.at)));
    }
    insert_rows(txn, &entries, entry_rows).await?;
    insert_rows(txn, &hashes, hash_rows).await?;
    let update = Query::update()
        .table(log_state::Entity)
        .value(log_state::Column::Size, key(end)?)
        .value(log_state::Column::Watermark, watermark)
        .and_where(Expr::col(log_state::Column::Id).eq(1))
        .to_owned();
    txn.execute(&update).await?;
    Ok(())
}
