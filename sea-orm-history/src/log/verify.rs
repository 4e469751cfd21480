//! Proving the history against a checkpoint kept outside the database: [`verify_checkpoint`] reads
//! the log's first `size` entries in order and, for each, the record it names; checks that the record
//! is still there (or was pruned, and is then taken from the prune archive when one is given), that
//! its content still matches its hash and its hash is still the one the log holds; and recomputes
//! the tree's root from those records, which must be the checkpoint's. Then it checks that the current
//! tree extends the checkpoint, and that no record dated before the checkpoint's newest ones is
//! missing from it (one inserted into the past). The first fault is named; memory stays flat (one
//! batch of records, and a stack of `log₂ n` hashes).

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tlog_tiles::{Hash, check_tree, prove_tree, stored_hash_index, tree_hash};
use uuid::Uuid;

use super::checkpoint::SignedCheckpoint;
use super::proof::tree_size;
use super::store::{key, read, with_hashes};
use super::tables::log_entry;
use super::{RootBuilder, leaf_hash, without_log_entry};
use crate::capture::history_select;
use crate::error::HistoryResult;
use crate::query::fetch;
use crate::record::{HISTORY_COLUMNS, HistoryRow, record_hash};
use crate::registry::Registry;
use crate::tables::prune_anchor;

/// Entries read per batch.
const BATCH: u64 = 2_000;

/// What is wrong, and where.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFault {
    /// The log index at fault, when one is.
    pub log_index: Option<u64>,
    /// The record's entity.
    pub entity: Option<String>,
    /// The record's object.
    pub object_id: Option<String>,
    /// The record's version.
    pub version: Option<i32>,
    /// The record.
    pub record_id: Option<Uuid>,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for LogFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let (Some(entity), Some(object), Some(version)) =
            (&self.entity, &self.object_id, self.version)
        {
            write!(f, "{entity} {object} version {version}")?;
            if let Some(index) = self.log_index {
                write!(f, " (log index {index})")?;
            }
            write!(f, ": ")?;
        } else if let Some(index) = self.log_index {
            write!(f, "log index {index}: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// The outcome of [`verify_checkpoint`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogVerification {
    /// The checkpoint's tree size.
    pub checkpoint_size: u64,
    /// The log's size now.
    pub log_size: u64,
    /// Records checked.
    pub checked: u64,
    /// Of those, records pruned from the history tables and checked from the archive.
    pub archived: u64,
    /// Records pruned and not in any archive given: their place in the tree is checked from the log
    /// alone, their content is not.
    pub pruned: u64,
    /// The first fault found.
    pub fault: Option<LogFault>,
}

impl LogVerification {
    /// Whether everything the checkpoint covers holds.
    pub fn ok(&self) -> bool {
        self.fault.is_none()
    }
}

/// History records removed by pruning, read back from its archive.
#[derive(Default)]
pub struct ArchivedRecords {
    by_id: HashMap<Uuid, (String, HistoryRow)>,
    hashes: HashMap<(String, String, i32), String>,
}

impl ArchivedRecords {
    /// Adds a record of `entity`.
    pub fn add(&mut self, entity: &str, row: HistoryRow) {
        self.hashes.insert(
            (entity.to_owned(), row.object_id.clone(), row.version),
            row.hash.clone(),
        );
        self.by_id.insert(row.id, (entity.to_owned(), row));
    }

    /// How many it holds.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// How [`verify_checkpoint`] runs.
pub struct VerifyOptions<'a> {
    /// How long after its `at` a record may commit and still be sequenced in order (the sequencer's
    /// window): records dated earlier than the checkpoint's newest by more than this must be in it.
    pub grace: chrono::Duration,
    /// Records removed by pruning.
    pub archive: Option<&'a ArchivedRecords>,
}

impl Default for VerifyOptions<'_> {
    fn default() -> Self {
        Self {
            grace: chrono::Duration::minutes(10),
            archive: None,
        }
    }
}

fn fault(
    index: Option<u64>,
    entry: Option<&log_entry::Model>,
    reason: impl Into<String>,
) -> LogFault {
    LogFault {
        log_index: index,
        entity: entry.map(|e| e.entity.clone()),
        object_id: entry.map(|e| e.object_id.clone()),
        version: entry.map(|e| e.version),
        record_id: entry.map(|e| e.record_id),
        reason: reason.into(),
    }
}

/// What one batch needs besides its entries.
struct Batch {
    records: HashMap<Uuid, HistoryRow>,
    previous: HashMap<(String, String, i32), String>,
    anchors: HashMap<(String, String), prune_anchor::Model>,
    stored_leaves: HashMap<u64, Hash>,
}

