//! Revert: undo an assignation, or bring one object back to a version.
//!
//! A revert is planned before anything is written. For every object the assignation touched, the
//! target is the state before its first change in the assignation (absent for a CREATE, the snapshot
//! before it otherwise); the current state is the live row. Undoing every change in reverse step order
//! ends in exactly those targets, so the plan applies each object's net change once — deletes children
//! first, then updates, then inserts parents first — as batched statements through the `*_with_history`
//! helpers, in one transaction, as a new assignation whose records are ordinary history.
//!
//! Conflicts: an object changed after the assignation by another one (overridable with `force`); rows
//! that would be left pointing at a deleted parent (with `force` they are deleted too); and clashes
//! `force` cannot fix — a re-inserted child whose parent is gone, a label name taken since.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use entity::assignation;
use entity::context::ChangeContext;
use entity::history::{
    HISTORY_COLUMNS, Historized, HistoryEntity, HistoryKind, HistoryRow, delete_with_history, diff,
    insert_with_history, latest_rows, reserve_steps, snapshot_of, update_with_history,
};
use entity::{comment, label, project, task, task_label};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, IntoActiveModel, QueryFilter, QuerySelect, Set, TransactionTrait,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::auth::{Principal, REVERT_ANY};
use crate::error::{AppError, AppResult, Conflict};

/// Records of an assignation read per round trip while planning.
const READ_CHUNK: u64 = 1000;
/// Objects named per statement while planning.
const ID_CHUNK: usize = 200;

/// Runs `$body` with `$E` bound to the sea-orm entity of `$entity`.
macro_rules! with_entity {
    ($entity:expr, $E:ident => $body:expr) => {
        match $entity {
            HistoryEntity::Project => {
                type $E = project::Entity;
                $body
            }
            HistoryEntity::Label => {
                type $E = label::Entity;
                $body
            }
            HistoryEntity::Task => {
                type $E = task::Entity;
                $body
            }
            HistoryEntity::TaskLabel => {
                type $E = task_label::Entity;
                $body
            }
            HistoryEntity::Comment => {
                type $E = comment::Entity;
                $body
            }
        }
    };
}

/// One object's net change in a revert.
#[derive(Clone, Debug)]
pub struct PlannedChange {
    /// The object's entity.
    pub entity: HistoryEntity,
    /// The object's id.
    pub object_id: String,
    /// CREATE (re-insert), UPDATE (back to the target) or DELETE.
    pub kind: HistoryKind,
    /// `[{field, old, new}]` from the current state to the target.
    pub changes: Json,
    /// The row to write (none for a DELETE).
    target: Option<Json>,
}

/// What a revert would do.
#[derive(Clone, Debug, Default)]
pub struct RevertPlan {
    /// Each object's net change.
    pub changes: Vec<PlannedChange>,
    /// Later changes and dependent rows; `force` overrides them.
    pub conflicts: Vec<Conflict>,
    /// Clashes no revert can resolve (missing parents, taken unique values); reported with the others.
    pub blocking: Vec<Conflict>,
}

impl RevertPlan {
    /// Every conflict, overridable or not.
    pub fn all_conflicts(&self) -> Vec<Conflict> {
        self.conflicts
            .iter()
            .chain(self.blocking.iter())
            .cloned()
            .collect()
    }
}

/// What an assignation did to one object.
struct Touched {
    first_version: i32,
    first_kind: HistoryKind,
    first_snapshot: Json,
    last_version: i32,
}

/// One record of an assignation, without its snapshot: what planning reads for every change.
#[derive(FromQueryResult)]
struct TouchRow {
    object_id: String,
    version: i32,
    kind: String,
    step: i32,
}

