//! `Comment`: its type, `comment`, and the comment mutations.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use chrono::{DateTime, Utc};
use entity::HistoryEntity as Entity;
use entity::{comment, task};
use sea_orm::EntityTrait;

use super::history::{HistoryRecord, object_history};
use super::pagination::ListConnection;
use super::required;
use super::state;
use super::task::Task;
use crate::error::{AppError, IntoGraphql};
use crate::service::{comment as svc, validate};
use sea_orm_history::graphql::koherent::{ProvenanceEntry, provenance};
use sea_orm_history::graphql::scalars::Timestamp;

/// Text attached to a task: the row, and the instant it was read as of (`None`: now).
pub struct Comment(pub comment::Model, pub Option<DateTime<Utc>>);

impl Comment {
    /// A comment as it is now.
    pub fn now(model: comment::Model) -> Self {
        Self(model, None)
    }
}

/// Text attached to a task.
#[Object]
impl Comment {
    /// UUIDv7.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The task commented on (as of the same instant as the comment).
    async fn task(&self, ctx: &Context<'_>) -> async_graphql::Result<Task> {
        let (db, _) = state(ctx).gql()?;
        let found = match self.1 {
            Some(at) => {
                crate::service::as_of::<task::Entity, _>(db, &self.0.task_id.to_string(), at).await
            }
            None => task::Entity::find_by_id(self.0.task_id)
                .one(db)
                .await
                .map_err(AppError::from),
        };
        found
            .and_then(|t| t.ok_or_else(|| AppError::NotFound("task".into())))
            .map(|t| Task(t, self.1))
            .gql()
    }
    /// 1–10,000 characters.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// When it was written.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }
    /// When the body last changed.
    async fn updated_at(&self) -> Timestamp {
        Timestamp(self.0.updated_at)
    }
    /// This comment's history records, newest first.
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<HistoryRecord>> {
        object_history(ctx, Entity::Comment, &self.0.id.to_string(), first, after).await
    }
    /// This comment's history as Koherent names it (for Arkitekt clients), newest first: the `first`
    /// newest entries (default and most: the largest page).
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn provenance(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<ProvenanceEntry>> {
        provenance(ctx, Entity::Comment, &self.0.id.to_string(), first).await
    }
}

/// A new comment.
#[derive(InputObject)]
pub struct CreateCommentInput {
    /// The task to comment on.
    pub task_id: ID,
    /// 1–10,000 characters.
    pub body: String,
}

/// Changes to a comment.
#[derive(InputObject)]
pub struct UpdateCommentInput {
    /// 1–10,000 characters.
    pub body: MaybeUndefined<String>,
}

/// Comment queries.
#[derive(Default)]
pub struct CommentQuery;

#[Object]
impl CommentQuery {
    /// One comment; with `asOf`, as it was at that instant (null if it did not exist then).
    async fn comment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<Timestamp>,
    ) -> async_graphql::Result<Option<Comment>> {
        super::find_one::<comment::Entity>(ctx, &id, as_of)
            .await
            .map(|m| m.map(|m| Comment(m, as_of.map(Timestamp::utc))))
    }
}

/// Comment mutations.
#[derive(Default)]
pub struct CommentMutation;

#[Object]
impl CommentMutation {
    /// Comments on a task.
    async fn create_comment(
        &self,
        ctx: &Context<'_>,
        input: CreateCommentInput,
        reason: Option<String>,
    ) -> async_graphql::Result<Comment> {
        let task_id = validate::uuid("taskId", &input.task_id).gql()?;
        super::mutation(ctx, reason, move |db, _| {
            svc::create_comment(db, task_id, input.body)
        })
        .await
        .map(Comment::now)
    }

    /// Changes a comment's body; the same body writes no history.
    async fn update_comment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCommentInput,
        reason: Option<String>,
    ) -> async_graphql::Result<Comment> {
        let id = validate::uuid("id", &id).gql()?;
        let body = required("body", input.body).gql()?;
        super::mutation(ctx, reason, move |db, _| svc::update_comment(db, id, body))
            .await
            .map(Comment::now)
    }

    /// Deletes a comment.
    async fn delete_comment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> async_graphql::Result<ID> {
        let id = validate::uuid("id", &id).gql()?;
        super::mutation(ctx, reason, move |db, _| svc::delete_comment(db, id))
            .await
            .map(|id| ID(id.to_string()))
    }
}
