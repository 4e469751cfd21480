//! Revert: undo an assignation, or bring one object back to a version.
//!
//! A revert is a new change, never an erasure: it runs as a new assignation whose records are
//! ordinary history, so it can be listed, and reverted in turn (a redo). It is planned before anything
//! is written (`plan`), checked against the rows it does not name (`references`), then applied in
//! one transaction (`apply`). Nothing is written when it conflicts, unless `force` overrides the
//! conflicts that can be overridden.
//!
//! - [`preview_revert`]: the plan, writing nothing.
//! - [`revert_assignation`]: the revert itself; with [`RevertOptions::include_descendants`], of the
//!   assignation and the whole tree under it, as one (every change of the tree undone, whichever
//!   assignation made it, each object back to its state before the tree first touched it).
//! - [`revert_object`]: one object back to a version.

mod apply;
mod plan;
mod references;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect, Set,
};
use serde_json::Value as Json;

use crate::capture::{latest_rows, reserve_steps};
use crate::context::{AssignationId, ChangeContext};
use crate::entity::EntityInfo;
use crate::error::{Conflict, HistoryError, HistoryResult};
use crate::query::{self, find_assignation};
use crate::record::{FieldChange, HistoryKind, HistoryRow};
use crate::registry::Registry;
use crate::tables::assignation;

/// One object's net change in a revert.
#[derive(Clone, Debug)]
pub struct PlannedChange {
    /// The object's entity (`CAKE`).
    pub entity: String,
    /// The object's id.
    pub object_id: String,
    /// CREATE (re-insert), UPDATE (back to the target) or DELETE.
    pub kind: HistoryKind,
    /// The field changes from the current state to the target.
    pub changes: Vec<FieldChange>,
    /// The row as it is (none for a re-insert).
    pub(crate) current: Option<Json>,
    /// The row to write (none for a DELETE).
    pub(crate) target: Option<Json>,
}

/// What a revert would do.
#[derive(Clone, Debug, Default)]
pub struct RevertPlan {
    /// Each object's net change.
    pub changes: Vec<PlannedChange>,
    /// What blocks it: later changes and dependent rows (`force` overrides them), missing parents
    /// and taken unique values (it cannot).
    pub conflicts: Vec<Conflict>,
}

impl RevertPlan {
    /// Whether it may be applied: no conflict, or only conflicts `force` overrides when forced.
    pub fn applicable(&self, force: bool) -> bool {
        self.conflicts
            .iter()
            .all(|c| force && c.reason.overridable())
    }
}

/// How a revert runs: whether it overrides conflicts, its reason, who may run it, and whether it takes
/// the tree under the assignation along.
pub struct RevertOptions<'a> {
    /// Override later changes and dependent rows.
    pub force: bool,
    /// Kept on every record of the revert.
    pub reason: Option<String>,
    /// Whether the caller may revert (or preview the revert of) an assignation; refused with
    /// [`HistoryError::Forbidden`] when it answers `false` (for a tree, for any assignation in it).
    pub permit: &'a (dyn Fn(&assignation::Model) -> bool + Sync),
    /// Undo every assignation under this one too (its children, theirs, …), as one.
    pub include_descendants: bool,
    /// The most assignations a tree revert takes ([`HistoryError::BadInput`] above).
    pub max_tree: usize,
}

/// The default [`RevertOptions::max_tree`].
pub const DEFAULT_MAX_TREE: usize = 1_000;

impl Default for RevertOptions<'_> {
    fn default() -> Self {
        Self {
            force: false,
            reason: None,
            permit: &|_| true,
            include_descendants: false,
            max_tree: DEFAULT_MAX_TREE,
        }
    }
}

fn check_permit(options: &RevertOptions<'_>, reverted: &[assignation::Model]) -> HistoryResult<()> {
    match reverted.iter().find(|a| !(options.permit)(a)) {
        None => Ok(()),
        Some(a) if a.id == reverted[0].id => Err(HistoryError::Forbidden(
            "you may not revert this assignation (only the user who made it, the person it was \
             made for, or one allowed to revert any, may)"
                .into(),
        )),
        Some(a) => Err(HistoryError::Forbidden(format!(
            "you may not revert {}, which is part of this tree (only the user who made it, the \
             person it was made for, or one allowed to revert any, may)",
            a.id
        ))),
    }
}

/// `top`, and with [`RevertOptions::include_descendants`] every assignation under it that holds a
/// change; refused when any of them was reverted already.
async fn reverted_set<C: ConnectionTrait>(
    db: &C,
    top: assignation::Model,
    options: &RevertOptions<'_>,
) -> HistoryResult<Vec<assignation::Model>> {
    if top.reverted_by.is_some() {
        return Err(HistoryError::AlreadyReverted {
            by: top.reverted_by,
            parts: Vec::new(),
        });
    }
    let mut set = vec![top];
    if options.include_descendants {
        let below = query::descendants(db, &set[0].id, options.max_tree).await?;
        set.extend(
            below
                .into_iter()
                .filter(|a| a.change_count > 0 || a.reverts.is_some()),
        );
        let parts: Vec<(String, String)> = set
            .iter()
            .filter_map(|a| Some((a.id.clone(), a.reverted_by.clone()?)))
            .collect();
        if !parts.is_empty() {
            return Err(HistoryError::AlreadyReverted { by: None, parts });
        }
    }
    check_permit(options, &set)?;
    Ok(set)
}

