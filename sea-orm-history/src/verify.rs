//! Tamper evidence: recompute each history record's hash from its content and the previous record's
//! stored hash, and report the first version of an object where the chain breaks: a record edited
//! behind the server's back, a record removed (its successor then points at the wrong hash), or a
//! version out of sequence. One object at a time ([`verify_object`]); ([`verify_table`]) every table, in keyset-paged
//! batches of bounded memory, for a whole table. An object whose oldest records were pruned is
//! checked from its prune anchor: the version and hash of the last record removed.

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, EntityTrait};

use crate::capture::history_select;
use crate::entity::EntityInfo;
use crate::error::HistoryResult;
use crate::query::{count, fetch};
use crate::record::{HistoryRow, record_hash};
use crate::tables::prune_anchor;

/// Records read per batch by [`verify_table`].
const BATCH: u64 = 5_000;

/// The outcome for one object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    /// Records checked (up to and including the first broken one).
    pub checked: u32,
    /// The first version whose record does not match its hash or sequence.
    pub broken_at: Option<i32>,
    /// Why it is broken.
    pub reason: Option<String>,
}

impl Verification {
    /// Whether the whole chain holds.
    pub fn ok(&self) -> bool {
        self.broken_at.is_none()
    }
}

/// Follows one object's chain, record by record, in version order.
#[derive(Default)]
struct Chain {
    previous_hash: Option<String>,
    next_version: i32,
    result: Verification,
}

impl Chain {
    /// A chain from version 1, or from after the records pruning removed.
    fn new(anchor: Option<prune_anchor::Model>) -> Self {
        match anchor {
            Some(anchor) => Self {
                previous_hash: Some(anchor.hash),
                next_version: anchor.version + 1,
                ..Self::default()
            },
            None => Self {
                next_version: 1,
                ..Self::default()
            },
        }
    }

    /// Checks the next record; after the first break, later records are not looked at.
    fn check(&mut self, info: &EntityInfo, row: &HistoryRow) {
        if !self.result.ok() {
            return;
        }
        self.result.checked += 1;
        let expected = self.next_version;
        let reason = if row.version != expected {
            Some(format!(
                "version {expected} is missing (the next record is version {})",
                row.version
            ))
        } else if record_hash(&info.name, row, self.previous_hash.as_deref()) != row.hash {
            Some(format!(
                "the hash of version {expected} does not match its content and the previous record"
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            self.result.broken_at = Some(expected);
            self.result.reason = Some(reason);
            return;
        }
        self.previous_hash = Some(row.hash.clone());
        self.next_version = expected + 1;
    }
}

/// Verifies one object's chain.
///
/// # Errors
/// Database errors.
pub async fn verify_object<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    object_id: &str,
) -> HistoryResult<Verification> {
    let anchor = anchor(db, info, object_id).await?;
    let result = verify_from(db, info, object_id, anchor.clone()).await?;
    if result.broken_at.is_some() && result.checked == 1 {
        // A prune may have committed between reading the anchor and the records: read it again.
        let now = self::anchor(db, info, object_id).await?;
        if now != anchor {
            return verify_from(db, info, object_id, now).await;
        }
    }
    Ok(result)
}

async fn verify_from<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    object_id: &str,
    anchor: Option<prune_anchor::Model>,
) -> HistoryResult<Verification> {
    let mut chain = Chain::new(anchor);
    let mut after: Option<i32> = None;
    loop {
        let mut select = history_select(info);
        select.and_where(Expr::col(Alias::new("object_id")).eq(object_id));
        if let Some(version) = after {
            select.and_where(Expr::col(Alias::new("version")).gt(version));
        }
        select
            .order_by(Alias::new("version"), Order::Asc)
            .limit(BATCH);
        let rows = fetch(db, &select).await?;
        for row in &rows {
            chain.check(info, row);
        }
        if (rows.len() as u64) < BATCH || !chain.result.ok() {
            return Ok(chain.result);
        }
        after = rows.last().map(|r| r.version);
    }
}

/// Where the chain of `object_id` resumes after pruning, if its oldest records were pruned.
async fn anchor<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    object_id: &str,
) -> HistoryResult<Option<prune_anchor::Model>> {
    Ok(
        prune_anchor::Entity::find_by_id((info.name.clone(), object_id.to_owned()))
            .one(db)
            .await?,
    )
}

/// A broken link found by [`verify_table`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenLink {
    /// The entity's name.
    pub entity: String,
    /// The object.
    pub object_id: String,
    /// The first version that does not verify.
    pub version: i32,
    /// Why.
    pub reason: String,
}

/// What [`verify_table`] found in one history table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableReport {
    /// Records read.
    pub records: u64,
    /// Objects seen.
    pub objects: u64,
    /// One entry per object whose chain breaks.
    pub broken: Vec<BrokenLink>,
}

/// How many records `entity`'s history table holds (for a progress bar).
///
/// # Errors
/// Database errors.
pub async fn count_records<C: ConnectionTrait>(db: &C, info: &EntityInfo) -> HistoryResult<u64> {
    count(
        db,
        Query::select()
            .column(Alias::new("id"))
            .from(Alias::new(&info.history_table))
            .to_owned(),
    )
    .await
}

/// Verifies every object of one history table, reading it in (object, version) order in batches;
/// `progress` is told how many records each batch held.
///
/// # Errors
/// Database errors.
pub async fn verify_table<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    mut progress: impl FnMut(u64),
) -> HistoryResult<TableReport> {
    let mut report = TableReport::default();
    let mut current: Option<(String, Chain)> = None;
    let mut after: Option<(String, i32)> = None;
    let finish = |report: &mut TableReport, object_id: String, chain: Chain| {
        report.objects += 1;
        if let (Some(version), Some(reason)) = (chain.result.broken_at, chain.result.reason) {
            report.broken.push(BrokenLink {
                entity: info.name.clone(),
                object_id,
                version,
                reason,
            });
        }
    };
    loop {
        let mut select = history_select(info);
        if let Some((object_id, version)) = &after {
            select.cond_where(
                Condition::any()
                    .add(Expr::col(Alias::new("object_id")).gt(object_id.as_str()))
                    .add(
                        Condition::all()
                            .add(Expr::col(Alias::new("object_id")).eq(object_id.as_str()))
                            .add(Expr::col(Alias::new("version")).gt(*version)),
                    ),
            );
        }
        select
            .order_by(Alias::new("object_id"), Order::Asc)
            .order_by(Alias::new("version"), Order::Asc)
            .limit(BATCH);
        let rows = fetch(db, &select).await?;
        for row in &rows {
            let same = current.as_ref().is_some_and(|(id, _)| *id == row.object_id);
            if !same {
                if let Some((id, chain)) = current.take() {
                    finish(&mut report, id, chain);
                }
                let anchor = if row.version > 1 {
                    anchor(db, info, &row.object_id).await?
                } else {
                    None
                };
                current = Some((row.object_id.clone(), Chain::new(anchor)));
            }
            if let Some((_, chain)) = current.as_mut() {
                chain.check(info, row);
            }
        }
        report.records += rows.len() as u64;
        progress(rows.len() as u64);
        if (rows.len() as u64) < BATCH {
            break;
        }
        after = rows.last().map(|r| (r.object_id.clone(), r.version));
    }
    if let Some((id, chain)) = current.take() {
        finish(&mut report, id, chain);
    }
    Ok(report)
}
