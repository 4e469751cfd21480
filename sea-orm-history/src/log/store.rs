//! Reading the tree's stored hashes for `tlog_tiles`, whose functions read through a synchronous
//! [`HashReader`], each in one call whose indexes depend only on the sizes asked about:
//! [`with_hashes`] runs such functions once over placeholders to learn which hashes they read, reads
//! those from the database, and runs them again over them.

use std::cell::RefCell;
use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use tlog_tiles::{Hash, HashReader};

use super::tables::log_hash;
use crate::error::{HistoryError, HistoryResult};

/// Hex of a hash, as the tables keep it.
pub(crate) fn hex_of(hash: &Hash) -> String {
    hex::encode(hash.0)
}

/// A hash from its hex.
pub(crate) fn from_hex(text: &str) -> HistoryResult<Hash> {
    let bytes = hex::decode(text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| HistoryError::Malformed(format!("a log hash {text:?}")))?;
    Ok(Hash(bytes))
}

/// A stored hash index as the `BIGINT` key.
pub(crate) fn key(index: u64) -> HistoryResult<i64> {
    i64::try_from(index).map_err(|_| HistoryError::Malformed(format!("log index {index}")))
}

/// The reader of one pass: recording what is asked for, or answering from what was read.
pub(crate) enum Reader<'a> {
    /// First pass: remember the indexes, answer placeholders.
    Recording(&'a RefCell<Vec<u64>>),
    /// Second pass: the hashes read.
    Known(HashMap<u64, Hash>),
}

impl HashReader for Reader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        match self {
            // Placeholders, so that every read of the function is seen; its result is dropped.
            Self::Recording(asked) => {
                asked.borrow_mut().extend_from_slice(indexes);
                Ok(vec![Hash([0; 32]); indexes.len()])
            }
            Self::Known(known) => indexes
                .iter()
                .map(|i| {
                    known
                        .get(i)
                        .copied()
                        .ok_or(tlog_tiles::Error::IndexesNotInTree)
                })
                .collect(),
        }
    }
}

/// The stored hashes at `indexes`.
///
/// # Errors
/// Database errors; [`HistoryError::Malformed`] for a stored hash that is not one.
pub(crate) async fn read<C: ConnectionTrait>(
    db: &C,
    indexes: &[u64],
) -> HistoryResult<HashMap<u64, Hash>> {
    let mut found = HashMap::with_capacity(indexes.len());
    for chunk in indexes.chunks(500) {
        let keys = chunk
            .iter()
            .map(|&i| key(i))
            .collect::<HistoryResult<Vec<_>>>()?;
        let rows = log_hash::Entity::find()
            .filter(log_hash::Column::Idx.is_in(keys))
            .all(db)
            .await?;
        for row in rows {
            found.insert(
                u64::try_from(row.idx).unwrap_or_default(),
                from_hex(&row.hash)?,
            );
        }
    }
    Ok(found)
}

/// Runs `f` over the stored hashes it reads (see the module docs).
///
/// # Errors
/// [`HistoryError::NotFound`] when a hash it needs is not stored (the log's tables were edited, or
/// the tree is smaller than asked); `f`'s other errors as [`HistoryError::BadInput`]; database errors.
pub(crate) async fn with_hashes<C, T, F>(db: &C, f: F) -> HistoryResult<T>
where
    C: ConnectionTrait,
    F: Fn(&Reader<'_>) -> Result<T, tlog_tiles::Error>,
{
    let asked = RefCell::new(Vec::new());
    let first = f(&Reader::Recording(&asked));
    let mut asked = asked.into_inner();
    if asked.is_empty() {
        return first.map_err(|e| HistoryError::BadInput(e.to_string()));
    }
    asked.sort_unstable();
    asked.dedup();
    let known = read(db, &asked).await?;
    if known.len() < asked.len() {
        return Err(HistoryError::NotFound(
            "a hash of the log's tree (its tables were edited, or the tree is smaller)".into(),
        ));
    }
    f(&Reader::Known(known)).map_err(|e| HistoryError::BadInput(e.to_string()))
}
