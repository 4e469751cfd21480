//! The history fields of the query and mutation roots, to merge into an application's own
//! (`#[derive(MergedObject)] struct QueryRoot(AppQuery, HistoryQuery<HistoryEntity>)`).

use std::marker::PhantomData;

use async_graphql::{Context, ErrorExtensions, ID, Object};

use super::pagination::{ListConnection, ListCursors, list_complexity, page_size};
use super::scalars::Timestamp;
use super::types::{
    ApiEntity, Assignation, HistoryRecord, RevertPreview, Verification, assignation_cursor,
    cursor_of, info_of, registry_of,
};
use super::{bad_input, database, may_restore, may_revert, settings};
use crate::context::{AssignationId, with_reason};
use crate::error::HistoryError;
use crate::query::{self, AssignationFilter};
use crate::revert::{self, RevertOptions};

/// A lookup key (an object id, a user name to filter by): at most `max` characters, no control
/// characters (which no id holds, and some backends refuse).
fn key(field: &str, value: &str, max: usize) -> async_graphql::Result<()> {
    if value.chars().count() > max {
        return Err(bad_input(format!(
            "{field} may not exceed {max} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(bad_input(format!(
            "{field} may not contain control characters"
        )));
    }
    Ok(())
}

/// A change's reason: at most the configured length, no NUL.
fn reason(ctx: &Context<'_>, reason: Option<&str>) -> async_graphql::Result<()> {
    let max = settings(ctx).max_reason_chars;
    match reason {
        Some(r) if r.contains('\0') => Err(bad_input("reason may not contain NUL characters")),
        Some(r) if r.chars().count() > max => {
            Err(bad_input(format!("reason may not exceed {max} characters")))
        }
        _ => Ok(()),
    }
}

/// An assignation id from an argument: one no request could carry names nothing.
fn assignation_id(id: &str) -> Result<AssignationId, async_graphql::Error> {
    AssignationId::parse(id)
        .map_err(|_| HistoryError::NotFound(format!("assignation {id}")).extend())
}

/// The history queries: `history`, `assignation`, `assignations`, `previewRevert`, `verifyHistory`.
pub struct HistoryQuery<E>(PhantomData<E>);

impl<E> Default for HistoryQuery<E> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[Object]
impl<E: ApiEntity> HistoryQuery<E> {
    /// One object's history records, newest first.
    #[graphql(complexity = "list_complexity(first, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        entity: E,
        id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<HistoryRecord<E>>> {
        key("id", &id, settings(ctx).max_object_id_chars)?;
        super::types::object_history(ctx, entity, &id, first, after).await
    }

