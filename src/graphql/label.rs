//! `Label`: its type, `label`/`labels`, and the label mutations.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use entity::HistoryEntity as Entity;
use entity::label;
use sea_orm::Condition;

use super::history::{HistoryRecord, object_history};
use super::pagination::{ListConnection, ListCursors, page_size};
use super::required;
use super::state;
use crate::error::IntoGraphql;
use crate::service::{self, label as svc, validate};
use sea_orm_history::graphql::koherent::{ProvenanceEntry, provenance};
use sea_orm_history::graphql::scalars::Timestamp;

/// A named colour tasks can carry.
pub struct Label(pub label::Model);

/// A named colour tasks can carry.
#[Object]
impl Label {
    /// UUIDv7.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Unique, 1–50 characters.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// `#rrggbb`.
    async fn color(&self) -> &str {
        &self.0.color
    }
    /// This label's history records, newest first.
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<HistoryRecord>> {
        object_history(ctx, Entity::Label, &self.0.id.to_string(), first, after).await
    }
    /// This label's history as Koherent names it (for Arkitekt clients), newest first: the `first`
    /// newest entries (default and most: the largest page).
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn provenance(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<ProvenanceEntry>> {
        provenance(ctx, Entity::Label, &self.0.id.to_string(), first).await
    }
}

/// A new label.
#[derive(InputObject)]
pub struct CreateLabelInput {
    /// Unique, 1–50 characters.
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
}

/// Changes to a label: omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateLabelInput {
    /// Unique, 1–50 characters.
    pub name: MaybeUndefined<String>,
    /// `#rrggbb`.
    pub color: MaybeUndefined<String>,
}

/// Label queries.
#[derive(Default)]
pub struct LabelQuery;

#[Object]
impl LabelQuery {
    /// One label; with `asOf`, as it was at that instant (null if it did not exist then).
    async fn label(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<Timestamp>,
    ) -> async_graphql::Result<Option<Label>> {
        super::find_one::<label::Entity>(ctx, &id, as_of)
            .await
            .map(|m| m.map(Label))
    }

    /// Every label, in creation order.
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn labels(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<Label>> {
        let (db, limits) = state(ctx).gql()?;
        let first = page_size(limits, first)?;
        let cursors = ListCursors::of("labels");
        let after = cursors.after(after.as_deref(), |s| uuid::Uuid::parse_str(s).ok())?;
        let page = service::page_by_id::<label::Entity, _>(
            db,
            Condition::all(),
            label::Column::Id,
            first,
            after,
        )
        .await
        .gql()?;
        Ok(cursors.connection(page, |m| m.id.to_string(), Label))
    }
}

/// Label mutations.
#[derive(Default)]
pub struct LabelMutation;

#[Object]
impl LabelMutation {
    /// Creates a label; its name must be unused.
    async fn create_label(
        &self,
        ctx: &Context<'_>,
        input: CreateLabelInput,
        reason: Option<String>,
    ) -> async_graphql::Result<Label> {
        let input = svc::NewLabel {
            name: input.name,
            color: input.color,
        };
        super::mutation(ctx, reason, move |db, _| svc::create_label(db, input))
            .await
            .map(Label)
    }

    /// Changes a label; an update that changes no value writes no history.
    async fn update_label(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateLabelInput,
        reason: Option<String>,
    ) -> async_graphql::Result<Label> {
        let id = validate::uuid("id", &id).gql()?;
        let changes = svc::LabelChanges {
            name: required("name", input.name).gql()?,
            color: required("color", input.color).gql()?,
        };
        super::mutation(ctx, reason, move |db, _| svc::update_label(db, id, changes))
            .await
            .map(Label)
    }

    /// Deletes a label and its task links, each historized.
    async fn delete_label(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> async_graphql::Result<ID> {
        let id = validate::uuid("id", &id).gql()?;
        super::mutation(ctx, reason, move |db, _| svc::delete_label(db, id))
            .await
            .map(|id| ID(id.to_string()))
    }
}