/// The objects an assignation touched in one table, streamed in step order. Only the first record of
/// an object whose first change was a DELETE needs its snapshot (the row to re-insert); it is read
/// afterwards, in batches.
async fn touched_objects<C: ConnectionTrait>(
    db: &C,
    entity: HistoryEntity,
    assignation_id: &str,
) -> AppResult<(BTreeMap<String, Touched>, u64)> {
    let mut touched: BTreeMap<String, Touched> = BTreeMap::new();
    let mut seen = 0;
    let mut after: Option<i32> = None;
    loop {
        let mut select = Query::select();
        select
            .columns(["object_id", "version", "kind", "step"].map(Alias::new))
            .from(Alias::new(entity.history_table()))
            .and_where(Expr::col(Alias::new("assignation_id")).eq(assignation_id));
        if let Some(step) = after {
            select.and_where(Expr::col(Alias::new("step")).gt(step));
        }
        select
            .order_by(Alias::new("step"), Order::Asc)
            .limit(READ_CHUNK);
        let stmt = db.get_database_backend().build(&select);
        let rows = TouchRow::find_by_statement(stmt).all(db).await?;
        let done = (rows.len() as u64) < READ_CHUNK;
        seen += rows.len() as u64;
        for row in rows {
            after = Some(row.step);
            touched
                .entry(row.object_id.clone())
                .and_modify(|t| t.last_version = Ord::max(t.last_version, row.version))
                .or_insert_with(|| Touched {
                    first_version: row.version,
                    first_kind: HistoryKind::parse(&row.kind).unwrap_or(HistoryKind::Update),
                    first_snapshot: Json::Null,
                    last_version: row.version,
                });
        }
        if done {
            break;
        }
    }
    let deleted: Vec<(String, i32)> = touched
        .iter()
        .filter(|(_, t)| t.first_kind == HistoryKind::Delete)
        .map(|(id, t)| (id.clone(), t.first_version))
        .collect();
    for (id, row) in snapshots_at(db, entity, &deleted).await? {
        if let Some(t) = touched.get_mut(&id) {
            t.first_snapshot = row.snapshot;
        }
    }
    Ok((touched, seen))
}

/// The snapshots of `(object, version)` pairs.
async fn snapshots_at<C: ConnectionTrait>(
    db: &C,
    entity: HistoryEntity,
    wanted: &[(String, i32)],
) -> AppResult<HashMap<String, HistoryRow>> {
    let mut found = HashMap::new();
    for chunk in wanted.chunks(ID_CHUNK) {
        let mut any = Condition::any();
        for (object, version) in chunk {
            any = any.add(
                Condition::all()
                    .add(Expr::col(Alias::new("object_id")).eq(object.as_str()))
                    .add(Expr::col(Alias::new("version")).eq(*version)),
            );
        }
        let select = Query::select()
            .columns(HISTORY_COLUMNS.map(Alias::new))
            .from(Alias::new(entity.history_table()))
            .cond_where(any)
            .to_owned();
        let stmt = db.get_database_backend().build(&select);
        for row in HistoryRow::find_by_statement(stmt).all(db).await? {
            found.insert(row.object_id.clone(), row);
        }
    }
    Ok(found)
}

/// The live rows of `ids` as snapshots, locked for the rest of the transaction.
async fn live<E, C>(db: &C, ids: &[String]) -> AppResult<HashMap<String, Json>>
where
    E: Historized,
    E::Model: Serialize + DeserializeOwned,
    C: ConnectionTrait,
{
    let mut found = HashMap::new();
    for chunk in ids.chunks(ID_CHUNK) {
        let any = chunk
            .iter()
            .filter_map(|id| E::object_condition(id))
            .fold(Condition::any(), Condition::add);
        for model in E::find().filter(any).lock_exclusive().all(db).await? {
            found.insert(E::object_id(&model), snapshot_of(&model)?);
        }
    }
    Ok(found)
}

fn touched_fields(entity: HistoryEntity) -> &'static [&'static str] {
    with_entity!(entity, E => E::TOUCHED)
}

async fn live_snapshots<C: ConnectionTrait>(
    db: &C,
    entity: HistoryEntity,
    ids: &[String],
) -> AppResult<HashMap<String, Json>> {
    with_entity!(entity, E => live::<E, C>(db, ids).await)
}

