//! Applying a planned revert in the caller's transaction, under the revert's change context, each
//! change recorded as ordinary history.
//!
//! The changes go in an order the schema accepts, computed from the plan itself:
//!
//! - a row is re-inserted, or pointed at a parent, only after that parent is re-inserted;
//! - a row is deleted only after the rows pointing at it are deleted or pointed elsewhere;
//! - a unique value is taken only after the row holding it gives it up (deleted, or changed).
//!
//! Between those constraints the default is deletes (children first), then re-inserts (parents
//! first), then updates, and consecutive changes of one kind to one entity go as one batched
//! statement (one at a time for a table whose rows point at each other). Constraints that form a cycle (two rows swapping a unique value) keep the default order
//! and the database decides. A database refusal that planning could not foresee (a race, a unique key
//! the schema does not declare) is reported as a conflict, never as a raw database error.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ConnectionTrait, SqlErr};
use serde_json::Value as Json;

use super::{PlannedChange, RevertPlan};
use crate::capture::{PendingChange, parent_id, record_changes};
use crate::entity::EntityInfo;
use crate::error::{Conflict, ConflictReason, HistoryError, HistoryResult};
use crate::record::HistoryKind;
use crate::registry::Registry;
use crate::rows;

/// The default rank of a change: deletes children-first, inserts parents-first, then updates.
fn default_rank(registry: &Registry, change: &PlannedChange) -> (u8, usize) {
    let position = registry
        .entities()
        .iter()
        .position(|e| e.name == change.entity)
        .unwrap_or(0);
    match change.kind {
        HistoryKind::Delete => (0, registry.entities().len() - position),
        HistoryKind::Create => (1, position),
        HistoryKind::Update => (2, position),
    }
}

/// The values of `info`'s unique key `key` in `row`, when all are set.
fn unique_values(info: &EntityInfo, key: &[usize], row: &Json) -> Option<Vec<Json>> {
    key.iter()
        .map(|&i| {
            row.get(&info.columns[i].field)
                .filter(|v| !v.is_null())
                .cloned()
        })
        .collect()
}