    /// The history records made in one W3C trace (`traceId`: 32 hex digits, as `traceparent`
    /// carries it and `HistoryRecord.traceId` shows it), across every entity, oldest first.
    #[graphql(complexity = "list_complexity(first, child_complexity)")]
    async fn trace_history(
        &self,
        ctx: &Context<'_>,
        trace_id: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<HistoryRecord<E>>> {
        let Some(trace_id) = crate::context::Trace::parse_trace_id(&trace_id) else {
            return Err(bad_input("traceId must be 32 hex digits, not all zeros"));
        };
        super::types::trace_history(ctx, &trace_id, first, after).await
    }

    /// One assignation, or null if it holds no change (and is not a revert).
    async fn assignation(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<Assignation<E>>> {
        super::types::linked(ctx, Some(&id)).await
    }

    /// Assignations, newest first, filtered by who started them, through which app, which entity or
    /// object they changed, when they started, whether they were reverted, and the tree they are in
    /// (`rootId`: the root and everything under it).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "list_complexity(first, child_complexity)")]
    async fn assignations(
        &self,
        ctx: &Context<'_>,
        user: Option<String>,
        app: Option<String>,
        entity: Option<E>,
        object_id: Option<ID>,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        reverted: Option<bool>,
        root_id: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<Assignation<E>>> {
        let settings = settings(ctx);
        for (field, value, max) in [
            ("user", user.as_deref(), 200),
            ("app", app.as_deref(), 200),
            (
                "objectId",
                object_id.as_ref().map(|id| id.as_str()),
                settings.max_object_id_chars,
            ),
        ] {
            if let Some(value) = value {
                key(field, value, max)?;
            }
        }
        let first = page_size(&settings, first)?;
        if let Some(root) = &root_id {
            assignation_id(root)?;
        }
        let cursors = ListCursors::of("assignations");
        let after = cursors.after(after.as_deref(), assignation_cursor)?;
        let filter = AssignationFilter {
            user,
            app,
            entity: entity.map(|e| e.name().to_owned()),
            object_id: object_id.map(|id| id.0),
            since: since.map(Timestamp::utc),
            until: until.map(Timestamp::utc),
            reverted,
            root_id,
        };
        let page =
            query::list_assignations(database(ctx)?, registry_of::<E>()?, &filter, first, after)
                .await
                .map_err(|e| e.extend())?;
        Ok(cursors.connection(page, cursor_of, Assignation::new))
    }

    /// What `revertAssignation` would do — each object's planned change and each conflict — writing
    /// nothing; with `includeDescendants`, for the assignation and every one under it. An assignation
    /// reverted already is `ALREADY_REVERTED` (for a tree, naming each part reverted already in
    /// `extensions.reverted`).
    async fn preview_revert(
        &self,
        ctx: &Context<'_>,
        id: String,
        #[graphql(default_with = "Some(false)")] include_descendants: Option<bool>,
    ) -> async_graphql::Result<RevertPreview<E>> {
        let id = assignation_id(&id)?;
        let permit = |a: &crate::tables::assignation::Model| may_revert(ctx, a);
        let options = RevertOptions {
            permit: &permit,
            include_descendants: include_descendants.unwrap_or(false),
            max_tree: settings(ctx).max_tree_assignations,
            ..RevertOptions::default()
        };
        revert::preview_revert(database(ctx)?, registry_of::<E>()?, &id, &options)
            .await
            .map(RevertPreview::from)
            .map_err(|e| e.extend())
    }

    /// Recomputes one object's hash chain and reports the first version whose record no longer
    /// matches its hash (edited, or its predecessor removed).
    #[graphql(complexity = 100)]
    async fn verify_history(
        &self,
        ctx: &Context<'_>,
        entity: E,
        id: ID,
    ) -> async_graphql::Result<Verification> {
        key("id", &id, settings(ctx).max_object_id_chars)?;
        crate::verify::verify_object(database(ctx)?, info_of(entity)?, &id)
            .await
            .map(Verification::from)
            .map_err(|e| e.extend())
    }
}

/// The revert mutations: `revertAssignation`, `revertObject`.
pub struct HistoryMutation<E>(PhantomData<E>);

impl<E> Default for HistoryMutation<E> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[Object]
impl<E: ApiEntity> HistoryMutation<E> {
    /// Undoes every change of an assignation in one transaction, as a new assignation (returned) whose
    /// `reverts` is the original. Objects changed since by another assignation, and rows the revert
    /// would leave pointing at nothing, are `REVERT_CONFLICT` (with `extensions.conflicts`) unless
    /// `force`; a second revert is `ALREADY_REVERTED`; reverting the revert is a redo. With
    /// `includeDescendants`, every assignation under this one is undone with it, as one: each object
    /// goes back to its state before the tree first changed it.
    async fn revert_assignation(
        &self,
        ctx: &Context<'_>,
        id: String,
        #[graphql(default_with = "Some(false)")] force: Option<bool>,
        reason: Option<String>,
        #[graphql(default_with = "Some(false)")] include_descendants: Option<bool>,
    ) -> async_graphql::Result<Assignation<E>> {
        self::reason(ctx, reason.as_deref())?;
        let id = assignation_id(&id)?;
        let permit = |a: &crate::tables::assignation::Model| may_revert(ctx, a);
        let options = RevertOptions {
            force: force.unwrap_or(false),
            reason,
            permit: &permit,
            include_descendants: include_descendants.unwrap_or(false),
            max_tree: settings(ctx).max_tree_assignations,
        };
        with_reason(
            None,
            revert::revert_assignation(database(ctx)?, &id, &options),
        )
        .await
        .map(Assignation::new)
        .map_err(|e| e.extend())
    }

    /// Brings one object back to the snapshot of a version (re-creating it if it was deleted), as a
    /// new history record in a new assignation; returns the object's latest record.
    async fn revert_object(
        &self,
        ctx: &Context<'_>,
        entity: E,
        id: ID,
        to_version: i32,
        reason: Option<String>,
    ) -> async_graphql::Result<HistoryRecord<E>> {
        self::reason(ctx, reason.as_deref())?;
        key("id", &id, settings(ctx).max_object_id_chars)?;
        let info = info_of(entity)?;
        if !may_restore(ctx, &info.name, &id) {
            return Err(HistoryError::Forbidden(format!(
                "you may not restore {} {}",
                info.name, *id
            ))
            .extend());
        }
        let row = with_reason(
            None,
            revert::revert_object(database(ctx)?, info, &id, to_version, reason),
        )
        .await
        .map_err(|e| e.extend())?;
        Ok(HistoryRecord::new(entity, row))
    }
}
