//! The verifiable log: one append-only Merkle tree (RFC 6962/9162 hashing) over every history record
//! of every historized table, with signed checkpoints, so that the history can be proved to someone
//! who keeps nothing but a small signed checkpoint — against the database's administrator too, who
//! can rewrite an object's whole hash chain but not a tree whose root was copied elsewhere.
//!
//! - [`sequence`] (`sequencer`): a background job appends committed records to the log, in the order
//!   it finds them; the write path never waits for it, and across replicas one runs at a time.
//! - [`make_checkpoint`] (`checkpoint`): signs the current tree head as a C2SP `tlog-checkpoint` note
//!   with an Ed25519 key ([`CheckpointKey`]); [`parse_checkpoint`] reads one back and checks it.
//! - [`inclusion_proof`] and [`consistency_proof`] (`proof`): RFC 9162's proofs, from the stored
//!   hashes (`tlog_tiles`).
//! - [`verify_checkpoint`] (`verify`): proves every record a checkpoint covers is still there,
//!   unchanged and in place, and names the first one at fault.
//!
//! A leaf is `SHA-256(0x00 ‖ "<entity>\n<record id>\n<record hash>")`: it commits to the record's
//! hash, and so to its content and to every earlier record of its object.

mod checkpoint;
mod proof;
mod sequencer;
mod store;
pub mod tables;
mod verify;

pub use checkpoint::{
    CheckpointKey, SignedCheckpoint, checkpoints, latest_checkpoint, make_checkpoint,
    parse_checkpoint,
};
pub use proof::{
    ConsistencyProof, InclusionProof, consistency_proof, entry_of, inclusion_proof, root_at,
    tree_size,
};
pub use sequencer::{Cursors, SequenceOptions, SequenceReport, sequence, sequence_on};
pub use tlog_tiles::Hash;
pub use verify::{ArchivedRecords, LogFault, LogVerification, VerifyOptions, verify_checkpoint};

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{Condition, DbBackend};
use tlog_tiles::{EMPTY_HASH, node_hash, record_hash};
use uuid::Uuid;

use tables::log_entry;

/// The leaf of a record in the log.
pub fn leaf_hash(entity: &str, record_id: &Uuid, record_hash_hex: &str) -> Hash {
    record_hash(format!("{entity}\n{record_id}\n{record_hash_hex}").as_bytes())
}

/// Keeps the rows of `select`, which reads the history table `table`, that have no log entry: none
/// whose record is the row's `id` (and, with `also`, that meets it too). On MySQL/MariaDB it is an
/// outer join kept where the entry is null: MariaDB materializes a `NOT EXISTS` over the whole log
/// (a temporary table of every entry, spilled to disk past a few hundred thousand), whereas it looks
/// each row up in the log's unique index for the outer join, in the order it reads them. Elsewhere,
/// the `NOT EXISTS`.
pub(crate) fn without_log_entry(
    select: &mut SelectStatement,
    backend: DbBackend,
    table: &Alias,
    also: Option<Expr>,
) {
    let record = Expr::col((log_entry::Entity, log_entry::Column::RecordId));
    let mut entry = Condition::all().add(record.clone().equals((table.clone(), Alias::new("id"))));
    if let Some(also) = also {
        entry = entry.add(also);
    }
    if backend == DbBackend::MySql {
        select
            .left_join(log_entry::Entity, entry)
            .and_where(record.is_null());
    } else {
        let logged = Query::select()
            .expr(Expr::val(1))
            .from(log_entry::Entity)
            .cond_where(entry)
            .to_owned();
        select.and_where(Expr::exists(logged).not());
    }
}

/// The root of a tree built leaf by leaf, keeping only the roots of its complete subtrees (at most
/// `log₂ n` hashes), as RFC 6962 defines it.
#[derive(Default)]
pub(crate) struct RootBuilder {
    /// (height, hash) of each complete subtree, largest first.
    stack: Vec<(u32, Hash)>,
}

impl RootBuilder {
    /// Appends a leaf.
    pub(crate) fn push(&mut self, leaf: Hash) {
        let mut node = (0, leaf);
        while let Some(&(height, left)) = self.stack.last() {
            if height != node.0 {
                break;
            }
            self.stack.pop();
            node = (height + 1, node_hash(left, node.1));
        }
        self.stack.push(node);
    }

    /// The root of the leaves so far.
    pub(crate) fn root(&self) -> Hash {
        let mut nodes = self.stack.iter().rev();
        let Some(&(_, mut root)) = nodes.next() else {
            return EMPTY_HASH;
        };
        for &(_, left) in nodes {
            root = node_hash(left, root);
        }
        root
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;

    use tlog_tiles::{
        HashReader, check_record, check_tree, prove_record, prove_tree, stored_hash_index,
        stored_hashes, tree_hash,
    };

    use super::*;

    /// The leaves and roots of the Merkle tree test vectors of RFC 6962's reference implementation
    /// (certificate-transparency's `merkle_tree_test`).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    struct Stored(HashMap<u64, Hash>);

    impl HashReader for Stored {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
            Ok(indexes.iter().map(|i| self.0[i]).collect())
        }
    }

    #[test]
    fn the_streamed_root_and_the_stored_tree_give_rfc_6962s_roots() {
        let mut builder = RootBuilder::default();
        let mut stored = Stored(HashMap::new());
        assert_eq!(builder.root(), EMPTY_HASH);
        for (n, (leaf, expected)) in LEAVES.iter().zip(ROOTS).enumerate() {
            let data = hex::decode(leaf).unwrap();
            builder.push(record_hash(&data));
            assert_eq!(hex::encode(builder.root().0), expected, "{} leaves", n + 1);
            let n = n as u64;
            let hashes = stored_hashes(n, &data, &stored).unwrap();
            for (offset, hash) in (0..).zip(hashes) {
                stored.0.insert(stored_hash_index(0, n) + offset, hash);
            }
            assert_eq!(hex::encode(tree_hash(n + 1, &stored).unwrap().0), expected);
        }
    }

    #[test]
    fn proofs_from_the_stored_tree_check_and_a_changed_leaf_does_not() {
        let mut stored = Stored(HashMap::new());
        let leaves: Vec<Vec<u8>> = (0..37_u32).map(|i| i.to_be_bytes().to_vec()).collect();
        for (n, data) in (0_u64..).zip(&leaves) {
            for (offset, hash) in (0..).zip(stored_hashes(n, data, &stored).unwrap()) {
                stored.0.insert(stored_hash_index(0, n) + offset, hash);
            }
        }
        let root = tree_hash(37, &stored).unwrap();
        for n in [0_u64, 5, 31, 36] {
            let proof = prove_record(37, n, &stored).unwrap();
            let leaf = record_hash(&leaves[n as usize]);
            assert!(check_record(&proof, 37, root, n, leaf).is_ok());
            assert!(check_record(&proof, 37, root, n, record_hash(b"forged")).is_err());
        }
        for old in [1_u64, 8, 20, 37] {
            let proof = prove_tree(37, old, &stored).unwrap();
            let old_root = tree_hash(old, &stored).unwrap();
            assert!(check_tree(&proof, 37, root, old, old_root).is_ok());
            assert!(check_tree(&proof, 37, root, old, EMPTY_HASH).is_err());
        }
    }
}
