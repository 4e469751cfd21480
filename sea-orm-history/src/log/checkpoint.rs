//! Checkpoints: the log's signed tree heads, in the C2SP `tlog-checkpoint` format — a signed note
//! (`signed_note`) whose text is the origin, the tree size and the base64 root hash — with an Ed25519
//! key. [`make_checkpoint`] signs the current tree after checking that it extends the last checkpoint;
//! [`parse_checkpoint`] reads one back and, given the public key, checks its signature.

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, QueryOrder, QuerySelect,
    sea_query::OnConflict,
};
use signed_note::{Note, VerifierList, key_id};
use tlog_tiles::{Checkpoint, Hash, check_tree, prove_tree, tree_hash};

use super::proof::tree_size;
use super::store::with_hashes;
use super::tables::log_checkpoint;
use crate::error::{HistoryError, HistoryResult};
use crate::query::Page;

/// The signature algorithm byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 1;

/// The key id of `origin`'s Ed25519 `public` key in signed notes.
fn note_key_id(origin: &str, public: &VerifyingKey) -> u32 {
    key_id(
        origin,
        &[&[ALG_ED25519], public.as_bytes().as_slice()].concat(),
    )
}

fn bad_key(what: &str) -> HistoryError {
    HistoryError::BadInput(format!(
        "{what}: expected an Ed25519 key in PEM form (openssl genpkey -algorithm ED25519)"
    ))
}

fn check_origin(origin: &str) -> HistoryResult<()> {
    if signed_note::is_key_name_valid(origin) {
        Ok(())
    } else {
        Err(HistoryError::BadInput(format!(
            "the log's origin {origin:?} must be non-empty, without spaces or '+'"
        )))
    }
}

/// The private key that signs checkpoints, and the log's origin (the note's first line and the
/// signature's key name).
pub struct CheckpointKey {
    key: SigningKey,
    origin: String,
    id: u32,
}

impl CheckpointKey {
    /// From a PKCS#8 PEM Ed25519 private key.
    ///
    /// # Errors
    /// [`HistoryError::BadInput`] for anything else, or an origin that cannot name a key.
    pub fn from_pem(pem: &str, origin: &str) -> HistoryResult<Self> {
        check_origin(origin)?;
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|_| bad_key("the checkpoint key"))?;
        let id = note_key_id(origin, &key.verifying_key());
        Ok(Self {
            key,
            origin: origin.to_owned(),
            id,
        })
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The signed note of a checkpoint of `size` records with root `root`.
    ///
    /// # Errors
    /// [`HistoryError::Malformed`] when the note cannot be made.
    pub fn sign(&self, size: u64, root: &Hash) -> HistoryResult<String> {
        let malformed = |e: &dyn std::fmt::Display| HistoryError::Malformed(e.to_string());
        let text = Checkpoint::new(&self.origin, size, *root, "")
            .map_err(|e| malformed(&e))?
            .to_bytes();
        let mut note = Note::new(&text, &[]).map_err(|e| malformed(&e))?;
        note.add_sigs(&[self]).map_err(|e| malformed(&e))?;
        String::from_utf8(note.to_bytes()).map_err(|e| malformed(&e))
    }

    /// The verifier key in the signed-note format (`<origin>+<id>+<base64 key>`), for tools that
    /// read notes.
    pub fn verifier_key(&self) -> String {
        signed_note::new_ed25519_verifier_key(&self.origin, &self.key.verifying_key())
    }
}

impl signed_note::Signer for CheckpointKey {
    fn name(&self) -> &str {
        &self.origin
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.key.try_sign(msg)?.to_vec())
    }
}

/// A public key that checks checkpoints of the origin they name.
struct NoteVerifier {
    key: VerifyingKey,
    origin: String,
    id: u32,
}

impl signed_note::Verifier for NoteVerifier {
    fn name(&self) -> &str {
        &self.origin
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        ed25519_dalek::Signature::from_slice(sig).is_ok_and(|s| self.key.verify(msg, &s).is_ok())
    }
}

/// A checkpoint read from its note.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedCheckpoint {
    /// The log's origin.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The root hash.
    pub root: Hash,
    /// The note, as it was given.
    pub note: String,
}

