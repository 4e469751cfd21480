//! What a planned revert does to rows it does not name, read from the foreign keys and unique keys of
//! the schema (for any schema, not a list written per entity):
//!
//! - rows left pointing at a row the revert deletes (dependents): conflicts; with `force` they follow
//!   their key's `ON DELETE` — set to NULL for `SET NULL`, deleted otherwise — each with history, and
//!   their own dependents after them;
//! - rows the revert brings back or changes whose parent is gone: conflicts `force` cannot override;
//! - values of a unique key the revert restores that another row holds now: likewise.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait};
use serde_json::Value as Json;

use super::plan::conflicts_on;
use super::{PlannedChange, RevertPlan};
use crate::capture::parent_id;
use crate::entity::{EntityInfo, OnDelete};
use crate::error::{Conflict, ConflictReason, HistoryResult};
use crate::record::{HistoryKind, diff};
use crate::registry::Registry;
use crate::rows;
use crate::snapshot::json_to_value;

/// Whether the plan leaves `(entity, id)` in place (`Some(true)`), removes it (`Some(false)`), or does
/// not name it (`None`).
fn present_after(plan: &RevertPlan, entity: &str, id: &str) -> Option<bool> {
    plan.changes
        .iter()
        .find(|c| c.entity == entity && c.object_id == id)
        .map(|c| c.kind != HistoryKind::Delete)
}

/// Checks `plan` against the rows it does not name (see the module docs).
///
/// # Errors
/// Database errors.
pub(super) async fn check<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    plan: &mut RevertPlan,
    force: bool,
) -> HistoryResult<()> {
    dependents(db, registry, plan, force).await?;
    missing_parents(db, registry, plan).await?;
    unique_values(db, registry, plan).await?;
    Ok(())
}