async fn load<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    entries: &[log_entry::Model],
) -> HistoryResult<Result<Batch, LogFault>> {
    let mut batch = Batch {
        records: HashMap::new(),
        previous: HashMap::new(),
        anchors: HashMap::new(),
        stored_leaves: HashMap::new(),
    };
    let mut by_entity: HashMap<&str, Vec<&log_entry::Model>> = HashMap::new();
    for entry in entries {
        by_entity.entry(&entry.entity).or_default().push(entry);
    }
    for (entity, group) in by_entity {
        let Some(info) = registry.get(entity) else {
            let first = group[0];
            return Ok(Err(fault(
                u64::try_from(first.idx).ok(),
                Some(first),
                format!("the log names an entity {entity} that is not historized"),
            )));
        };
        for chunk in group.chunks(500) {
            let ids: Vec<Uuid> = chunk.iter().map(|e| e.record_id).collect();
            let mut select = history_select(info);
            select.and_where(Expr::col(Alias::new("id")).is_in(ids));
            for row in fetch(db, &select).await? {
                batch.records.insert(row.id, row);
            }
            let wanted: Vec<(String, i32)> = chunk
                .iter()
                .filter(|e| e.version > 1)
                .map(|e| (e.object_id.clone(), e.version - 1))
                .collect();
            for ((object, version), row) in crate::query::snapshots_at(db, info, &wanted).await? {
                batch
                    .previous
                    .insert((entity.to_owned(), object, version), row.hash);
            }
            let objects: HashSet<String> = chunk.iter().map(|e| e.object_id.clone()).collect();
            let anchors = prune_anchor::Entity::find()
                .filter(prune_anchor::Column::Entity.eq(entity))
                .filter(prune_anchor::Column::ObjectId.is_in(objects))
                .all(db)
                .await?;
            for anchor in anchors {
                batch
                    .anchors
                    .insert((anchor.entity.clone(), anchor.object_id.clone()), anchor);
            }
        }
    }
    let indexes: Vec<u64> = entries
        .iter()
        .map(|e| stored_hash_index(0, u64::try_from(e.idx).unwrap_or_default()))
        .collect();
    batch.stored_leaves = read(db, &indexes).await?;
    Ok(Ok(batch))
}

/// Checks one entry against its record; `None` when it holds.
fn check_entry(
    registry: &Registry,
    entry: &log_entry::Model,
    index: u64,
    batch: &Batch,
    archive: Option<&ArchivedRecords>,
    counts: &mut LogVerification,
) -> Option<LogFault> {
    let at_fault = |reason: &str| Some(fault(Some(index), Some(entry), reason));
    let key = (entry.entity.clone(), entry.object_id.clone());
    let anchor = batch.anchors.get(&key);
    let pruned = anchor.is_some_and(|a| a.version >= entry.version);
    let archived = archive.and_then(|a| a.by_id.get(&entry.record_id).map(|(_, row)| row));
    let row = match (batch.records.get(&entry.record_id), archived) {
        (Some(row), _) => row,
        (None, Some(row)) if pruned => {
            counts.archived += 1;
            row
        }
        (None, _) if pruned => {
            counts.pruned += 1;
            return None;
        }
        (None, _) => return at_fault("the record is gone from its history table"),
    };
    let previous = if entry.version == 1 {
        None
    } else {
        let wanted = (
            entry.entity.clone(),
            entry.object_id.clone(),
            entry.version - 1,
        );
        let found = batch
            .previous
            .get(&wanted)
            .or_else(|| archive.and_then(|a| a.hashes.get(&wanted)))
            .cloned()
            .or_else(|| {
                anchor
                    .filter(|a| a.version == entry.version - 1)
                    .map(|a| a.hash.clone())
            });
        match found {
            Some(hash) => Some(hash),
            None => return at_fault("the record before it is gone, so its hash cannot be checked"),
        }
    };
    let Some(info) = registry.get(&entry.entity) else {
        return at_fault("its entity is not historized");
    };
    if record_hash(&info.name, row, previous.as_deref()) != row.hash {
        return at_fault("its content no longer matches its hash: the record was edited");
    }
    if row.hash != entry.record_hash {
        return at_fault(
            "its hash is not the one the log holds for it: the record (or the log) was rewritten",
        );
    }
    None
}