/// Conflicts naming `ids` of `entity`, each with the assignation that last changed it (one batched read).
async fn conflicts_on<C: ConnectionTrait>(
    db: &C,
    entity: HistoryEntity,
    ids: Vec<String>,
) -> AppResult<Vec<Conflict>> {
    let latest = latest_rows(db, entity, &ids).await?;
    Ok(ids
        .into_iter()
        .map(|id| Conflict {
            entity,
            assignation_id: latest
                .get(&id)
                .map(|row| row.assignation_id.clone())
                .unwrap_or_default(),
            object_id: id,
        })
        .collect())
}

/// Whether `a` and `b` hold the same values, the `touched` fields aside.
fn same_values(a: &Json, b: &Json, touched: &[&str]) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            a.iter()
                .filter(|(k, _)| !touched.contains(&k.as_str()))
                .all(|(k, v)| b.get(k) == Some(v))
                && b.keys()
                    .filter(|k| !touched.contains(&k.as_str()))
                    .all(|k| a.contains_key(k))
        }
        _ => a == b,
    }
}

/// Plans the objects of one entity given their targets. A target's `touched` fields (its "last
/// changed" time) become the revert's own time: a revert is a change made now.
async fn plan_objects<C: ConnectionTrait>(
    db: &C,
    entity: HistoryEntity,
    targets: BTreeMap<String, Option<Json>>,
    plan: &mut RevertPlan,
) -> AppResult<()> {
    let ids: Vec<String> = targets.keys().cloned().collect();
    let current = live_snapshots(db, entity, &ids).await?;
    let touched = touched_fields(entity);
    let at = serde_json::to_value(entity::history::now()).map_err(AppError::internal)?;
    for (object_id, mut target) in targets {
        let now = current.get(&object_id);
        if let Some(Json::Object(fields)) = target.as_mut() {
            for field in touched {
                if fields.contains_key(*field) {
                    fields.insert((*field).to_owned(), at.clone());
                }
            }
        }
        let (kind, changes) = match (now, &target) {
            (Some(now), None) => (HistoryKind::Delete, diff(HistoryKind::Delete, None, now)),
            (None, Some(target)) => (HistoryKind::Create, diff(HistoryKind::Create, None, target)),
            (Some(now), Some(target)) if !same_values(now, target, touched) => (
                HistoryKind::Update,
                diff(HistoryKind::Update, Some(now), target),
            ),
            _ => continue,
        };
        plan.changes.push(PlannedChange {
            entity,
            object_id,
            kind,
            changes,
            target,
        });
    }
    Ok(())
}

/// Plans the revert of `assignation`.
///
/// # Errors
/// Database errors; `NOT_FOUND` when history the plan needs was pruned.
pub async fn plan_assignation<C: ConnectionTrait>(
    db: &C,
    assignation: &assignation::Model,
    force: bool,
) -> AppResult<RevertPlan> {
    let mut plan = RevertPlan::default();
    let mut records = 0;
    for entity in HistoryEntity::from_mask(assignation.entity_mask) {
        let (touched, seen) = touched_objects(db, entity, &assignation.id).await?;
        records += seen;
        if touched.is_empty() {
            continue;
        }
        let ids: Vec<String> = touched.keys().cloned().collect();
        let latest = latest_rows(db, entity, &ids).await?;
        for (id, t) in &touched {
            if let Some(row) = latest.get(id)
                && row.version > t.last_version
            {
                plan.conflicts.push(Conflict {
                    entity,
                    object_id: id.clone(),
                    assignation_id: row.assignation_id.clone(),
                });
            }
        }
        let wanted: Vec<(String, i32)> = touched
            .iter()
            .filter(|(_, t)| t.first_kind == HistoryKind::Update)
            .map(|(id, t)| (id.clone(), t.first_version - 1))
            .collect();
        let previous = snapshots_at(db, entity, &wanted).await?;
        let mut targets = BTreeMap::new();
        for (id, t) in touched {
            let target = match t.first_kind {
                HistoryKind::Create => None,
                HistoryKind::Delete => Some(t.first_snapshot),
                HistoryKind::Update => Some(
                    previous
                        .get(&id)
                        .map(|row| row.snapshot.clone())
                        .ok_or_else(|| {
                            AppError::NotFound(format!(
                                "version {} of {} {id}, which this revert would restore (removed \
                                 by `chronicle prune --history`),",
                                t.first_version - 1,
                                entity.as_str()
                            ))
                        })?,
                ),
            };
            targets.insert(id, target);
        }
        plan_objects(db, entity, targets, &mut plan).await?;
    }
    if records < u64::try_from(assignation.change_count).unwrap_or(0) {
        return Err(AppError::NotFound(format!(
            "{} of the {} history records of assignation {} (removed by `chronicle prune \
             --history`), which a revert needs,",
            u64::try_from(assignation.change_count).unwrap_or(0) - records,
            assignation.change_count,
            assignation.id
        )));
    }
    check_references(db, &mut plan, force).await?;
    Ok(plan)
}

