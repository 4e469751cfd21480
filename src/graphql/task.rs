//! `Task`: its type, `task`/`tasks`, and the task and label-link mutations.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object};
use chrono::{DateTime, Utc};
use entity::HistoryEntity as Entity;
use entity::{comment, label, project, task, task_label};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::comment::Comment;
use super::history::{HistoryRecord, object_history};
use super::label::Label;
use super::pagination::{ListConnection, ListCursors, page_size};
use super::project::{Project, tasks_condition};
use super::scalars::Date;
use super::state;
use super::{maybe, required};
use crate::error::{AppError, IntoGraphql};
use crate::service::{self, task as svc, validate};
use sea_orm_history::graphql::koherent::{ProvenanceEntry, provenance};
use sea_orm_history::graphql::scalars::Timestamp;

/// Where a task stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "entity::task::TaskStatus")]
pub enum TaskStatus {
    /// Not started.
    Todo,
    /// In progress.
    Doing,
    /// Finished.
    Done,
}

/// A unit of work in a project: the row, and the instant it was read as of (`None`: now), so that its
/// parent is read as of the same instant.
pub struct Task(pub task::Model, pub Option<DateTime<Utc>>);

impl Task {
    /// A task as it is now.
    pub fn now(model: task::Model) -> Self {
        Self(model, None)
    }
}