/// The order of `plan`'s changes (indexes into `plan.changes`; see the module docs).
fn order(registry: &Registry, plan: &RevertPlan) -> Vec<usize> {
    let changes = &plan.changes;
    let n = changes.len();
    let index: HashMap<(&str, &str), usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.entity.as_str(), c.object_id.as_str()), i))
        .collect();
    // `before[i]` holds the changes that must run after change i.
    let mut before: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting = vec![0usize; n];
    let mut edge = |from: usize, to: usize, before: &mut Vec<Vec<usize>>| {
        if from != to && !before[from].contains(&to) {
            before[from].push(to);
            waiting[to] += 1;
        }
    };
    // Unique values: who gives each up, who takes it.
    let mut vacated: HashMap<(String, usize, String), Vec<usize>> = HashMap::new();
    let mut taken: Vec<((String, usize, String), usize)> = Vec::new();
    for (i, change) in changes.iter().enumerate() {
        let Some(info) = registry.get(&change.entity) else {
            continue;
        };
        // Parents this change's target points at, re-inserted by the plan: first.
        if let Some(target) = &change.target {
            for (fk, key) in info.parents.iter().enumerate() {
                let (Some(parent), Some(id)) = (
                    registry.by_table(&key.parent_table),
                    parent_id(info, fk, target),
                ) else {
                    continue;
                };
                if let Some(&p) = index.get(&(parent.name.as_str(), id.as_str()))
                    && changes[p].kind == HistoryKind::Create
                {
                    edge(p, i, &mut before);
                }
            }
        }
        // Parents the current row points at, deleted by the plan: after this change.
        if let Some(current) = &change.current {
            for (fk, key) in info.parents.iter().enumerate() {
                let (Some(parent), Some(id)) = (
                    registry.by_table(&key.parent_table),
                    parent_id(info, fk, current),
                ) else {
                    continue;
                };
                let keeps_it = change
                    .target
                    .as_ref()
                    .and_then(|t| parent_id(info, fk, t))
                    .is_some_and(|t| t == id);
                if let Some(&p) = index.get(&(parent.name.as_str(), id.as_str()))
                    && changes[p].kind == HistoryKind::Delete
                    && !keeps_it
                {
                    edge(i, p, &mut before);
                }
            }
        }
        for (k, key) in info.unique.iter().enumerate() {
            let now = change
                .current
                .as_ref()
                .and_then(|r| unique_values(info, key, r));
            let next = change
                .target
                .as_ref()
                .and_then(|r| unique_values(info, key, r));
            if now == next {
                continue;
            }
            if let Some(values) = now {
                vacated
                    .entry((info.name.clone(), k, Json::from(values).to_string()))
                    .or_default()
                    .push(i);
            }
            if let Some(values) = next {
                taken.push(((info.name.clone(), k, Json::from(values).to_string()), i));
            }
        }
    }
    for (value, taker) in taken {
        for &giver in vacated.get(&value).into_iter().flatten() {
            edge(giver, taker, &mut before);
        }
    }
    // Kahn's algorithm, the ready change with the lowest default rank first.
    let mut ordered = Vec::with_capacity(n);
    let mut ready: BTreeMap<((u8, usize), usize), usize> = BTreeMap::new();
    for (i, change) in changes.iter().enumerate() {
        if waiting[i] == 0 {
            ready.insert((default_rank(registry, change), i), i);
        }
    }
    let mut done = vec![false; n];
    while ordered.len() < n {
        let next = match ready.pop_first() {
            Some((_, i)) => i,
            // A cycle: the rest in default order.
            None => {
                let Some(i) = (0..n)
                    .filter(|&i| !done[i])
                    .min_by_key(|&i| (default_rank(registry, &changes[i]), i))
                else {
                    break;
                };
                i
            }
        };
        if done[next] {
            continue;
        }
        done[next] = true;
        ordered.push(next);
        for &after in &before[next] {
            waiting[after] = waiting[after].saturating_sub(1);
            if waiting[after] == 0 && !done[after] {
                ready.insert((default_rank(registry, &changes[after]), after), after);
            }
        }
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

/// Writes one batch — changes of one kind to one entity — and records it.
async fn apply_batch<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    kind: HistoryKind,
    changes: &[&PlannedChange],
) -> HistoryResult<()> {
    let rows_of = |pick: fn(&PlannedChange) -> Option<&Json>| -> Vec<Json> {
        changes.iter().filter_map(|c| pick(c).cloned()).collect()
    };
    let (written, recorded) = match kind {
        HistoryKind::Delete => {
            let ids: Vec<String> = changes.iter().map(|c| c.object_id.clone()).collect();
            (
                rows::delete(db, info, &ids)
                    .await
                    .and_then(|n| rows::expect_rows(info, n, ids.len(), "deleted")),
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
    written.map_err(|e| refused(e, info, changes))?;
    let records = recorded
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
    let mut batch: Vec<&PlannedChange> = Vec::new();
    for i in order(registry, plan) {
        let change = &plan.changes[i];
        // A row of a table that references itself may need a row of the same batch first (MySQL
        // checks keys row by row), so such changes go one at a time, in the computed order.
        let self_referencing = registry
            .get(&change.entity)
            .is_some_and(|info| info.parents.iter().any(|p| p.parent_table == info.table));
        if let Some(last) = batch.last()
            && (last.entity != change.entity || last.kind != change.kind || self_referencing)
        {
            flush(db, registry, &mut batch).await?;
        }
        batch.push(change);
    }
    flush(db, registry, &mut batch).await
}

async fn flush<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    batch: &mut Vec<&PlannedChange>,
) -> HistoryResult<()> {
    let Some(first) = batch.first() else {
        return Ok(());
    };
    let info = registry
        .get(&first.entity)
        .ok_or_else(|| HistoryError::NotRegistered(first.entity.clone()))?;
    let kind = first.kind;
    apply_batch(db, info, kind, batch).await?;
    batch.clear();
    Ok(())
}