/// Plans bringing one object to the state of `version` (absent if that record is a DELETE).
///
/// # Errors
/// `NOT_FOUND` when the object has no such version; database errors.
pub async fn plan_object<C: ConnectionTrait>(
    db: &C,
    entity: HistoryEntity,
    object_id: &str,
    version: i32,
) -> AppResult<RevertPlan> {
    let record = snapshots_at(db, entity, &[(object_id.to_owned(), version)])
        .await?
        .remove(object_id)
        .ok_or_else(|| AppError::NotFound(format!("version {version} of {object_id}")))?;
    let target = (record.history_kind() != HistoryKind::Delete).then_some(record.snapshot);
    let mut plan = RevertPlan::default();
    plan_objects(
        db,
        entity,
        BTreeMap::from([(object_id.to_owned(), target)]),
        &mut plan,
    )
    .await?;
    check_references(db, &mut plan, false).await?;
    Ok(plan)
}

fn uuid_field(snapshot: &Json, field: &str) -> Option<uuid::Uuid> {
    snapshot
        .get(field)
        .and_then(Json::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
}

/// Finds rows a planned delete would orphan (conflicts; with `force`, deleted as well) and planned
/// inserts or updates that cannot hold (missing parents, taken label names).
async fn check_references<C: ConnectionTrait>(
    db: &C,
    plan: &mut RevertPlan,
    force: bool,
) -> AppResult<()> {
    // Dependents of deleted parents, until no new one appears (tasks bring their comments and links).
    loop {
        let deleting: BTreeSet<(HistoryEntity, String)> = plan
            .changes
            .iter()
            .filter(|c| c.kind == HistoryKind::Delete)
            .map(|c| (c.entity, c.object_id.clone()))
            .collect();
        let ids_of = |entity: HistoryEntity| -> Vec<uuid::Uuid> {
            deleting
                .iter()
                .filter(|(e, _)| *e == entity)
                .filter_map(|(_, id)| uuid::Uuid::parse_str(id).ok())
                .collect()
        };
        let mut dependents: Vec<(HistoryEntity, String, Json)> = Vec::new();
        for chunk in ids_of(HistoryEntity::Project).chunks(ID_CHUNK) {
            for t in task::Entity::find()
                .filter(task::Column::ProjectId.is_in(chunk.iter().copied()))
                .all(db)
                .await?
            {
                dependents.push((HistoryEntity::Task, t.id.to_string(), snapshot_of(&t)?));
            }
        }
        for chunk in ids_of(HistoryEntity::Task).chunks(ID_CHUNK) {
            for c in comment::Entity::find()
                .filter(comment::Column::TaskId.is_in(chunk.iter().copied()))
                .all(db)
                .await?
            {
                dependents.push((HistoryEntity::Comment, c.id.to_string(), snapshot_of(&c)?));
            }
            for l in task_label::Entity::find()
                .filter(task_label::Column::TaskId.is_in(chunk.iter().copied()))
                .all(db)
                .await?
            {
                let id = task_label::Entity::object_id(&l);
                dependents.push((HistoryEntity::TaskLabel, id, snapshot_of(&l)?));
            }
        }
        for chunk in ids_of(HistoryEntity::Label).chunks(ID_CHUNK) {
            for l in task_label::Entity::find()
                .filter(task_label::Column::LabelId.is_in(chunk.iter().copied()))
                .all(db)
                .await?
            {
                let id = task_label::Entity::object_id(&l);
                dependents.push((HistoryEntity::TaskLabel, id, snapshot_of(&l)?));
            }
        }
        let planned: BTreeSet<(HistoryEntity, String)> = plan
            .changes
            .iter()
            .map(|c| (c.entity, c.object_id.clone()))
            .collect();
        dependents.retain(|(e, id, _)| !planned.contains(&(*e, id.clone())));
        dependents.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        dependents.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        if dependents.is_empty() {
            break;
        }
        if !force {
            let mut by_entity: BTreeMap<HistoryEntity, Vec<String>> = BTreeMap::new();
            for (entity, id, _) in dependents {
                by_entity.entry(entity).or_default().push(id);
            }
            for (entity, ids) in by_entity {
                plan.conflicts.extend(conflicts_on(db, entity, ids).await?);
            }
            break;
        }
        for (entity, id, current) in dependents {
            plan.changes.push(PlannedChange {
                entity,
                changes: diff(HistoryKind::Delete, None, &current),
                object_id: id,
                kind: HistoryKind::Delete,
                target: None,
            });
        }
    }

    // Parents that re-inserted rows need, and label names taken since.
    let present_after = |entity: HistoryEntity, id: &str, plan: &RevertPlan| -> Option<bool> {
        plan.changes
            .iter()
            .find(|c| c.entity == entity && c.object_id == id)
            .map(|c| c.kind != HistoryKind::Delete)
    };
    let mut missing: Vec<(HistoryEntity, String)> = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    for change in plan
        .changes
        .iter()
        .filter(|c| c.kind != HistoryKind::Delete)
    {
        let Some(target) = &change.target else {
            continue;
        };
        let parents: Vec<(HistoryEntity, &str)> = match change.entity {
            HistoryEntity::Task => vec![(HistoryEntity::Project, "projectId")],
            HistoryEntity::Comment => vec![(HistoryEntity::Task, "taskId")],
            HistoryEntity::TaskLabel => vec![
                (HistoryEntity::Task, "taskId"),
                (HistoryEntity::Label, "labelId"),
            ],
            HistoryEntity::Label => {
                if let Some(name) = target.get("name").and_then(Json::as_str) {
                    names.push((change.object_id.clone(), name.to_owned()));
                }
                Vec::new()
            }
            HistoryEntity::Project => Vec::new(),
        };
        for (parent, field) in parents {
            let Some(parent_id) = uuid_field(target, field) else {
                continue;
            };
            missing.push((parent, parent_id.to_string()));
        }
    }
    missing.sort();
    missing.dedup();
    // Parents the plan itself writes are settled by it; the others must be live.
    let mut unsettled: BTreeMap<HistoryEntity, Vec<String>> = BTreeMap::new();
    let mut gone: BTreeMap<HistoryEntity, Vec<String>> = BTreeMap::new();
    for (entity, id) in missing {
        match present_after(entity, &id, plan) {
            Some(true) => {}
            Some(false) => gone.entry(entity).or_default().push(id),
            None => unsettled.entry(entity).or_default().push(id),
        }
    }
    for (entity, ids) in unsettled {
        let live = live_snapshots(db, entity, &ids).await?;
        gone.entry(entity)
            .or_default()
            .extend(ids.into_iter().filter(|id| !live.contains_key(id)));
    }
    for (entity, ids) in gone {
        plan.blocking.extend(conflicts_on(db, entity, ids).await?);
    }
    for (own_id, name) in names {
        let holders = label::Entity::find()
            .filter(label::Column::Name.eq(name.as_str()))
            .all(db)
            .await?;
        for holder in holders {
            let holder_id = holder.id.to_string();
            if holder_id == own_id
                || present_after(HistoryEntity::Label, &holder_id, plan) == Some(false)
            {
                continue;
            }
            let renamed_away = plan.changes.iter().any(|c| {
                c.entity == HistoryEntity::Label
                    && c.object_id == holder_id
                    && c.target
                        .as_ref()
                        .and_then(|t| t.get("name"))
                        .and_then(Json::as_str)
                        != Some(name.as_str())
            });
            if renamed_away {
                continue;
            }
            plan.blocking
                .extend(conflicts_on(db, HistoryEntity::Label, vec![holder_id]).await?);
        }
    }
    Ok(())
}

fn models<M: DeserializeOwned>(changes: &[&PlannedChange]) -> AppResult<Vec<M>> {
    changes
        .iter()
        .filter_map(|c| c.target.clone())
        .map(|t| serde_json::from_value(t).map_err(AppError::internal))
        .collect()
}

async fn apply_entity<E, C>(db: &C, kind: HistoryKind, changes: &[&PlannedChange]) -> AppResult<()>
where
    E: Historized,
    E::Model: Serialize + DeserializeOwned + IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: Send,
    C: ConnectionTrait,
{
    match kind {
        HistoryKind::Delete => {
            for chunk in changes.chunks(ID_CHUNK) {
                let any = chunk
                    .iter()
                    .filter_map(|c| E::object_condition(&c.object_id))
                    .fold(Condition::any(), Condition::add);
                delete_with_history::<E, C>(db, any).await?;
            }
        }
        HistoryKind::Update => update_with_history::<E, C>(db, models(changes)?).await?,
        HistoryKind::Create => insert_with_history::<E, C>(db, models(changes)?).await?,
    }
    Ok(())
}

/// Writes `plan` through `db` (a transaction with the revert's change context open): deletes children
/// first, then updates, then inserts parents first, each entity in batched statements.
async fn apply<C: ConnectionTrait>(db: &C, plan: &RevertPlan) -> AppResult<()> {
    let mut order: Vec<(HistoryKind, HistoryEntity)> = HistoryEntity::ALL
        .iter()
        .rev()
        .map(|e| (HistoryKind::Delete, *e))
        .collect();
    order.extend(HistoryEntity::ALL.iter().map(|e| (HistoryKind::Update, *e)));
    order.extend(HistoryEntity::ALL.iter().map(|e| (HistoryKind::Create, *e)));
    for (kind, entity) in order {
        let changes: Vec<&PlannedChange> = plan
            .changes
            .iter()
            .filter(|c| c.kind == kind && c.entity == entity)
            .collect();
        if changes.is_empty() {
            continue;
        }
        with_entity!(entity, E => apply_entity::<E, C>(db, kind, &changes).await)?;
    }
    Ok(())
}

/// The context the revert runs in: the request's, under the request's assignation id unless that one
/// already holds changes (then a fresh UUIDv7), so a revert is always a new assignation.
async fn revert_context<C: ConnectionTrait>(
    db: &C,
    reason: Option<String>,
) -> AppResult<ChangeContext> {
    let ctx = ChangeContext::current()
        .ok_or_else(|| AppError::internal("revert outside a change context"))?;
    let taken = assignation::Entity::find_by_id(ctx.assignation_id.clone())
        .one(db)
        .await?
        .is_some_and(|a| a.change_count > 0 || a.reverts.is_some());
    let assignation_id = if taken {
        uuid::Uuid::now_v7().to_string()
    } else {
        ctx.assignation_id.clone()
    };
    Ok(ChangeContext {
        assignation_id,
        reason,
        ..ctx
    })
}

/// Only the user who started an assignation, or a holder of `history:revert-any`, may revert it or
/// preview its revert (when auth is on; see [`Principal::may_revert`]).
fn may_revert(principal: &Principal, original: &assignation::Model) -> AppResult<()> {
    if principal.may_revert(original.actor.as_deref()) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "only the user who made this assignation, or a holder of {REVERT_ANY}, may revert it"
        )))
    }
}

