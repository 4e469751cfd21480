//! `Project`: its type, `project`/`projects`, and `createProject`/`updateProject`/`deleteProject`.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use entity::HistoryEntity as Entity;
use entity::{project, task};
use sea_orm::{ColumnTrait, Condition};

use super::history::{HistoryRecord, object_history};
use super::pagination::{ListConnection, ListCursors, page_size};
use super::task::{Task, TaskStatus};
use super::{maybe, required, state};
use crate::error::IntoGraphql;
use crate::service::{self, project as svc, validate};
use sea_orm_history::graphql::koherent::{ProvenanceEntry, provenance};
use sea_orm_history::graphql::scalars::Timestamp;

/// A named group of tasks.
pub struct Project(pub project::Model);

/// A named group of tasks.
#[Object]
impl Project {
    /// UUIDv7.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// 1–200 characters.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Free text.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Archived projects stay readable.
    async fn archived(&self) -> bool {
        self.0.archived
    }
    /// When it was created.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }
    /// When a value last changed.
    async fn updated_at(&self) -> Timestamp {
        Timestamp(self.0.updated_at)
    }
    /// The project's tasks (as they are now), in creation order, optionally by status.
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        status: Option<TaskStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<Task>> {
        super::task::list_tasks(ctx, Some(self.0.id), status, first, after).await
    }
    /// This project's history records, newest first.
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<HistoryRecord>> {
        object_history(ctx, Entity::Project, &self.0.id.to_string(), first, after).await
    }
    /// This project's history as Koherent names it (for Arkitekt clients), newest first: the `first`
    /// newest entries (default and most: the largest page).
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn provenance(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<ProvenanceEntry>> {
        provenance(ctx, Entity::Project, &self.0.id.to_string(), first).await
    }
    /// The history records and audit events of this project and of everything under it (tasks,
    /// comments, label links), newest first.
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<super::audit::TimelineEntry>> {
        super::audit::project_timeline(ctx, &self.0.id.to_string(), first, after).await
    }
}

/// A new project.
#[derive(InputObject)]
pub struct CreateProjectInput {
    /// 1–200 characters.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
}

/// Changes to a project: omitted fields stay as they are; `description: null` clears it.
#[derive(InputObject)]
pub struct UpdateProjectInput {
    /// 1–200 characters.
    pub name: MaybeUndefined<String>,
    /// Free text; null clears it.
    pub description: MaybeUndefined<String>,
    /// Archive or unarchive.
    pub archived: MaybeUndefined<bool>,
}

/// Project queries.
#[derive(Default)]
pub struct ProjectQuery;

#[Object]
impl ProjectQuery {
    /// One project; with `asOf`, as it was at that instant (null if it did not exist then).
    async fn project(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<Timestamp>,
    ) -> async_graphql::Result<Option<Project>> {
        super::find_one::<project::Entity>(ctx, &id, as_of)
            .await
            .map(|m| m.map(Project))
    }

    /// Every project, in creation order.
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<Project>> {
        let (db, limits) = state(ctx).gql()?;
        let first = page_size(limits, first)?;
        let cursors = ListCursors::of("projects");
        let after = cursors.after(after.as_deref(), |s| uuid::Uuid::parse_str(s).ok())?;
        let page = service::page_by_id::<project::Entity, _>(
            db,
            Condition::all(),
            project::Column::Id,
            first,
            after,
        )
        .await
        .gql()?;
        Ok(cursors.connection(page, |m| m.id.to_string(), Project))
    }
}

/// Project mutations.
#[derive(Default)]
pub struct ProjectMutation;

#[Object]
impl ProjectMutation {
    /// Creates a project.
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        input: CreateProjectInput,
        reason: Option<String>,
    ) -> async_graphql::Result<Project> {
        let input = svc::NewProject {
            name: input.name,
            description: input.description,
        };
        super::mutation(ctx, reason, move |db, limits| {
            svc::create_project(db, limits, input)
        })
        .await
        .map(Project)
    }

    /// Changes a project; an update that changes no value writes no history.
    async fn update_project(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateProjectInput,
        reason: Option<String>,
    ) -> async_graphql::Result<Project> {
        let id = validate::uuid("id", &id).gql()?;
        let changes = svc::ProjectChanges {
            name: required("name", input.name).gql()?,
            description: maybe(input.description),
            archived: required("archived", input.archived).gql()?,
        };
        super::mutation(ctx, reason, move |db, limits| {
            svc::update_project(db, limits, id, changes)
        })
        .await
        .map(Project)
    }

    /// Deletes a project with its tasks, their comments and label links, each historized in one
    /// assignation, so that one revert brings all of it back.
    async fn delete_project(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> async_graphql::Result<ID> {
        let id = validate::uuid("id", &id).gql()?;
        super::mutation(ctx, reason, move |db, _| svc::delete_project(db, id))
            .await
            .map(|id| ID(id.to_string()))
    }
}

/// Tasks of a project, for [`Project::tasks`] and `tasks(projectId)`.
pub fn tasks_condition(project_id: Option<uuid::Uuid>, status: Option<TaskStatus>) -> Condition {
    let mut condition = Condition::all();
    if let Some(project_id) = project_id {
        condition = condition.add(task::Column::ProjectId.eq(project_id));
    }
    if let Some(status) = status {
        condition = condition.add(task::Column::Status.eq(entity::task::TaskStatus::from(status)));
    }
    condition
}
