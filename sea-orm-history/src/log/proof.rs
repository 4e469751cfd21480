//! Reading the log: its size and root, a record's place, and the two proofs of RFC 9162 — that a
//! record is in the tree of a given size (inclusion), and that a tree extends an earlier one
//! (consistency) — computed by `tlog_tiles` from the stored hashes.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use tlog_tiles::{Hash, prove_record, prove_tree, tree_hash};
use uuid::Uuid;

use super::leaf_hash;
use super::store::with_hashes;
use super::tables::{log_entry, log_state};
use crate::error::{HistoryError, HistoryResult};

/// That a record is in the tree of a size.
#[derive(Clone, Debug, PartialEq)]
pub struct InclusionProof {
    /// The record.
    pub record_id: Uuid,
    /// Its log index.
    pub log_index: u64,
    /// The tree's size.
    pub tree_size: u64,
    /// The record's leaf hash.
    pub leaf: Hash,
    /// The tree's root.
    pub root: Hash,
    /// The audit path, leaf to root.
    pub hashes: Vec<Hash>,
}

/// That the tree of size `to` extends the tree of size `from`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsistencyProof {
    /// The smaller size.
    pub from: u64,
    /// The larger size.
    pub to: u64,
    /// The root at `from`.
    pub from_root: Hash,
    /// The root at `to`.
    pub to_root: Hash,
    /// The proof's hashes.
    pub hashes: Vec<Hash>,
}

/// How many records the log holds.
///
/// # Errors
/// Database errors.
pub async fn tree_size<C: ConnectionTrait>(db: &C) -> HistoryResult<u64> {
    Ok(log_state::Entity::find_by_id(1)
        .one(db)
        .await?
        .map_or(0, |s| u64::try_from(s.size).unwrap_or_default()))
}

/// The root of the tree of `size` records.
///
/// # Errors
/// [`HistoryError::BadInput`] for a size beyond the log; database errors.
pub async fn root_at<C: ConnectionTrait>(db: &C, size: u64) -> HistoryResult<Hash> {
    let current = tree_size(db).await?;
    if size > current {
        return Err(HistoryError::BadInput(format!(
            "the log holds {current} records, not {size}"
        )));
    }
    with_hashes(db, |r| tree_hash(size, r)).await
}

/// The log entry of a record, once it is sequenced.
///
/// # Errors
/// Database errors.
pub async fn entry_of<C: ConnectionTrait>(
    db: &C,
    record_id: Uuid,
) -> HistoryResult<Option<log_entry::Model>> {
    Ok(log_entry::Entity::find()
        .filter(log_entry::Column::RecordId.eq(record_id))
        .one(db)
        .await?)
}

/// The proof that `record_id` is in the tree of `tree_size` records (the current tree when `None`).
///
/// # Errors
/// [`HistoryError::NotFound`] for a record not sequenced yet, or not in a tree that small;
/// [`HistoryError::BadInput`] for a size beyond the log; database errors.
pub async fn inclusion_proof<C: ConnectionTrait>(
    db: &C,
    record_id: Uuid,
    tree_size: Option<u64>,
) -> HistoryResult<InclusionProof> {
    let entry = entry_of(db, record_id).await?.ok_or_else(|| {
        HistoryError::NotFound(format!(
            "record {record_id} in the log (not sequenced yet?)"
        ))
    })?;
    let current = self::tree_size(db).await?;
    let size = tree_size.unwrap_or(current);
    if size > current {
        return Err(HistoryError::BadInput(format!(
            "the log holds {current} records, not {size}"
        )));
    }
    let index = u64::try_from(entry.idx).unwrap_or(u64::MAX);
    if index >= size {
        return Err(HistoryError::NotFound(format!(
            "record {record_id} in the tree of {size} records (its log index is {index})"
        )));
    }
    let (hashes, root) = with_hashes(db, |r| {
        Ok((prove_record(size, index, r)?, tree_hash(size, r)?))
    })
    .await?;
    Ok(InclusionProof {
        record_id,
        log_index: index,
        tree_size: size,
        leaf: leaf_hash(&entry.entity, &entry.record_id, &entry.record_hash),
        root,
        hashes,
    })
}

/// The proof that the tree of `to` records extends the tree of `from`.
///
/// # Errors
/// [`HistoryError::BadInput`] unless `1 <= from <= to <= size`; database errors.
pub async fn consistency_proof<C: ConnectionTrait>(
    db: &C,
    from: u64,
    to: u64,
) -> HistoryResult<ConsistencyProof> {
    let current = tree_size(db).await?;
    if from == 0 || from > to || to > current {
        return Err(HistoryError::BadInput(format!(
            "a consistency proof needs 1 <= from <= to <= {current} (the log's size)"
        )));
    }
    let (hashes, from_root, to_root) = with_hashes(db, |r| {
        Ok((
            prove_tree(to, from, r)?,
            tree_hash(from, r)?,
            tree_hash(to, r)?,
        ))
    })
    .await?;
    Ok(ConsistencyProof {
        from,
        to,
        from_root,
        to_root,
        hashes,
    })
}
