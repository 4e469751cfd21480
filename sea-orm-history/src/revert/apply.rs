//! Applying a planned revert in the caller's transaction, under the revert's change context: deletes
//! first, children before parents, then re-inserts, parents before children, then updates, each
//! entity in batched statements, each change recorded as ordinary history. Rows of one table that
//! point at each other (a baker's manager) go in the order their keys need. A database refusal that
//! planning could not foresee (a race, a unique key the schema does not declare) is reported as a
//! conflict, never as a raw database error.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, SqlErr};
use serde_json::Value as Json;

use super::{PlannedChange, RevertPlan};
use crate::capture::{PendingChange, parent_id, record_changes};
use crate::entity::EntityInfo;
use crate::error::{Conflict, ConflictReason, HistoryError, HistoryResult};
use crate::record::HistoryKind;
use crate::registry::Registry;
use crate::rows;

/// Orders `changes` of `info` so that a row comes after the row of the same table it points at
/// (reversed for deletes: a row goes before the row it points at).
fn by_self_reference<'a>(
    info: &EntityInfo,
    mut changes: Vec<&'a PlannedChange>,
    parents_first: bool,
) -> Vec<&'a PlannedChange> {
    let own: Vec<usize> = info
        .parents
        .iter()
        .enumerate()
        .filter(|(_, fk)| fk.parent_table == info.table)
        .map(|(i, _)| i)
        .collect();
    if own.is_empty() {
        return changes;
    }
    let row = |c: &PlannedChange| {
        c.target
            .clone()
            .or_else(|| c.current.clone())
            .unwrap_or_default()
    };
    let mut ordered = Vec::with_capacity(changes.len());
    let mut placed: BTreeSet<String> = BTreeSet::new();
    while !changes.is_empty() {
        let pending: BTreeSet<String> = changes.iter().map(|c| c.object_id.clone()).collect();
        let ready = changes.iter().position(|c| {
            let snapshot = row(c);
            own.iter().all(|&fk| {
                parent_id(info, fk, &snapshot).is_none_or(|p| {
                    p == c.object_id || !pending.contains(&p) || placed.contains(&p)
                })
            })
        });
        // A cycle inside the table: keep the rest in plan order (the database decides).
        let next = changes.remove(ready.unwrap_or(0));
        placed.insert(next.object_id.clone());
        ordered.push(next);
    }
    if !parents_first {
        ordered.reverse();
    }
    ordered
}

/// A database refusal while applying, as the conflict it stands for.
fn refused(error: HistoryError, info: &EntityInfo, changes: &[&PlannedChange]) -> HistoryError {
    let reason = match &error {
        HistoryError::Database(e) => match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => ConflictReason::UniqueTaken,
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => ConflictReason::MissingParent,
            _ => return error,
        },
        _ => return error,
    };
    tracing::warn!(entity = %info.name, error = %error, "the database refused a planned revert");
    HistoryError::Conflict(
        changes
            .iter()
            .map(|c| Conflict {
                entity: info.name.clone(),
                object_id: c.object_id.clone(),
                assignation_id: String::new(),
                reason,
            })
            .collect(),
    )
}

async fn apply_entity<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    kind: HistoryKind,
    changes: Vec<&PlannedChange>,
) -> HistoryResult<()> {
    let changes = by_self_reference(info, changes, kind != HistoryKind::Delete);
    let rows_of = |pick: fn(&PlannedChange) -> Option<&Json>| -> Vec<Json> {
        changes.iter().filter_map(|c| pick(c).cloned()).collect()
    };
    let (written, pending) = match kind {
        HistoryKind::Delete => {
            let ids: Vec<String> = changes.iter().map(|c| c.object_id.clone()).collect();
            (
                rows::delete(db, info, &ids).await.map(|_| ()),
                rows_of(|c| c.current.as_ref()),
            )
        }
        HistoryKind::Create => {
            let rows = rows_of(|c| c.target.as_ref());
            (rows::insert(db, info, &rows).await, rows)
        }
        HistoryKind::Update => {
            let rows = rows_of(|c| c.target.as_ref());
            (rows::update(db, info, &rows).await, rows)
        }
    };
    written.map_err(|e| refused(e, info, &changes))?;
    let records = pending
        .into_iter()
        .map(|snapshot| PendingChange {
            object_id: info.object_id(&snapshot),
            kind,
            snapshot,
        })
        .collect();
    record_changes(db, info, records).await?;
    Ok(())
}

/// Writes `plan` through `db` (a transaction with the revert's change context open).
///
/// # Errors
/// [`HistoryError::Conflict`] when the database refuses a change; database errors.
pub(super) async fn apply<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    plan: &RevertPlan,
) -> HistoryResult<()> {
    let entities = registry.entities();
    let order = entities
        .iter()
        .rev()
        .map(|e| (HistoryKind::Delete, e))
        .chain(entities.iter().map(|e| (HistoryKind::Create, e)))
        .chain(entities.iter().map(|e| (HistoryKind::Update, e)));
    for (kind, info) in order {
        let changes: Vec<&PlannedChange> = plan
            .changes
            .iter()
            .filter(|c| c.kind == kind && c.entity == info.name)
            .collect();
        if !changes.is_empty() {
            apply_entity(db, info, kind, changes).await?;
        }
    }
    Ok(())
}
