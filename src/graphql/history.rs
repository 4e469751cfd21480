//! History in the API: `HistoryRecord`, `FieldChange`, `Assignation`, the `history`, `assignation`
//! and `assignations` queries, and the `history` field every historized type shares.

use async_graphql::{Context, Enum, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::assignation;
use entity::history::HistoryRow;
use serde_json::Value;

use super::pagination::{ListConnection, connection, page_size, parse_after};
use super::scalars::Timestamp;
use super::state;
use crate::error::{AppResult, IntoGraphql};
use crate::service::validate;

/// The longest object id (the width of the `object_id` columns).
const OBJECT_ID_CHARS: usize = 80;
use crate::history::revert::{self, RevertPlan};
use crate::history::{self, AssignationFilter};
use entity::context::with_reason;

/// Which kind of object a history record is about.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "entity::history::HistoryEntity")]
pub enum HistoryEntity {
    /// A project.
    Project,
    /// A label.
    Label,
    /// A task.
    Task,
    /// A task–label link (object id `"<taskId>:<labelId>"`).
    TaskLabel,
    /// A comment.
    Comment,
}

/// What happened to the object.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "entity::history::HistoryKind")]
pub enum HistoryKind {
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
    /// The field (camelCase, as in the snapshot).
    pub field: String,
    /// The value before (null for a new field or a created object).
    pub old: Option<Json<Value>>,
    /// The value after (null for a deleted object).
    pub new: Option<Json<Value>>,
}

/// One change of one object.
pub struct HistoryRecord {
    /// The object's entity.
    pub entity: entity::history::HistoryEntity,
    /// The stored record.
    pub row: HistoryRow,
}

fn json_or_none(value: Option<&Value>) -> Option<Json<Value>> {
    match value {
        None | Some(Value::Null) => None,
        Some(v) => Some(Json(v.clone())),
    }
}

/// One change of one object: who made it, when, in which assignation, the whole row after it and the
/// field changes against the previous version.
#[Object]
impl HistoryRecord {
    /// Unique across all history.
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }
    /// Which kind of object changed.
    async fn entity(&self) -> HistoryEntity {
        self.entity.into()
    }
    /// The object's id (`"<taskId>:<labelId>"` for a TASK_LABEL).
    async fn object_id(&self) -> ID {
        ID(self.row.object_id.clone())
    }
    /// 1, 2, 3 … per object, without gaps.
    async fn version(&self) -> i32 {
        self.row.version
    }
    /// What happened.
    async fn kind(&self) -> HistoryKind {
        self.row.history_kind().into()
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
    async fn changes(&self) -> Vec<FieldChange> {
        field_changes(&self.row.changes)
    }
    /// Hex SHA-256 over this record and the previous record's hash (tamper evidence).
    async fn hash(&self) -> &str {
        &self.row.hash
    }
    /// The assignation the change belongs to.
    async fn assignation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Assignation>> {
        let (db, _) = state(ctx).gql()?;
        history::find_assignation(db, &self.row.assignation_id)
            .await
            .map(|a| a.map(Assignation))
            .gql()
    }
}

/// A group of changes made under one correlation id, possibly over several requests.
pub struct Assignation(pub assignation::Model);

/// A group of changes made under one correlation id, possibly over several requests.
#[Object]
impl Assignation {
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
    async fn entities(&self) -> Vec<HistoryEntity> {
        entity::history::HistoryEntity::from_mask(self.0.entity_mask)
            .into_iter()
            .map(Into::into)
            .collect()
    }
    /// Its history records, in step order.
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn records(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<HistoryRecord>> {
        let (db, limits) = state(ctx).gql()?;
        let first = page_size(limits, first).gql()?;
        let after = parse_after(after.as_deref(), |s| s.parse::<i32>().ok()).gql()?;
        let page = history::assignation_records(db, &self.0, first, after)
            .await
            .gql()?;
        Ok(connection(
            page,
            |(_, row)| row.step.to_string(),
            |(entity, row)| HistoryRecord { entity, row },
        ))
    }
    /// The assignation this one undid.
    async fn reverts(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Assignation>> {
        linked(ctx, self.0.reverts.as_deref()).await
    }
    /// The assignation that undid this one.
    async fn reverted_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Assignation>> {
        linked(ctx, self.0.reverted_by.as_deref()).await
    }
}

async fn linked(ctx: &Context<'_>, id: Option<&str>) -> async_graphql::Result<Option<Assignation>> {
    let Some(id) = id else { return Ok(None) };
    let (db, _) = state(ctx).gql()?;
    history::find_assignation(db, id)
        .await
        .map(|a| a.map(Assignation))
        .gql()
}

/// One object's history, newest first: what every historized type's `history` field returns.
///
/// # Errors
/// `BAD_INPUT`, `LIMIT_EXCEEDED`; database errors.
pub async fn object_history(
    ctx: &Context<'_>,
    entity: entity::history::HistoryEntity,
    object_id: &str,
    first: Option<i32>,
    after: Option<String>,
) -> AppResult<ListConnection<HistoryRecord>> {
    let (db, limits) = state(ctx)?;
    let first = page_size(limits, first)?;
    let after = parse_after(after.as_deref(), |s| s.parse::<i32>().ok())?;
    let page = history::object_history(db, entity, object_id, first, after).await?;
    Ok(connection(
        page,
        |row| row.version.to_string(),
        |row| HistoryRecord { entity, row },
    ))
}

/// The history queries.
#[derive(Default)]
pub struct HistoryQuery;

#[Object]
impl HistoryQuery {
    /// One object's history records, newest first.
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        entity: HistoryEntity,
        id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<HistoryRecord>> {
        validate::key("id", &id, OBJECT_ID_CHARS).gql()?;
        object_history(ctx, entity.into(), &id, first, after)
            .await
            .gql()
    }

    /// What `revertAssignation` would do — each object's planned change and each conflict — writing
    /// nothing. With auth on, only the assignation's user or a holder of `history:revert-any` may ask.
    async fn preview_revert(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<RevertPreview> {
        let (db, _) = state(ctx).gql()?;
        let principal = super::principal(ctx).gql()?;
        revert::preview_revert(db, &id, principal)
            .await
            .map(RevertPreview::from)
            .gql()
    }

    /// Recomputes one object's hash chain from its first record on and reports the first version whose
    /// record no longer matches its hash (edited, or its predecessor removed).
    #[graphql(complexity = 100)]
    async fn verify_history(
        &self,
        ctx: &Context<'_>,
        entity: HistoryEntity,
        id: ID,
    ) -> async_graphql::Result<Verification> {
        validate::key("id", &id, OBJECT_ID_CHARS).gql()?;
        let (db, _) = state(ctx).gql()?;
        crate::history::verify::verify_object(db, entity.into(), &id)
            .await
            .map(Verification::from)
            .gql()
    }

    /// One assignation, or null if it holds no change.
    async fn assignation(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<Assignation>> {
        let (db, _) = state(ctx).gql()?;
        history::find_assignation(db, &id)
            .await
            .map(|a| a.map(Assignation))
            .gql()
    }

    /// Assignations, newest first, filtered by who started them, through which app, which entity or
    /// object they touched, when they started, and whether they were reverted.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn assignations(
        &self,
        ctx: &Context<'_>,
        user: Option<String>,
        app: Option<String>,
        entity: Option<HistoryEntity>,
        object_id: Option<ID>,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        reverted: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<Assignation>> {
        for (field, value, max) in [
            ("user", user.as_deref(), 200),
            ("app", app.as_deref(), 200),
            (
                "objectId",
                object_id.as_ref().map(|id| id.as_str()),
                OBJECT_ID_CHARS,
            ),
        ] {
            if let Some(value) = value {
                validate::key(field, value, max).gql()?;
            }
        }
        let (db, limits) = state(ctx).gql()?;
        let first = page_size(limits, first).gql()?;
        let after = parse_after(after.as_deref(), |s| {
            let (micros, id) = s.split_once('|')?;
            let at = DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?;
            crate::context::is_valid_assignation_id(id).then(|| (at, id.to_owned()))
        })
        .gql()?;
        let filter = AssignationFilter {
            user,
            app,
            entity: entity.map(Into::into),
            object_id: object_id.map(|id| id.0),
            since: since.map(Timestamp::utc),
            until: until.map(Timestamp::utc),
            reverted,
        };
        let page = history::list_assignations(db, &filter, first, after)
            .await
            .gql()?;
        Ok(connection(
            page,
            |a| format!("{}|{}", a.started_at.timestamp_micros(), a.id),
            Assignation,
        ))
    }
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

impl From<crate::history::verify::Verification> for Verification {
    fn from(v: crate::history::verify::Verification) -> Self {
        Self {
            ok: v.ok(),
            checked: i32::try_from(v.checked).unwrap_or(i32::MAX),
            broken_at: v.broken_at,
            reason: v.reason,
        }
    }
}

/// A later change or a clash that blocks a revert.
#[derive(SimpleObject, Clone, Debug)]
pub struct RevertConflict {
    /// The object's entity.
    pub entity: HistoryEntity,
    /// The object changed since (or in the way).
    pub object_id: ID,
    /// The assignation that changed it last.
    pub assignation_id: String,
}

/// One object's net change in a planned revert.
#[derive(SimpleObject, Clone, Debug)]
pub struct PlannedChange {
    /// The object's entity.
    pub entity: HistoryEntity,
    /// The object.
    pub object_id: ID,
    /// CREATE (re-insert), UPDATE (back to the earlier values) or DELETE.
    pub kind: HistoryKind,
    /// The field changes the revert would make, from the current values.
    pub changes: Vec<FieldChange>,
}

/// What a revert would do, written nowhere.
#[derive(SimpleObject, Clone, Debug)]
pub struct RevertPreview {
    /// Each object's planned change.
    pub changes: Vec<PlannedChange>,
    /// What blocks the revert; `force: true` overrides later changes and dependent rows, not missing
    /// parents or taken unique values.
    pub conflicts: Vec<RevertConflict>,
}

fn field_changes(changes: &Value) -> Vec<FieldChange> {
    changes
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|c| {
                    Some(FieldChange {
                        field: c.get("field")?.as_str()?.to_owned(),
                        old: json_or_none(c.get("old")),
                        new: json_or_none(c.get("new")),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

impl From<RevertPlan> for RevertPreview {
    fn from(plan: RevertPlan) -> Self {
        let conflicts = plan
            .all_conflicts()
            .into_iter()
            .map(|c| RevertConflict {
                entity: c.entity.into(),
                object_id: ID(c.object_id),
                assignation_id: c.assignation_id,
            })
            .collect();
        let changes = plan
            .changes
            .into_iter()
            .map(|c| PlannedChange {
                entity: c.entity.into(),
                object_id: ID(c.object_id),
                kind: c.kind.into(),
                changes: field_changes(&c.changes),
            })
            .collect();
        Self { changes, conflicts }
    }
}

/// The revert mutations.
#[derive(Default)]
pub struct RevertMutation;

#[Object]
impl RevertMutation {
    /// Undoes every change of an assignation in one transaction, as a new assignation (returned) whose
    /// `reverts` is the original. Objects changed since by another assignation are `REVERT_CONFLICT`
    /// (with `extensions.conflicts`) unless `force`; a second revert is `ALREADY_REVERTED`; reverting
    /// the revert is a redo. With auth on, only the assignation's user or a holder of
    /// `history:revert-any` may revert it (`FORBIDDEN`).
    async fn revert_assignation(
        &self,
        ctx: &Context<'_>,
        id: String,
        #[graphql(default = false)] force: bool,
        reason: Option<String>,
    ) -> async_graphql::Result<Assignation> {
        let (db, limits) = state(ctx).gql()?;
        super::check_reason(limits, reason.as_deref()).gql()?;
        let principal = super::principal(ctx).gql()?;
        with_reason(
            None,
            revert::revert_assignation(db, &id, force, reason, principal),
        )
        .await
        .map(Assignation)
        .gql()
    }

    /// Brings one object back to the snapshot of a version (re-creating it if it was deleted), as a new
    /// history record in a new assignation; returns the object's latest record.
    async fn revert_object(
        &self,
        ctx: &Context<'_>,
        entity: HistoryEntity,
        id: ID,
        to_version: i32,
        reason: Option<String>,
    ) -> async_graphql::Result<HistoryRecord> {
        let (db, limits) = state(ctx).gql()?;
        super::check_reason(limits, reason.as_deref()).gql()?;
        validate::key("id", &id, OBJECT_ID_CHARS).gql()?;
        let entity: entity::history::HistoryEntity = entity.into();
        with_reason(
            None,
            revert::revert_object(db, entity, &id, to_version, reason),
        )
        .await
        .map(|row| HistoryRecord { entity, row })
        .gql()
    }
}
