//! The history types of the API: `HistoryRecord`, `FieldChange`, `HistoryKind`, `Assignation`,
//! `Verification`, and the revert preview (`RevertPreview`, `PlannedChange`, `RevertConflict`), each
//! generic over the application's [`EntitySet`] (its `HistoryEntity` enum).

use std::collections::HashMap;
use std::marker::PhantomData;

use async_graphql::{
    Context, Enum, ErrorExtensions, ID, InputType, Json, Object, OutputType, SimpleObject,
};
use serde_json::Value;

use super::pagination::{ListConnection, ListCursors, list_complexity, page_size};
use super::scalars::Timestamp;
use super::{database, settings};
use crate::context::AssignationId;
use crate::entity::EntityInfo;
use crate::error::{ConflictReason, HistoryError};
use crate::query;
use crate::record::{self, HistoryRow, diff};
use crate::registry::{EntitySet, Registry};
use crate::revert::RevertPlan;
use crate::tables::assignation;

/// The bounds the application's entity enum meets in the API.
pub trait ApiEntity: EntitySet + InputType + OutputType {}
impl<E: EntitySet + InputType + OutputType> ApiEntity for E {}

/// The registry of `E`, as an API error when it does not build.
pub(crate) fn registry_of<E: EntitySet>() -> async_graphql::Result<&'static Registry> {
    E::registry().map_err(|e| e.extend())
}

/// The entity `E` stands for.
pub(crate) fn info_of<E: EntitySet>(entity: E) -> async_graphql::Result<&'static EntityInfo> {
    registry_of::<E>()?
        .get(entity.name())
        .ok_or_else(|| HistoryError::NotRegistered(entity.name().to_owned()).extend())
}

/// What happened to the object.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "HistoryKind", remote = "crate::record::HistoryKind")]
pub enum Kind {
    /// It was created.
    Create,
    /// Its values changed.
    Update,
    /// It was deleted.
    Delete,
}

/// One field's change against the previous version.
#[derive(SimpleObject, Clone, Debug)]
pub struct FieldChange {
    /// The field, as the snapshot names it (camelCase).
    pub field: String,
    /// The value before (null for a created object).
    pub old: Option<Json<Value>>,
    /// The value after (null for a deleted object).
    pub new: Option<Json<Value>>,
}

fn json_or_none(value: Value) -> Option<Json<Value>> {
    (!value.is_null()).then_some(Json(value))
}

impl From<record::FieldChange> for FieldChange {
    fn from(change: record::FieldChange) -> Self {
        Self {
            field: change.field,
            old: json_or_none(change.old),
            new: json_or_none(change.new),
        }
    }
}

/// One change of one object.
pub struct HistoryRecord<E> {
    /// The object's entity.
    pub entity: E,
    /// The stored record.
    pub row: HistoryRow,
    /// The snapshot it follows, when known already (`Some(None)`: it follows none).
    previous: Option<Option<Value>>,
}

impl<E: EntitySet> HistoryRecord<E> {
    /// A record whose diff is computed when asked for.
    pub fn new(entity: E, row: HistoryRow) -> Self {
        Self {
            entity,
            row,
            previous: None,
        }
    }

    /// Records with the snapshots their diffs need read in one batch per entity.
    ///
    /// # Errors
    /// Database errors.
    pub async fn load(
        db: &sea_orm::DatabaseConnection,
        rows: Vec<(E, HistoryRow)>,
    ) -> async_graphql::Result<Vec<Self>> {
        let registry = registry_of::<E>()?;
        let mut previous: HashMap<(String, String, i32), Value> = HashMap::new();
        let mut by_entity: HashMap<&str, Vec<HistoryRow>> = HashMap::new();
        for (entity, row) in &rows {
            by_entity
                .entry(entity.name())
                .or_default()
                .push(row.clone());
        }
        for (name, group) in by_entity {
            let Some(info) = registry.get(name) else {
                continue;
            };
            let found = query::previous_snapshots(db, info, &group)
                .await
                .map_err(|e| e.extend())?;
            for ((object, version), snapshot) in found {
                previous.insert((name.to_owned(), object, version), snapshot);
            }
        }
        Ok(rows
            .into_iter()
            .map(|(entity, row)| {
                let key = (entity.name().to_owned(), row.object_id.clone(), row.version);
                Self {
                    previous: Some(previous.remove(&key)),
                    entity,
                    row,
                }
            })
            .collect())
    }
}