/// A unit of work in a project.
#[Object]
impl Task {
    /// UUIDv7.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The project the task belongs to (as of the same instant as the task).
    async fn project(&self, ctx: &Context<'_>) -> async_graphql::Result<Project> {
        let (db, _) = state(ctx).gql()?;
        let found = match self.1 {
            Some(at) => {
                service::as_of::<project::Entity, _>(db, &self.0.project_id.to_string(), at).await
            }
            None => project::Entity::find_by_id(self.0.project_id)
                .one(db)
                .await
                .map_err(AppError::from),
        };
        found
            .and_then(|p| p.ok_or_else(|| AppError::NotFound("project".into())))
            .map(Project)
            .gql()
    }
    /// 1–500 characters.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// Free text.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// TODO, DOING or DONE.
    async fn status(&self) -> TaskStatus {
        self.0.status.into()
    }
    /// 0–5.
    async fn priority(&self) -> i32 {
        self.0.priority
    }
    /// When the task is due.
    async fn due_date(&self) -> Option<Date> {
        self.0.due_date.map(Date)
    }
    /// When it was created.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }
    /// When a value last changed.
    async fn updated_at(&self) -> Timestamp {
        Timestamp(self.0.updated_at)
    }
    /// The task's labels (as they are now), by name.
    async fn labels(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Label>> {
        let (db, _) = state(ctx).gql()?;
        let ids: Vec<uuid::Uuid> = task_label::Entity::find()
            .select_only()
            .column(task_label::Column::LabelId)
            .filter(task_label::Column::TaskId.eq(self.0.id))
            .into_tuple()
            .all(db)
            .await
            .map_err(AppError::from)
            .gql()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        label::Entity::find()
            .filter(label::Column::Id.is_in(ids))
            .order_by_asc(label::Column::Name)
            .all(db)
            .await
            .map(|labels| labels.into_iter().map(Label).collect())
            .map_err(AppError::from)
            .gql()
    }
    /// The task's comments (as they are now), oldest first.
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn comments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<Comment>> {
        let (db, limits) = state(ctx).gql()?;
        let first = page_size(limits, first)?;
        let cursors = ListCursors::of_object("comments", self.0.id);
        let after = cursors.after(after.as_deref(), |s| uuid::Uuid::parse_str(s).ok())?;
        let page = service::page_by_id::<comment::Entity, _>(
            db,
            Condition::all().add(comment::Column::TaskId.eq(self.0.id)),
            comment::Column::Id,
            first,
            after,
        )
        .await
        .gql()?;
        Ok(cursors.connection(page, |m| m.id.to_string(), Comment::now))
    }
    /// This task's history records, newest first.
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<HistoryRecord>> {
        object_history(ctx, Entity::Task, &self.0.id.to_string(), first, after).await
    }
    /// This task's history as Koherent names it (for Arkitekt clients), newest first: the `first`
    /// newest entries (default and most: the largest page).
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn provenance(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<ProvenanceEntry>> {
        provenance(ctx, Entity::Task, &self.0.id.to_string(), first).await
    }
}

/// Tasks by project and status, in creation order.
///
/// # Errors
/// `BAD_INPUT`, `LIMIT_EXCEEDED`; database errors.
pub async fn list_tasks(
    ctx: &Context<'_>,
    project_id: Option<uuid::Uuid>,
    status: Option<TaskStatus>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<ListConnection<Task>> {
    let (db, limits) = state(ctx).gql()?;
    let first = page_size(limits, first)?;
    let cursors = match project_id {
        Some(project) => ListCursors::of_object("tasks", project),
        None => ListCursors::of("tasks"),
    };
    let after = cursors.after(after.as_deref(), |s| uuid::Uuid::parse_str(s).ok())?;
    let page = service::page_by_id::<task::Entity, _>(
        db,
        tasks_condition(project_id, status),
        task::Column::Id,
        first,
        after,
    )
    .await
    .gql()?;
    Ok(cursors.connection(page, |m| m.id.to_string(), Task::now))
}

/// A new task. `status` defaults to TODO and `priority` to 0.
#[derive(InputObject)]
pub struct CreateTaskInput {
    /// The project it belongs to.
    pub project_id: ID,
    /// 1–500 characters.
    pub title: String,
    /// Free text.
    pub description: Option<String>,
    /// Defaults to TODO.
    pub status: Option<TaskStatus>,
    /// 0–5, defaults to 0.
    pub priority: Option<i32>,
    /// When it is due.
    pub due_date: Option<Date>,
}

/// Changes to a task: omitted fields stay as they are; null clears `description` and `dueDate`.
#[derive(InputObject)]
pub struct UpdateTaskInput {
    /// 1–500 characters.
    pub title: MaybeUndefined<String>,
    /// Free text; null clears it.
    pub description: MaybeUndefined<String>,
    /// New status.
    pub status: MaybeUndefined<TaskStatus>,
    /// 0–5.
    pub priority: MaybeUndefined<i32>,
    /// New due date; null clears it.
    pub due_date: MaybeUndefined<Date>,
}

/// Task queries.
#[derive(Default)]
pub struct TaskQuery;

#[Object]
impl TaskQuery {
    /// One task; with `asOf`, as it was at that instant (null if it did not exist then).
    async fn task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<Timestamp>,
    ) -> async_graphql::Result<Option<Task>> {
        super::find_one::<task::Entity>(ctx, &id, as_of)
            .await
            .map(|m| m.map(|m| Task(m, as_of.map(Timestamp::utc))))
    }

    /// Tasks, in creation order, optionally of one project and one status.
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        status: Option<TaskStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<Task>> {
        let project_id = project_id
            .map(|id| validate::uuid("projectId", &id))
            .transpose()
            .gql()?;
        list_tasks(ctx, project_id, status, first, after).await
    }
}

/// Task mutations.
#[derive(Default)]
pub struct TaskMutation;

#[Object]
impl TaskMutation {
    /// Creates a task in a project.
    async fn create_task(
        &self,
        ctx: &Context<'_>,
        input: CreateTaskInput,
        reason: Option<String>,
    ) -> async_graphql::Result<Task> {
        let input = svc::NewTask {
            project_id: validate::uuid("projectId", &input.project_id).gql()?,
            title: input.title,
            description: input.description,
            status: input.status.map(Into::into),
            priority: input.priority,
            due_date: input.due_date.map(|d| d.0),
        };
        super::mutation(ctx, reason, move |db, limits| {
            svc::create_task(db, limits, input)
        })
        .await
        .map(Task::now)
    }

    /// Changes a task; an update that changes no value writes no history.
    async fn update_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateTaskInput,
        reason: Option<String>,
    ) -> async_graphql::Result<Task> {
        let id = validate::uuid("id", &id).gql()?;
        let changes = svc::TaskChanges {
            title: required("title", input.title).gql()?,
            description: maybe(input.description),
            status: required("status", input.status).gql()?.map(Into::into),
            priority: required("priority", input.priority).gql()?,
            due_date: maybe(input.due_date).map(|d| d.map(|d| d.0)),
        };
        super::mutation(ctx, reason, move |db, limits| {
            svc::update_task(db, limits, id, changes)
        })
        .await
        .map(Task::now)
    }

    /// Deletes a task with its comments and label links, each historized.
    async fn delete_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> async_graphql::Result<ID> {
        let id = validate::uuid("id", &id).gql()?;
        super::mutation(ctx, reason, move |db, _| svc::delete_task(db, id))
            .await
            .map(|id| ID(id.to_string()))
    }

    /// Puts a label on a task (a TASK_LABEL record); a label already there changes nothing.
    async fn add_label(
        &self,
        ctx: &Context<'_>,
        task_id: ID,
        label_id: ID,
        reason: Option<String>,
    ) -> async_graphql::Result<Task> {
        let task_id = validate::uuid("taskId", &task_id).gql()?;
        let label_id = validate::uuid("labelId", &label_id).gql()?;
        super::mutation(ctx, reason, move |db, _| {
            svc::add_label(db, task_id, label_id)
        })
        .await
        .map(Task::now)
    }

    /// Takes a label off a task (a TASK_LABEL DELETE record); a label not there changes nothing.
    async fn remove_label(
        &self,
        ctx: &Context<'_>,
        task_id: ID,
        label_id: ID,
        reason: Option<String>,
    ) -> async_graphql::Result<Task> {
        let task_id = validate::uuid("taskId", &task_id).gql()?;
        let label_id = validate::uuid("labelId", &label_id).gql()?;
        super::mutation(ctx, reason, move |db, _| {
            svc::remove_label(db, task_id, label_id)
        })
        .await
        .map(Task::now)
    }
}