/// Previews the revert of assignation `id`, writing nothing.
///
/// # Errors
/// [`HistoryError::NotFound`]; [`HistoryError::Forbidden`]; [`HistoryError::AlreadyReverted`];
/// database errors.
pub async fn preview_revert(
    db: &DatabaseConnection,
    registry: &Registry,
    id: &AssignationId,
    options: &RevertOptions<'_>,
) -> HistoryResult<RevertPlan> {
    let txn = crate::capture::begin_write(db).await?;
    let original = find_assignation(&txn, id)
        .await?
        .ok_or_else(|| HistoryError::NotFound(format!("assignation {id}")))?;
    let set = reverted_set(&txn, original, options).await?;
    let plan = plan::plan_assignations(&txn, registry, &set, options.force).await?;
    txn.rollback().await?;
    Ok(plan)
}

/// The context a revert runs in: the caller's, under its assignation id unless that one already holds
/// changes (then a fresh one), so a revert is always a new assignation.
async fn revert_context<C: ConnectionTrait>(
    db: &C,
    reason: Option<String>,
) -> HistoryResult<ChangeContext> {
    let ctx = ChangeContext::require()?;
    let taken = assignation::Entity::find_by_id(ctx.assignation.as_str().to_owned())
        .one(db)
        .await?
        .is_some_and(|a| a.change_count > 0 || a.reverts.is_some());
    let assignation = if taken {
        AssignationId::generate()
    } else {
        ctx.assignation.clone()
    };
    Ok(ChangeContext {
        assignation,
        reason,
        ..ctx
    })
}

/// Reverts assignation `id` in one transaction, as a new assignation that it returns, run in the
/// current change context.
///
/// # Errors
/// [`HistoryError::NotFound`]; [`HistoryError::Forbidden`]; [`HistoryError::AlreadyReverted`];
/// [`HistoryError::Conflict`] (nothing written); [`HistoryError::NoContext`]; database errors.
pub async fn revert_assignation(
    db: &DatabaseConnection,
    id: &AssignationId,
    options: &RevertOptions<'_>,
) -> HistoryResult<assignation::Model> {
    let txn = crate::capture::begin_write(db).await?;
    let ctx = revert_context(&txn, options.reason.clone()).await?;
    let registry = ctx.registry();
    reserve_steps(&txn, &ctx, 0).await?;
    let original = assignation::Entity::find_by_id(id.as_str().to_owned())
        .lock_exclusive()
        .one(&txn)
        .await?
        .filter(|a| a.change_count > 0 || a.reverts.is_some())
        .ok_or_else(|| HistoryError::NotFound(format!("assignation {id}")))?;
    let set = reverted_set(&txn, original, options).await?;
    // The rest of the tree is locked too: no second revert, and no change joining it, slips in.
    if set.len() > 1 {
        let ids: Vec<String> = set[1..].iter().map(|a| a.id.clone()).collect();
        for chunk in ids.chunks(500) {
            assignation::Entity::find()
                .filter(assignation::Column::Id.is_in(chunk.iter().cloned()))
                .lock_exclusive()
                .all(&txn)
                .await?;
        }
    }
    let plan = plan::plan_assignations(&txn, registry, &set, options.force).await?;
    if !plan.applicable(options.force) {
        return Err(HistoryError::Conflict(plan.conflicts));
    }
    if !plan.conflicts.is_empty() {
        tracing::warn!(
            assignation = %set[0].id,
            overridden = plan.conflicts.len(),
            "forced revert overrides later changes"
        );
    }
    let new_id = ctx.assignation.to_string();
    ctx.clone()
        .scope(apply::apply(&txn, registry, &plan))
        .await?;
    let mut revert = assignation::Entity::find_by_id(new_id.clone())
        .one(&txn)
        .await?
        .ok_or_else(|| HistoryError::NotFound("the revert's assignation".into()))?
        .into_active_model();
    revert.reverts = Set(Some(set[0].id.clone()));
    let revert = revert.update(&txn).await?;
    for reverted in set {
        let mut reverted = reverted.into_active_model();
        reverted.reverted_by = Set(Some(new_id.clone()));
        reverted.update(&txn).await?;
    }
    txn.commit().await?;
    Ok(revert)
}

/// Brings one object of `info` to the state of `version` as a new history record in a new assignation
/// (re-creating it if it was deleted), run in the current change context, and returns the object's
/// latest record.
///
/// # Errors
/// [`HistoryError::NotFound`]; [`HistoryError::RestoreConflict`] when a parent is gone, a unique value
/// is taken, or rows point at an object going back to a DELETE; [`HistoryError::BadInput`] when the object is already in that state; database errors.
pub async fn revert_object(
    db: &DatabaseConnection,
    info: &EntityInfo,
    object_id: &str,
    version: i32,
    reason: Option<String>,
) -> HistoryResult<HistoryRow> {
    let txn = crate::capture::begin_write(db).await?;
    let ctx = revert_context(&txn, reason).await?;
    let registry = ctx.registry();
    reserve_steps(&txn, &ctx, 0).await?;
    let plan = plan::plan_object(&txn, registry, info, object_id, version).await?;
    if !plan.conflicts.is_empty() {
        return Err(HistoryError::RestoreConflict(plan.conflicts));
    }
    let assignation_id = ctx.assignation.to_string();
    ctx.scope(apply::apply(&txn, registry, &plan))
        .await
        .map_err(|e| match e {
            // The database's refusal, found while applying, is a conflict of this restore.
            HistoryError::Conflict(conflicts) => HistoryError::RestoreConflict(conflicts),
            other => other,
        })?;
    let latest = latest_rows(&txn, info, &[object_id.to_owned()])
        .await?
        .remove(object_id)
        .ok_or_else(|| HistoryError::NotFound(format!("{} {object_id}", info.name)))?;
    if latest.assignation_id != assignation_id {
        // Nothing was written: the object is already as it was then (the transaction rolls back).
        return Err(HistoryError::BadInput(format!(
            "{} {object_id} is already as it was at version {version}: nothing to restore",
            info.name
        )));
    }
    txn.commit().await?;
    Ok(latest)
}