/// Previews the revert of assignation `id`, writing nothing.
///
/// # Errors
/// `NOT_FOUND`; `FORBIDDEN` (see [`may_revert`]); database errors.
pub async fn preview_revert(
    db: &DatabaseConnection,
    id: &str,
    principal: &Principal,
) -> AppResult<RevertPlan> {
    let txn = db.begin().await?;
    let original = super::find_assignation(&txn, id)
        .await?
        .ok_or_else(|| AppError::NotFound("assignation".into()))?;
    may_revert(principal, &original)?;
    if original.reverted_by.is_some() {
        return Err(AppError::AlreadyReverted);
    }
    let plan = plan_assignation(&txn, &original, false).await?;
    txn.rollback().await?;
    Ok(plan)
}

/// Reverts assignation `id` in one transaction, as a new assignation that it returns.
///
/// # Errors
/// `NOT_FOUND`; `FORBIDDEN` (see [`may_revert`]); `ALREADY_REVERTED`; `REVERT_CONFLICT` (nothing
/// written); database errors.
#[tracing::instrument(skip(db, reason, principal))]
pub async fn revert_assignation(
    db: &DatabaseConnection,
    id: &str,
    force: bool,
    reason: Option<String>,
    principal: &Principal,
) -> AppResult<assignation::Model> {
    if !crate::context::is_valid_assignation_id(id) {
        return Err(AppError::NotFound("assignation".into()));
    }
    let txn = db.begin().await?;
    let ctx = revert_context(&txn, reason).await?;
    reserve_steps(&txn, &ctx, 0, 0).await?;
    let original = assignation::Entity::find_by_id(id.to_owned())
        .lock_exclusive()
        .one(&txn)
        .await?
        .filter(|a| a.change_count > 0 || a.reverts.is_some())
        .ok_or_else(|| AppError::NotFound("assignation".into()))?;
    may_revert(principal, &original)?;
    if original.reverted_by.is_some() {
        return Err(AppError::AlreadyReverted);
    }
    let plan = plan_assignation(&txn, &original, force).await?;
    if !plan.blocking.is_empty() || (!force && !plan.conflicts.is_empty()) {
        return Err(AppError::RevertConflict(plan.all_conflicts()));
    }
    if force && !plan.conflicts.is_empty() {
        tracing::warn!(
            assignation = %original.id,
            overridden = plan.conflicts.len(),
            "forced revert overrides later changes"
        );
    }
    let new_id = ctx.assignation_id.clone();
    ctx.clone().scope(apply(&txn, &plan)).await?;
    let mut revert = assignation::Entity::find_by_id(new_id.clone())
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::internal("the revert's assignation vanished"))?
        .into_active_model();
    revert.reverts = Set(Some(original.id.clone()));
    let revert = revert.update(&txn).await?;
    let mut original = original.into_active_model();
    original.reverted_by = Set(Some(new_id));
    original.update(&txn).await?;
    txn.commit().await?;
    Ok(revert)
}