/// Proves the history against `checkpoint` (see the module docs); `progress` is told how many
/// records each batch checked.
///
/// # Errors
/// Database errors.
pub async fn verify_checkpoint<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    checkpoint: &SignedCheckpoint,
    options: &VerifyOptions<'_>,
    mut progress: impl FnMut(u64),
) -> HistoryResult<LogVerification> {
    let size = checkpoint.size;
    let mut result = LogVerification {
        checkpoint_size: size,
        log_size: tree_size(db).await?,
        ..LogVerification::default()
    };
    if size > result.log_size {
        result.fault = Some(fault(
            None,
            None,
            format!(
                "the log holds {} records, fewer than the checkpoint's {size}: records were removed \
                 from it",
                result.log_size
            ),
        ));
        return Ok(result);
    }
    let mut root = RootBuilder::default();
    let mut newest = None;
    let mut next = 0_u64;
    while next < size {
        let entries = log_entry::Entity::find()
            .filter(log_entry::Column::Idx.gte(key(next)?))
            .filter(log_entry::Column::Idx.lt(key(size)?))
            .order_by_asc(log_entry::Column::Idx)
            .limit(BATCH)
            .all(db)
            .await?;
        if entries.is_empty() {
            result.fault = Some(fault(Some(next), None, "the entry is missing from the log"));
            return Ok(result);
        }
        let batch = match load(db, registry, &entries).await? {
            Ok(batch) => batch,
            Err(found) => {
                result.fault = Some(found);
                return Ok(result);
            }
        };
        for entry in &entries {
            if u64::try_from(entry.idx).ok() != Some(next) {
                result.fault = Some(fault(Some(next), None, "the entry is missing from the log"));
                return Ok(result);
            }
            let mut counts = LogVerification::default();
            if let Some(found) =
                check_entry(registry, entry, next, &batch, options.archive, &mut counts)
            {
                result.fault = Some(found);
                return Ok(result);
            }
            result.archived += counts.archived;
            result.pruned += counts.pruned;
            let leaf = leaf_hash(&entry.entity, &entry.record_id, &entry.record_hash);
            if batch.stored_leaves.get(&stored_hash_index(0, next)) != Some(&leaf) {
                result.fault = Some(fault(
                    Some(next),
                    Some(entry),
                    "the log's stored hash of this record was edited",
                ));
                return Ok(result);
            }
            root.push(leaf);
            newest = Ord::max(newest, Some(entry.at));
            result.checked += 1;
            next += 1;
        }
        progress(entries.len() as u64);
    }
    if root.root() != checkpoint.root {
        result.fault = Some(fault(
            None,
            None,
            format!(
                "the log's first {size} records do not hash to the checkpoint's root: its entries \
                 were rewritten, or the checkpoint is of another log"
            ),
        ));
        return Ok(result);
    }
    if let Some(found) = extends(db, checkpoint, result.log_size).await? {
        result.fault = Some(found);
        return Ok(result);
    }
    if let Some(newest) = newest {
        result.fault = inserted_into_the_past(db, registry, size, newest - options.grace).await?;
    }
    Ok(result)
}

/// Whether the stored tree of `log_size` records extends the checkpoint.
async fn extends<C: ConnectionTrait>(
    db: &C,
    checkpoint: &SignedCheckpoint,
    log_size: u64,
) -> HistoryResult<Option<LogFault>> {
    let size = checkpoint.size;
    let broken = |why: &str| Ok(Some(fault(None, None, why.to_owned())));
    if size == 0 {
        return Ok(None);
    }
    let Ok((proof, now)) = with_hashes(db, |r| {
        Ok((prove_tree(log_size, size, r)?, tree_hash(log_size, r)?))
    })
    .await
    else {
        return broken("the log's stored tree is incomplete: its hashes were removed");
    };
    if check_tree(&proof, log_size, now, size, checkpoint.root).is_err() {
        return broken(
            "the log's stored tree does not extend the checkpoint: its hashes were rewritten",
        );
    }
    Ok(None)
}

/// The oldest record dated before `cutoff` that the first `size` entries of the log do not hold.
async fn inserted_into_the_past<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    size: u64,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> HistoryResult<Option<LogFault>> {
    let col = |name: &str| Alias::new(name);
    for info in registry.entities() {
        let table = col(&info.history_table);
        let mut select = Query::select();
        select
            .columns(HISTORY_COLUMNS.map(|c| (table.clone(), col(c))))
            .from(table.clone());
        // Not covered: no entry of the record among the checkpoint's `size`.
        let covered = Expr::col((log_entry::Entity, log_entry::Column::Idx)).lt(key(size)?);
        without_log_entry(
            &mut select,
            db.get_database_backend(),
            &table,
            Some(covered),
        );
        select
            .and_where(Expr::col((table.clone(), col("at"))).lt(cutoff))
            .order_by((table.clone(), col("at")), Order::Asc)
            .limit(1);
        if let Some(row) = fetch(db, &select).await?.into_iter().next() {
            return Ok(Some(LogFault {
                log_index: None,
                entity: Some(info.name.clone()),
                object_id: Some(row.object_id.clone()),
                version: Some(row.version),
                record_id: Some(row.id),
                reason: "it is dated before the checkpoint's records but the checkpoint does not \
                         cover it: it was inserted into the past"
                    .into(),
            }));
        }
    }
    Ok(None)
}
