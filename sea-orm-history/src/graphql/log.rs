//! The verifiable log in the API (see [`crate::log`]): `LogQuery` (`logSize`, `checkpoint`,
//! `checkpoints`, `inclusionProof`, `consistencyProof`), to merge into the query root beside
//! `HistoryQuery`. Hashes are base64, as checkpoints write them.

use async_graphql::{Context, ErrorExtensions, ID, Object, SimpleObject};

use super::pagination::{ListConnection, ListCursors, list_complexity, page_size};
use super::scalars::Timestamp;
use super::{bad_input, database, settings};
use crate::log::{self, tables::log_checkpoint};

/// A signed tree head of the log.
#[derive(SimpleObject, Clone, Debug)]
pub struct Checkpoint {
    /// How many records the tree holds.
    pub size: i64,
    /// Its root hash, base64.
    pub root_hash: String,
    /// The signed note (C2SP tlog-checkpoint), to copy elsewhere as it is.
    pub note: String,
    /// When it was signed.
    pub at: Timestamp,
}

impl From<log_checkpoint::Model> for Checkpoint {
    fn from(m: log_checkpoint::Model) -> Self {
        Self {
            size: m.size,
            root_hash: m.root,
            note: m.note,
            at: Timestamp(m.at),
        }
    }
}

/// That a record is in the tree of a size (RFC 9162's inclusion proof).
#[derive(SimpleObject, Clone, Debug)]
pub struct InclusionProof {
    /// The record.
    pub record_id: ID,
    /// Its index in the log.
    pub log_index: i64,
    /// The tree's size.
    pub tree_size: i64,
    /// The record's leaf hash: SHA-256 of 0x00 and `"<entity>\n<record id>\n<record hash>"`.
    pub leaf_hash: String,
    /// The tree's root hash.
    pub root_hash: String,
    /// The audit path, from the leaf up.
    pub hashes: Vec<String>,
}

/// That a tree extends a smaller one (RFC 9162's consistency proof).
#[derive(SimpleObject, Clone, Debug)]
pub struct ConsistencyProof {
    /// The smaller size.
    pub from: i64,
    /// The larger size.
    pub to: i64,
    /// The root at `from`.
    pub from_root: String,
    /// The root at `to`.
    pub to_root: String,
    /// The proof's hashes.
    pub hashes: Vec<String>,
}

fn size(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn base64_all(hashes: &[log::Hash]) -> Vec<String> {
    hashes.iter().map(ToString::to_string).collect()
}

fn unsigned(name: &str, value: i64) -> async_graphql::Result<u64> {
    u64::try_from(value).map_err(|_| bad_input(format!("{name} may not be negative")))
}

/// The log's queries.
#[derive(Default)]
pub struct LogQuery;

#[Object]
impl LogQuery {
    /// How many history records the log holds (records join it shortly after they commit).
    async fn log_size(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        log::tree_size(database(ctx)?)
            .await
            .map(size)
            .map_err(|e| e.extend())
    }

    /// The latest signed checkpoint, if one was made.
    async fn checkpoint(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Checkpoint>> {
        log::latest_checkpoint(database(ctx)?)
            .await
            .map(|c| c.map(Checkpoint::from))
            .map_err(|e| e.extend())
    }

    /// The signed checkpoints, newest first.
    #[graphql(complexity = "list_complexity(first, child_complexity)")]
    async fn checkpoints(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<Checkpoint>> {
        let first = page_size(&settings(ctx), first)?;
        let cursors = ListCursors::of("checkpoints");
        let before = cursors.after(after.as_deref(), |s| s.parse::<i64>().ok())?;
        let page = log::checkpoints(database(ctx)?, first, before)
            .await
            .map_err(|e| e.extend())?;
        Ok(cursors.connection(page, |c| c.size.to_string(), Checkpoint::from))
    }

    /// The proof that a history record is in the tree of `treeSize` records (default: the current
    /// tree). `NOT_FOUND` for a record not sequenced yet, or not in a tree that small.
    async fn inclusion_proof(
        &self,
        ctx: &Context<'_>,
        record_id: ID,
        tree_size: Option<i64>,
    ) -> async_graphql::Result<InclusionProof> {
        let id = uuid::Uuid::parse_str(&record_id)
            .map_err(|_| bad_input("recordId is not a history record id"))?;
        let tree_size = tree_size.map(|n| unsigned("treeSize", n)).transpose()?;
        let proof = log::inclusion_proof(database(ctx)?, id, tree_size)
            .await
            .map_err(|e| e.extend())?;
        Ok(InclusionProof {
            record_id,
            log_index: size(proof.log_index),
            tree_size: size(proof.tree_size),
            leaf_hash: proof.leaf.to_string(),
            root_hash: proof.root.to_string(),
            hashes: base64_all(&proof.hashes),
        })
    }

    /// The proof that the tree of `to` records extends the tree of `from` (`1 <= from <= to <=
    /// logSize`).
    async fn consistency_proof(
        &self,
        ctx: &Context<'_>,
        from: i64,
        to: i64,
    ) -> async_graphql::Result<ConsistencyProof> {
        let proof =
            log::consistency_proof(database(ctx)?, unsigned("from", from)?, unsigned("to", to)?)
                .await
                .map_err(|e| e.extend())?;
        Ok(ConsistencyProof {
            from,
            to,
            from_root: proof.from_root.to_string(),
            to_root: proof.to_root.to_string(),
            hashes: base64_all(&proof.hashes),
        })
    }
}