/// Brings one object to the state of `version` as a new history record in a new assignation, and
/// returns the object's latest record.
///
/// # Errors
/// `NOT_FOUND`; `REVERT_CONFLICT` when a parent is gone or a unique value is taken; database errors.
#[tracing::instrument(skip(db, reason))]
pub async fn revert_object(
    db: &DatabaseConnection,
    entity: HistoryEntity,
    object_id: &str,
    version: i32,
    reason: Option<String>,
) -> AppResult<HistoryRow> {
    let txn = db.begin().await?;
    let ctx = revert_context(&txn, reason).await?;
    reserve_steps(&txn, &ctx, 0, 0).await?;
    let plan = plan_object(&txn, entity, object_id, version).await?;
    if !plan.blocking.is_empty() || !plan.conflicts.is_empty() {
        return Err(AppError::RevertConflict(plan.all_conflicts()));
    }
    let assignation_id = ctx.assignation_id.clone();
    ctx.scope(apply(&txn, &plan)).await?;
    let latest = latest_rows(&txn, entity, &[object_id.to_owned()])
        .await?
        .remove(object_id)
        .ok_or_else(|| AppError::NotFound(object_id.to_owned()))?;
    if latest.assignation_id != assignation_id {
        // Nothing was written: the object is already as it was then (the transaction rolls back).
        return Err(AppError::BadInput(format!(
            "{} {object_id} is already as it was at version {version}: nothing to restore",
            entity.as_str()
        )));
    }
    txn.commit().await?;
    Ok(latest)
}