/// One change of one object: who made it, when, in which assignation, the whole row after it, and the
/// field changes against the previous version.
#[Object]
impl<E: ApiEntity> HistoryRecord<E> {
    /// Unique across all history.
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }
    /// Which kind of object changed.
    async fn entity(&self) -> E {
        self.entity
    }
    /// The object's id (its primary key; `"<a>:<b>"` for a composite key).
    async fn object_id(&self) -> ID {
        ID(self.row.object_id.clone())
    }
    /// 1, 2, 3 … per object, without gaps.
    async fn version(&self) -> i32 {
        self.row.version
    }
    /// What happened.
    async fn kind(&self) -> Kind {
        self.row.kind.into()
    }
    /// When it happened.
    async fn at(&self) -> Timestamp {
        Timestamp(self.row.at)
    }
    /// Who made the change.
    async fn user(&self) -> Option<&str> {
        self.row.actor.as_deref()
    }
    /// Through which app.
    async fn app(&self) -> Option<&str> {
        self.row.app.as_deref()
    }
    /// The assignation (correlation id) the change belongs to.
    async fn assignation_id(&self) -> &str {
        &self.row.assignation_id
    }
    /// Order of this change inside its assignation, from 0.
    async fn step(&self) -> i32 {
        self.row.step
    }
    /// The reason given with the change.
    async fn reason(&self) -> Option<&str> {
        self.row.reason.as_deref()
    }
    /// The whole row after the change (for a DELETE: as it was before).
    async fn snapshot(&self) -> Json<Value> {
        Json(self.row.snapshot.clone())
    }
    /// The fields that changed against the previous version of the same object (every field for a
    /// CREATE, from null; every field for a DELETE, to null).
    async fn changes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<FieldChange>> {
        let previous = match (&self.previous, self.row.kind) {
            (_, record::HistoryKind::Create | record::HistoryKind::Delete) => None,
            (Some(known), _) => known.clone(),
            (None, _) => {
                let info = info_of(self.entity)?;
                query::previous_snapshots(database(ctx)?, info, std::slice::from_ref(&self.row))
                    .await
                    .map_err(|e| e.extend())?
                    .into_values()
                    .next()
            }
        };
        Ok(diff(self.row.kind, previous.as_ref(), &self.row.snapshot)
            .into_iter()
            .map(FieldChange::from)
            .collect())
    }
    /// Hex SHA-256 chaining this record to the previous record of the same object (tamper evidence).
    async fn hash(&self) -> &str {
        &self.row.hash
    }
    /// The assignation the change belongs to.
    async fn assignation(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Assignation<E>>> {
        linked(ctx, Some(&self.row.assignation_id)).await
    }
    /// The record's index in the verifiable log (null until the sequencer has taken it, shortly
    /// after its transaction committed).
    #[cfg(feature = "log")]
    async fn log_index(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<i64>> {
        crate::log::entry_of(database(ctx)?, self.row.id)
            .await
            .map(|e| e.map(|e| e.idx))
            .map_err(|e| e.extend())
    }
    /// The W3C trace the change was made in (32 hex digits: the client's `traceparent`, or one the
    /// server started), or null when it was made outside any trace.
    async fn trace_id(&self) -> Option<&str> {
        self.row.trace_id.as_deref()
    }
    /// The span of that trace that made the change (16 hex digits), or null.
    async fn span_id(&self) -> Option<&str> {
        self.row.span_id.as_deref()
    }
}

/// A group of changes made under one correlation id, possibly over several requests.
pub struct Assignation<E>(pub assignation::Model, PhantomData<E>);

impl<E> Assignation<E> {
    /// The API object of a row.
    pub fn new(model: assignation::Model) -> Self {
        Self(model, PhantomData)
    }
}

/// The assignation `id`, when it holds changes or is a revert.
pub(crate) async fn linked<E>(
    ctx: &Context<'_>,
    id: Option<&str>,
) -> async_graphql::Result<Option<Assignation<E>>> {
    let Some(id) = id.and_then(|id| AssignationId::parse(id).ok()) else {
        return Ok(None);
    };
    query::find_assignation(database(ctx)?, &id)
        .await
        .map(|a| a.map(Assignation::new))
        .map_err(|e| e.extend())
}

/// A group of changes made under one correlation id, possibly over several requests.
#[Object]
impl<E: ApiEntity> Assignation<E> {
    /// The correlation id.
    async fn id(&self) -> &str {
        &self.0.id
    }
    /// Who started it.
    async fn user(&self) -> Option<&str> {
        self.0.actor.as_deref()
    }
    /// Through which app it was started.
    async fn app(&self) -> Option<&str> {
        self.0.app.as_deref()
    }
    /// When it was started.
    async fn started_at(&self) -> Timestamp {
        Timestamp(self.0.started_at)
    }
    /// How many history records it holds.
    async fn change_count(&self) -> i32 {
        self.0.change_count
    }
    /// The entities it changed.
    async fn entities(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<E>> {
        let registry = registry_of::<E>()?;
        Ok(query::entities_of(database(ctx)?, registry, &self.0.id)
            .await
            .map_err(|e| e.extend())?
            .into_iter()
            .filter_map(|info| E::from_name(&info.name))
            .collect())
    }
    /// Its history records, in step order.
    #[graphql(complexity = "list_complexity(first, child_complexity)")]
    async fn records(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<HistoryRecord<E>>> {
        let db = database(ctx)?;
        let first = page_size(&settings(ctx), first)?;
        let cursors = ListCursors::of_object("records", &self.0.id);
        let after = cursors.after(after.as_deref(), |s| s.parse::<i32>().ok())?;
        let page = query::assignation_records(db, registry_of::<E>()?, &self.0, first, after)
            .await
            .map_err(|e| e.extend())?;
        record_connection(db, page, &cursors, |r| r.step.to_string()).await
    }
    /// The assignation this one undid.
    async fn reverts(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Assignation<E>>> {
        linked(ctx, self.0.reverts.as_deref()).await
    }
    /// The assignation that undid this one.
    async fn reverted_by(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Assignation<E>>> {
        linked(ctx, self.0.reverted_by.as_deref()).await
    }
    /// The assignation that started this one (null at a root, or when the parent made no change
    /// here: it may live in another service; `parentId` still names it).
    async fn parent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Assignation<E>>> {
        linked(ctx, self.0.parent_id.as_deref()).await
    }
    /// The id of the assignation that started this one, wherever it ran.
    async fn parent_id(&self) -> Option<&str> {
        self.0.parent_id.as_deref()
    }
    /// The top of its tree (itself at a root; null when the root made no change here).
    async fn root(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Assignation<E>>> {
        linked(ctx, Some(self.0.root_id.as_deref().unwrap_or(&self.0.id))).await
    }
    /// The id of the top of its tree, wherever it ran.
    async fn root_id(&self) -> &str {
        self.0.root_id.as_deref().unwrap_or(&self.0.id)
    }
    /// The assignations it started that changed something here, oldest first.
    #[graphql(complexity = "list_complexity(first, child_complexity)")]
    async fn children(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<Assignation<E>>> {
        let first = page_size(&settings(ctx), first)?;
        let cursors = ListCursors::of_object("children", &self.0.id);
        let after = cursors.after(after.as_deref(), assignation_cursor)?;
        let page = query::children(database(ctx)?, &self.0.id, first, after)
            .await
            .map_err(|e| e.extend())?;
        Ok(cursors.connection(page, cursor_of, Assignation::new))
    }
    /// The human on whose behalf its tree runs (a provenance token's `rcb`, else the user who
    /// started it).
    async fn on_behalf_of(&self) -> Option<&str> {
        self.0.on_behalf_of.as_deref()
    }
    /// The hash of the arguments that started it (a provenance token's `ahs`).
    async fn args_hash(&self) -> Option<&str> {
        self.0.args_hash.as_deref()
    }
    /// How those arguments were canonicalized before hashing (`aha`).
    async fn args_hash_algorithm(&self) -> Option<&str> {
        self.0.args_hash_alg.as_deref()
    }
    /// The totals of this assignation and every one under it.
    #[graphql(complexity = 50)]
    async fn tree(&self, ctx: &Context<'_>) -> async_graphql::Result<TreeTotals> {
        let cap = settings(ctx).max_tree_assignations;
        query::tree_totals(database(ctx)?, &self.0, cap)
            .await
            .map(TreeTotals::from)
            .map_err(|e| e.extend())
    }
}

/// The raw cursor of an assignation in a list ordered by start: `<micros>|<id>`.
pub(crate) fn cursor_of(a: &assignation::Model) -> String {
    format!("{}|{}", a.started_at.timestamp_micros(), a.id)
}

/// Parses a raw cursor made by [`cursor_of`].
pub(crate) fn assignation_cursor(raw: &str) -> Option<query::AssignationCursor> {
    let (micros, id) = raw.split_once('|')?;
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(micros.parse().ok()?)?;
    AssignationId::is_valid(id).then(|| (at, id.to_owned()))
}

/// The size of a tree of assignations.
#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct TreeTotals {
    /// Assignations in it (that changed something here), the top one included.
    pub assignations: u64,
    /// Their history records.
    pub change_count: u64,
    /// How many of them were reverted.
    pub reverted: u64,
}

impl From<query::TreeTotals> for TreeTotals {
    fn from(t: query::TreeTotals) -> Self {
        Self {
            assignations: t.assignations,
            change_count: t.changes,
            reverted: t.reverted,
        }
    }
}

/// One object's history records, newest first: what the `history` field of every historized type
/// returns.
///
/// # Errors
/// `BAD_INPUT`, `LIMIT_EXCEEDED`; database errors.
pub async fn object_history<E: ApiEntity>(
    ctx: &Context<'_>,
    entity: E,
    object_id: &str,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<ListConnection<HistoryRecord<E>>> {
    let db = database(ctx)?;
    let first = page_size(&settings(ctx), first)?;
    let info = info_of(entity)?;
    let cursors = ListCursors::of_object("history", format_args!("{}/{object_id}", info.name));
    let after = cursors.after(after.as_deref(), |s| s.parse::<i32>().ok())?;
    let page = query::object_history(db, info, object_id, first, after)
        .await
        .map_err(|e| e.extend())?;
    let records =
        HistoryRecord::load(db, page.items.into_iter().map(|r| (entity, r)).collect()).await?;
    let page = query::Page {
        items: records,
        has_next: page.has_next,
        total: page.total,
    };
    Ok(cursors.connection(page, |r| r.row.version.to_string(), |r| r))
}

/// The records made in one W3C trace, oldest first (the `traceHistory` query).
pub async fn trace_history<E: ApiEntity>(
    ctx: &Context<'_>,
    trace_id: &str,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<ListConnection<HistoryRecord<E>>> {
    let db = database(ctx)?;
    let first = page_size(&settings(ctx), first)?;
    let cursors = ListCursors::of_object("traceHistory", trace_id);
    let after = cursors.after(after.as_deref(), |raw| {
        let (micros, id) = raw.split_once('|')?;
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(micros.parse().ok()?)?;
        Some((at, id.parse::<uuid::Uuid>().ok()?))
    })?;
    let page = query::trace_history(db, registry_of::<E>()?, trace_id, first, after)
        .await
        .map_err(|e| e.extend())?;
    record_connection(db, page, &cursors, |r| {
        format!("{}|{}", r.at.timestamp_micros(), r.id)
    })
    .await
}

/// A page of records of several entities as a connection of `cursors`' list, each at the position
/// `cursor` makes of it.
async fn record_connection<E: ApiEntity>(
    db: &sea_orm::DatabaseConnection,
    page: query::Page<(&EntityInfo, HistoryRow)>,
    cursors: &ListCursors,
    cursor: impl Fn(&HistoryRow) -> String,
) -> async_graphql::Result<ListConnection<HistoryRecord<E>>> {
    let rows: Vec<(E, HistoryRow)> = page
        .items
        .into_iter()
        .filter_map(|(info, row)| E::from_name(&info.name).map(|e| (e, row)))
        .collect();
    let positions: Vec<String> = rows.iter().map(|(_, r)| cursor(r)).collect();
    let records = HistoryRecord::load(db, rows).await?;
    let page = query::Page {
        items: positions.into_iter().zip(records).collect::<Vec<_>>(),
        has_next: page.has_next,
        total: page.total,
    };
    Ok(cursors.connection(page, |(c, _)| c.clone(), |(_, r)| r))
}

/// The result of checking one object's hash chain.
#[derive(SimpleObject, Clone, Debug)]
pub struct Verification {
    /// Whether every record matches its hash and follows its predecessor.
    pub ok: bool,
    /// How many records were checked (up to the first broken one).
    pub checked: i32,
    /// The first version whose hash does not match, or null.
    pub broken_at: Option<i32>,
    /// Why that version does not verify, or null.
    pub reason: Option<String>,
}

impl From<crate::verify::Verification> for Verification {
    fn from(v: crate::verify::Verification) -> Self {
        Self {
            ok: v.ok(),
            checked: i32::try_from(v.checked).unwrap_or(i32::MAX),
            broken_at: v.broken_at,
            reason: v.reason,
        }
    }
}

/// Why an object blocks a revert.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::error::ConflictReason")]
pub enum RevertConflictReason {
    /// Changed by a later assignation (`force` overrides it).
    ChangedSince,
    /// A row the revert's delete would leave pointing at nothing (`force` deletes it too, or sets its
    /// key to null when the key says `ON DELETE SET NULL`).
    Dependent,
    /// A row the revert must bring back needs a parent that is gone (`force` cannot help).
    MissingParent,
    /// A unique value the revert must restore is taken by another row (`force` cannot help).
    UniqueTaken,
}

/// A later change or a clash that blocks a revert.
pub struct RevertConflict<E> {
    conflict: crate::error::Conflict,
    _entity: PhantomData<E>,
}

/// The variant of an entity named in a plan (always registered).
fn variant<E: EntitySet>(name: &str) -> async_graphql::Result<E> {
    E::from_name(name).ok_or_else(|| HistoryError::NotRegistered(name.to_owned()).extend())
}

/// A later change or a clash that blocks a revert.
#[Object]
impl<E: ApiEntity> RevertConflict<E> {
    /// The object's entity.
    async fn entity(&self) -> async_graphql::Result<E> {
        variant(&self.conflict.entity)
    }
    /// The object changed since, or in the way.
    async fn object_id(&self) -> ID {
        ID(self.conflict.object_id.clone())
    }
    /// The assignation that changed it last.
    async fn assignation_id(&self) -> &str {
        &self.conflict.assignation_id
    }
    /// Why it blocks the revert.
    async fn reason(&self) -> RevertConflictReason {
        self.conflict.reason.into()
    }
    /// Whether `force: true` overrides it.
    async fn overridable(&self) -> bool {
        ConflictReason::overridable(self.conflict.reason)
    }
}

/// One object's net change in a planned revert.
pub struct PlannedChange<E> {
    change: crate::revert::PlannedChange,
    _entity: PhantomData<E>,
}

/// One object's net change in a planned revert.
#[Object]
impl<E: ApiEntity> PlannedChange<E> {
    /// The object's entity.
    async fn entity(&self) -> async_graphql::Result<E> {
        variant(&self.change.entity)
    }
    /// The object.
    async fn object_id(&self) -> ID {
        ID(self.change.object_id.clone())
    }
    /// CREATE (re-insert), UPDATE (back to the earlier values) or DELETE.
    async fn kind(&self) -> Kind {
        self.change.kind.into()
    }
    /// The field changes the revert would make, from the current values.
    async fn changes(&self) -> Vec<FieldChange> {
        self.change
            .changes
            .iter()
            .cloned()
            .map(FieldChange::from)
            .collect()
    }
}

/// What a revert would do, written nowhere.
pub struct RevertPreview<E>(RevertPlan, PhantomData<E>);

impl<E> From<RevertPlan> for RevertPreview<E> {
    fn from(plan: RevertPlan) -> Self {
        Self(plan, PhantomData)
    }
}

/// What a revert would do, written nowhere.
#[Object]
impl<E: ApiEntity> RevertPreview<E> {
    /// Each object's planned change.
    async fn changes(&self) -> Vec<PlannedChange<E>> {
        self.0
            .changes
            .iter()
            .map(|c| PlannedChange {
                change: c.clone(),
                _entity: PhantomData,
            })
            .collect()
    }
    /// What blocks the revert; `force: true` overrides later changes and dependent rows, not missing
    /// parents or taken unique values.
    async fn conflicts(&self) -> Vec<RevertConflict<E>> {
        self.0
            .conflicts
            .iter()
            .map(|c| RevertConflict {
                conflict: c.clone(),
                _entity: PhantomData,
            })
            .collect()
    }
}
