//! Tasks: create, update, delete (with comments and label links), and label links.

use chrono::NaiveDate;
use entity::task::TaskStatus;
use entity::{label, project, task, task_label};
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QuerySelect, Set,
};
use sea_orm_history::{now, write};
use uuid::Uuid;

use super::{begin_change, commit, create_child, find_for_share, find_for_update, validate};
use crate::config::Limits;
use crate::error::{AppError, AppResult};

/// A new task.
#[derive(Clone, Debug)]
pub struct NewTask {
    /// The project it belongs to.
    pub project_id: Uuid,
    /// 1–500 characters.
    pub title: String,
    /// Free text.
    pub description: Option<String>,
    /// Defaults to TODO.
    pub status: Option<TaskStatus>,
    /// 0–5, defaults to 0.
    pub priority: Option<i32>,
    /// When it is due.
    pub due_date: Option<NaiveDate>,
}

/// Changes to a task; `None` leaves a value as it is, `Some(None)` clears a nullable one.
#[derive(Clone, Debug, Default)]
pub struct TaskChanges {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<Option<String>>,
    /// New status.
    pub status: Option<TaskStatus>,
    /// New priority.
    pub priority: Option<i32>,
    /// New due date.
    pub due_date: Option<Option<NaiveDate>>,
}

/// Creates a task in an existing project.
///
/// # Errors
/// `BAD_INPUT`, `NOT_FOUND` (the project); database errors.
#[tracing::instrument(skip(db, limits))]
pub async fn create_task(
    db: &DatabaseConnection,
    limits: &Limits,
    input: NewTask,
) -> AppResult<task::Model> {
    validate::text("title", &input.title, 1, 500)?;
    validate::optional_text(
        "description",
        input.description.as_deref(),
        limits.max_description_chars,
    )?;
    let priority = input.priority.unwrap_or(0);
    validate::priority(priority)?;
    let at = now();
    let task = task::ActiveModel {
        id: Set(Uuid::now_v7()),
        project_id: Set(input.project_id),
        title: Set(input.title),
        description: Set(input.description),
        status: Set(input.status.unwrap_or(TaskStatus::Todo)),
        priority: Set(priority),
        due_date: Set(input.due_date),
        created_at: Set(at),
        updated_at: Set(at),
    };
    // The project is locked (by the task's foreign key, or first), so that a concurrent
    // deleteProject cannot miss this task.
    create_child::<_, project::Entity>(db, task, input.project_id, "project").await
}

/// Updates a task. An update that changes no value writes nothing.
///
/// # Errors
/// `NOT_FOUND`, `BAD_INPUT`; database errors.
#[tracing::instrument(skip(db, limits))]
pub async fn update_task(
    db: &DatabaseConnection,
    limits: &Limits,
    id: Uuid,
    changes: TaskChanges,
) -> AppResult<task::Model> {
    if let Some(title) = &changes.title {
        validate::text("title", title, 1, 500)?;
    }
    if let Some(description) = &changes.description {
        validate::optional_text(
            "description",
            description.as_deref(),
            limits.max_description_chars,
        )?;
    }
    if let Some(priority) = changes.priority {
        validate::priority(priority)?;
    }
    let txn = begin_change(db).await?;
    let current = find_for_update::<task::Entity, _>(&txn, id, "task").await?;
    let mut next = current.clone();
    if let Some(title) = changes.title {
        next.title = title;
    }
    if let Some(description) = changes.description {
        next.description = description;
    }
    if let Some(status) = changes.status {
        next.status = status;
    }
    if let Some(priority) = changes.priority {
        next.priority = priority;
    }
    if let Some(due_date) = changes.due_date {
        next.due_date = due_date;
    }
    if next == current {
        return Ok(current);
    }
    next.updated_at = now();
    let model = write::update(&txn, next.into_active_model().reset_all()).await?;
    commit(txn).await?;
    Ok(model)
}

/// Deletes a task with its comments and label links (their keys cascade), each historized.
///
/// # Errors
/// `NOT_FOUND`; database errors.
#[tracing::instrument(skip(db))]
pub async fn delete_task(db: &DatabaseConnection, id: Uuid) -> AppResult<Uuid> {
    let txn = begin_change(db).await?;
    let task = find_for_update::<task::Entity, _>(&txn, id, "task").await?;
    write::delete(&txn, task.into_active_model()).await?;
    commit(txn).await?;
    Ok(id)
}

/// Links a label to a task; linking an already linked label changes nothing.
///
/// # Errors
/// `NOT_FOUND` (task or label); database errors.
#[tracing::instrument(skip(db))]
pub async fn add_label(
    db: &DatabaseConnection,
    task_id: Uuid,
    label_id: Uuid,
) -> AppResult<task::Model> {
    let txn = begin_change(db).await?;
    let task = find_for_update::<task::Entity, _>(&txn, task_id, "task").await?;
    find_for_share::<label::Entity, _>(&txn, label_id, "label").await?;
    let existing = task_label::Entity::find_by_id((task_id, label_id))
        .lock_exclusive()
        .one(&txn)
        .await?;
    if existing.is_some() {
        return Ok(task);
    }
    write::insert(
        &txn,
        task_label::ActiveModel {
            task_id: Set(task_id),
            label_id: Set(label_id),
        },
    )
    .await?;
    commit(txn).await?;
    Ok(task)
}

/// Unlinks a label from a task; unlinking a label that is not linked changes nothing.
///
/// # Errors
/// `NOT_FOUND` (task or label); database errors.
#[tracing::instrument(skip(db))]
pub async fn remove_label(
    db: &DatabaseConnection,
    task_id: Uuid,
    label_id: Uuid,
) -> AppResult<task::Model> {
    let txn = begin_change(db).await?;
    let task = find_for_update::<task::Entity, _>(&txn, task_id, "task").await?;
    if label::Entity::find_by_id(label_id)
        .one(&txn)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound("label".into()));
    }
    let existing = task_label::Entity::find_by_id((task_id, label_id))
        .lock_exclusive()
        .one(&txn)
        .await?;
    if let Some(link) = existing {
        write::delete(&txn, link.into_active_model()).await?;
        commit(txn).await?;
    }
    Ok(task)
}