async fn dependents<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    plan: &mut RevertPlan,
    force: bool,
) -> HistoryResult<()> {
    let mut done: BTreeSet<(String, String)> = BTreeSet::new();
    loop {
        // The rows deleted and not yet looked at, by entity.
        let mut deleting: BTreeMap<String, Vec<Json>> = BTreeMap::new();
        for change in &plan.changes {
            if change.kind == HistoryKind::Delete
                && done.insert((change.entity.clone(), change.object_id.clone()))
                && let Some(current) = &change.current
            {
                deleting
                    .entry(change.entity.clone())
                    .or_default()
                    .push(current.clone());
            }
        }
        if deleting.is_empty() {
            return Ok(());
        }
        let planned: BTreeSet<(String, String)> = plan
            .changes
            .iter()
            .map(|c| (c.entity.clone(), c.object_id.clone()))
            .collect();
        let mut found: BTreeMap<(String, String), (Json, OnDelete)> = BTreeMap::new();
        for (name, snapshots) in &deleting {
            let Some(parent) = registry.get(name) else {
                continue;
            };
            let refs: Vec<&Json> = snapshots.iter().collect();
            for (child, fk) in registry.dependents_of(&parent.table) {
                for snapshot in rows::dependents(db, child, fk, parent, &refs, true).await? {
                    let key = (child.name.clone(), child.object_id(&snapshot));
                    if !planned.contains(&key) {
                        found.entry(key).or_insert((snapshot, fk.on_delete));
                    }
                }
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        if !force {
            let mut by_entity: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (entity, id) in found.into_keys() {
                by_entity.entry(entity).or_default().push(id);
            }
            for (name, ids) in by_entity {
                if let Some(info) = registry.get(&name) {
                    plan.conflicts
                        .extend(conflicts_on(db, info, ids, ConflictReason::Dependent).await?);
                }
            }
            return Ok(());
        }
        for ((entity, object_id), (current, on_delete)) in found {
            let Some(info) = registry.get(&entity) else {
                continue;
            };
            let change = if on_delete == OnDelete::SetNull {
                let target = cleared(info, registry, &deleting, &current);
                PlannedChange {
                    changes: diff(HistoryKind::Update, Some(&current), &target),
                    kind: HistoryKind::Update,
                    target: Some(target),
                    current: Some(current),
                    entity,
                    object_id,
                }
            } else {
                PlannedChange {
                    changes: diff(HistoryKind::Delete, None, &current),
                    kind: HistoryKind::Delete,
                    target: None,
                    current: Some(current),
                    entity,
                    object_id,
                }
            };
            plan.changes.push(change);
        }
    }
}

/// `current` (a row of `info`) with NULL in every `SET NULL` key that points at a row of `deleting`.
fn cleared(
    info: &EntityInfo,
    registry: &Registry,
    deleting: &BTreeMap<String, Vec<Json>>,
    current: &Json,
) -> Json {
    let mut target = current.clone();
    for (index, fk) in info.parents.iter().enumerate() {
        if fk.on_delete != OnDelete::SetNull {
            continue;
        }
        let Some(parent) = registry.by_table(&fk.parent_table) else {
            continue;
        };
        let Some(pointed) = parent_id(info, index, current) else {
            continue;
        };
        let hit = deleting
            .get(&parent.name)
            .is_some_and(|rows| rows.iter().any(|r| parent.object_id(r) == pointed));
        if hit && let Some(fields) = target.as_object_mut() {
            for &i in &fk.columns {
                fields.insert(info.columns[i].field.clone(), Json::Null);
            }
        }
    }
    target
}

/// A row whose parent lives in a table that is not historized: the row, the table, its key columns
/// and the values the row points at.
type Untracked<'a> = (
    &'a EntityInfo,
    String,
    String,
    Vec<String>,
    Vec<sea_orm::Value>,
);

/// The rows brought back or changed whose parent is gone, as conflicts `force` cannot override.
async fn missing_parents<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    plan: &mut RevertPlan,
) -> HistoryResult<()> {
    // Parents the plan itself settles; the others must be live.
    let mut unsettled: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut gone: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Parents in tables that are not historized: the row that cannot come back is named.
    let mut untracked: Vec<Untracked<'_>> = Vec::new();
    for change in plan
        .changes
        .iter()
        .filter(|c| c.kind != HistoryKind::Delete)
    {
        let (Some(info), Some(target)) = (registry.get(&change.entity), &change.target) else {
            continue;
        };
        for (index, fk) in info.parents.iter().enumerate() {
            let Some(parent_key) = parent_id(info, index, target) else {
                continue;
            };
            match registry.by_table(&fk.parent_table) {
                Some(parent) => match present_after(plan, &parent.name, &parent_key) {
                    Some(true) => {}
                    Some(false) => {
                        gone.entry(parent.name.clone())
                            .or_default()
                            .insert(parent_key);
                    }
                    None => {
                        unsettled
                            .entry(parent.name.clone())
                            .or_default()
                            .insert(parent_key);
                    }
                },
                None => {
                    let values = fk
                        .columns
                        .iter()
                        .map(|&i| {
                            let column = &info.columns[i];
                            json_to_value(
                                &column.ty,
                                target.get(&column.field).unwrap_or(&Json::Null),
                            )
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    untracked.push((
                        info,
                        change.object_id.clone(),
                        fk.parent_table.clone(),
                        fk.parent_columns.clone(),
                        values,
                    ));
                }
            }
        }
    }
    for (name, ids) in unsettled {
        let Some(parent) = registry.get(&name) else {
            continue;
        };
        let ids: Vec<String> = ids.into_iter().collect();
        let live = rows::snapshots_of(db, parent, &ids, false).await?;
        gone.entry(name)
            .or_default()
            .extend(ids.into_iter().filter(|id| !live.contains_key(id)));
    }
    for (name, ids) in gone {
        if let Some(parent) = registry.get(&name) {
            plan.conflicts.extend(
                conflicts_on(
                    db,
                    parent,
                    ids.into_iter().collect(),
                    ConflictReason::MissingParent,
                )
                .await?,
            );
        }
    }
    for (info, object_id, table, columns, values) in untracked {
        if !rows::exists(db, &table, &columns, &values).await? {
            plan.conflicts.push(Conflict {
                entity: info.name.clone(),
                object_id,
                assignation_id: String::new(),
                reason: ConflictReason::MissingParent,
            });
        }
    }
    Ok(())
}

/// Values of unique keys the plan restores that another live row holds, as conflicts `force` cannot
/// override (unless the plan deletes that row, or gives it other values).
async fn unique_values<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    plan: &mut RevertPlan,
) -> HistoryResult<()> {
    let mut holders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let targets: HashMap<(String, String), Option<Json>> = plan
        .changes
        .iter()
        .map(|c| ((c.entity.clone(), c.object_id.clone()), c.target.clone()))
        .collect();
    for change in plan
        .changes
        .iter()
        .filter(|c| c.kind != HistoryKind::Delete)
    {
        let (Some(info), Some(target)) = (registry.get(&change.entity), &change.target) else {
            continue;
        };
        for key in &info.unique {
            let mut condition = Condition::all();
            let mut complete = true;
            for &i in key {
                let column = &info.columns[i];
                let value = target.get(&column.field).unwrap_or(&Json::Null);
                if value.is_null() {
                    complete = false;
                    break;
                }
                condition = condition
                    .add(Expr::col(Alias::new(&column.name)).eq(json_to_value(&column.ty, value)?));
            }
            if !complete {
                continue;
            }
            for holder in rows::snapshots_where(db, info, condition, false).await? {
                let holder_id = info.object_id(&holder);
                if holder_id == change.object_id {
                    continue;
                }
                // A holder the plan deletes, or moves off these values, frees them.
                let freed = match targets.get(&(info.name.clone(), holder_id.clone())) {
                    Some(None) => true,
                    Some(Some(next)) => key.iter().any(|&i| {
                        let field = &info.columns[i].field;
                        next.get(field) != target.get(field)
                    }),
                    None => false,
                };
                if !freed {
                    holders
                        .entry(info.name.clone())
                        .or_default()
                        .insert(holder_id);
                }
            }
        }
    }
    for (name, ids) in holders {
        if let Some(info) = registry.get(&name) {
            plan.conflicts.extend(
                conflicts_on(
                    db,
                    info,
                    ids.into_iter().collect(),
                    ConflictReason::UniqueTaken,
                )
                .await?,
            );
        }
    }
    Ok(())
}