/// Reads a checkpoint; with `public_key` (PEM), also checks that the origin's key signed it.
///
/// # Errors
/// [`HistoryError::BadInput`] for a malformed note or checkpoint, a bad key, or a signature that
/// does not verify with it.
pub fn parse_checkpoint(note: &str, public_key: Option<&str>) -> HistoryResult<SignedCheckpoint> {
    let bad = |why: &str| HistoryError::BadInput(format!("the checkpoint {why}"));
    let parsed = Note::from_bytes(note.as_bytes())
        .map_err(|e| bad(&format!("is not a signed note ({e})")))?;
    let checkpoint =
        Checkpoint::from_bytes(parsed.text()).map_err(|_| bad("is not a tlog checkpoint"))?;
    if let Some(pem) = public_key {
        let key = VerifyingKey::from_public_key_pem(pem).map_err(|_| bad_key("the public key"))?;
        let verifier = NoteVerifier {
            id: note_key_id(checkpoint.origin(), &key),
            key,
            origin: checkpoint.origin().to_owned(),
        };
        parsed
            .verify(&VerifierList::new(vec![Box::new(verifier)]))
            .map_err(|_| bad("is not signed by this key for its origin"))?;
    }
    Ok(SignedCheckpoint {
        origin: checkpoint.origin().to_owned(),
        size: checkpoint.size(),
        root: *checkpoint.hash(),
        note: note.to_owned(),
    })
}

/// Signs a checkpoint of the current tree, unless the latest one has its size already (then that
/// one). The tree must extend the latest checkpoint: a log that does not is refused.
///
/// # Errors
/// [`HistoryError::Malformed`] when the log does not extend the latest checkpoint, or the note cannot
/// be made; database errors.
pub async fn make_checkpoint(
    db: &DatabaseConnection,
    key: &CheckpointKey,
) -> HistoryResult<log_checkpoint::Model> {
    let txn = crate::capture::begin_write(db).await?;
    let size = tree_size(&txn).await?;
    let latest = latest_checkpoint(&txn).await?;
    if let Some(latest) = &latest
        && u64::try_from(latest.size).unwrap_or_default() == size
    {
        return Ok(latest.clone());
    }
    let root = with_hashes(&txn, |r| tree_hash(size, r)).await?;
    if let Some(latest) = &latest {
        let from = u64::try_from(latest.size).unwrap_or_default();
        let from_root = Hash::parse_hash(&latest.root)
            .map_err(|_| HistoryError::Malformed("a stored checkpoint's root".into()))?;
        if from > size {
            return Err(HistoryError::Malformed(format!(
                "the log holds {size} records, fewer than the last checkpoint's {from}"
            )));
        }
        if from > 0 {
            let proof = with_hashes(&txn, |r| prove_tree(size, from, r)).await?;
            check_tree(&proof, size, root, from, from_root).map_err(|_| {
                HistoryError::Malformed(format!(
                    "the log of {size} records does not extend the last checkpoint of {from}"
                ))
            })?;
        }
    }
    let note = key.sign(size, &root)?;
    let model = log_checkpoint::Model {
        size: super::store::key(size)?,
        root: root.to_string(),
        note,
        at: crate::now(),
    };
    log_checkpoint::Entity::insert(sea_orm::IntoActiveModel::into_active_model(model.clone()))
        .on_conflict(
            OnConflict::column(log_checkpoint::Column::Size)
                .do_nothing_on([log_checkpoint::Column::Size])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(model)
}

/// The latest checkpoint.
///
/// # Errors
/// Database errors.
pub async fn latest_checkpoint<C: ConnectionTrait>(
    db: &C,
) -> HistoryResult<Option<log_checkpoint::Model>> {
    Ok(log_checkpoint::Entity::find()
        .order_by_desc(log_checkpoint::Column::Size)
        .one(db)
        .await?)
}

/// Checkpoints, newest first, `first` of them below size `before`.
///
/// # Errors
/// Database errors.
pub async fn checkpoints<C: ConnectionTrait>(
    db: &C,
    first: u64,
    before: Option<i64>,
) -> HistoryResult<Page<log_checkpoint::Model>> {
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    let total = log_checkpoint::Entity::find().count(db).await?;
    let mut select = log_checkpoint::Entity::find();
    if let Some(before) = before {
        select = select.filter(log_checkpoint::Column::Size.lt(before));
    }
    let probe = select
        .order_by_desc(log_checkpoint::Column::Size)
        .limit(first + 1)
        .all(db)
        .await?;
    Ok(Page::from_probe(probe, first, total))
}
