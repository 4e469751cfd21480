//! Reading the tree's stored hashes for `tlog_tiles`, whose functions read through a synchronous
//! [`HashReader`], each in one call whose indexes depend only on the sizes asked about:
//! [`with_hashes`] runs such functions once over placeholders to learn which hashes they read, reads
//! those from the database, and runs them again over them.

use std::cell::RefCell;
use std::collections::HashMap;

use sea_orm::sea_query::{Expr, InsertStatement};
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

/// The row counts of the multi-row `INSERT`s the log writes: every statement holds one of these
/// many rows, as many of the largest as fit, then smaller ones.
const INSERT_SIZES: [usize; 5] = [256, 64, 16, 4, 1];

/// Inserts `rows` with `template` (its table and columns), in statements of a few fixed sizes
/// ([`INSERT_SIZES`]). sqlx prepares and keeps every distinct statement in each pooled connection's
/// cache; one statement per batch size had made a sequencing server's memory grow with every tick
/// (about 200 bytes per record sequenced, until each connection's cache of a hundred statements of
/// up to thousands of placeholders was full). With fixed sizes there are five shapes per table.
///
/// # Errors
/// Database errors; [`HistoryError::Malformed`] for a row that does not fit the columns.
pub(crate) async fn insert_rows<C: ConnectionTrait, const N: usize>(
    db: &C,
    template: &InsertStatement,
    rows: Vec<[Expr; N]>,
) -> HistoryResult<()> {
    let sizes = statement_sizes(rows.len());
    let mut rows = rows.into_iter();
    for size in sizes {
        let mut insert = template.clone();
        for row in rows.by_ref().take(size) {
            insert
                .values(row)
                .map_err(|e| HistoryError::Malformed(e.to_string()))?;
        }
        db.execute(&insert).await?;
    }
    Ok(())
}

/// The row counts of the statements [`insert_rows`] sends `n` rows in, largest first.
fn statement_sizes(mut n: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    for size in INSERT_SIZES {
        while n >= size {
            sizes.push(size);
            n -= size;
        }
    }
    sizes
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
    for chunk in indexes.chunks(512) {
        let mut keys = chunk
            .iter()
            .map(|&i| key(i))
            .collect::<HistoryResult<Vec<_>>>()?;
        // Padded to a power of two with the last key, for a handful of statement shapes (see
        // insert_rows).
        if let Some(&last) = keys.last() {
            keys.resize(keys.len().next_power_of_two(), last);
        }
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

#[cfg(test)]
mod tests {
    use super::{INSERT_SIZES, statement_sizes};

    #[test]
    fn rows_go_in_statements_of_a_few_fixed_sizes_whatever_their_number() {
        assert_eq!(statement_sizes(0), Vec::<usize>::new());
        assert_eq!(
            statement_sizes(1_000),
            [256, 256, 256, 64, 64, 64, 16, 16, 4, 4]
        );
        for n in 0..2_000 {
            let sizes = statement_sizes(n);
            assert_eq!(sizes.iter().sum::<usize>(), n);
            assert!(sizes.iter().all(|s| INSERT_SIZES.contains(s)));
            assert!(sizes.len() <= n / 256 + 12, "{n}: {sizes:?}");
        }
    }
}
