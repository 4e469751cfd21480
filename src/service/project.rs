//! Projects: create, update, and delete with everything under them.

use entity::project;
use sea_orm::{ActiveModelTrait, DatabaseConnection, IntoActiveModel, Set};
use sea_orm_history::{now, write};
use uuid::Uuid;

use super::{begin_change, commit, find_for_update, validate};
use crate::config::Limits;
use crate::error::AppResult;

/// A new project.
#[derive(Clone, Debug, Default)]
pub struct NewProject {
    /// 1–200 characters.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
}

/// Changes to a project; `None` leaves a value as it is.
#[derive(Clone, Debug, Default)]
pub struct ProjectChanges {
    /// New name.
    pub name: Option<String>,
    /// New description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// Archive or unarchive.
    pub archived: Option<bool>,
}

/// Creates a project.
///
/// # Errors
/// `BAD_INPUT` for invalid input; database errors.
#[tracing::instrument(skip(db, limits))]
pub async fn create_project(
    db: &DatabaseConnection,
    limits: &Limits,
    input: NewProject,
) -> AppResult<project::Model> {
    validate::text("name", &input.name, 1, 200)?;
    validate::optional_text(
        "description",
        input.description.as_deref(),
        limits.max_description_chars,
    )?;
    let at = now();
    let project = project::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(input.name),
        description: Set(input.description),
        archived: Set(false),
        created_at: Set(at),
        updated_at: Set(at),
    };
    if write::one_statement_insert(db, &project) {
        // PostgreSQL: one statement, its own transaction (see `super`).
        return Ok(write::insert(db, project).await?);
    }
    let txn = begin_change(db).await?;
    let model = write::insert(&txn, project).await?;
    commit(txn).await?;
    Ok(model)
}

/// Updates a project. An update that changes no value writes nothing.
///
/// # Errors
/// `NOT_FOUND`, `BAD_INPUT`; database errors.
#[tracing::instrument(skip(db, limits))]
pub async fn update_project(
    db: &DatabaseConnection,
    limits: &Limits,
    id: Uuid,
    changes: ProjectChanges,
) -> AppResult<project::Model> {
    if let Some(name) = &changes.name {
        validate::text("name", name, 1, 200)?;
    }
    if let Some(description) = &changes.description {
        validate::optional_text(
            "description",
            description.as_deref(),
            limits.max_description_chars,
        )?;
    }
    let txn = begin_change(db).await?;
    let current = find_for_update::<project::Entity, _>(&txn, id, "project").await?;
    let mut next = current.clone();
    if let Some(name) = changes.name {
        next.name = name;
    }
    if let Some(description) = changes.description {
        next.description = description;
    }
    if let Some(archived) = changes.archived {
        next.archived = archived;
    }
    if next == current {
        return Ok(current);
    }
    next.updated_at = now();
    let model = write::update(&txn, next.into_active_model().reset_all()).await?;
    commit(txn).await?;
    Ok(model)
}

/// Deletes a project with its tasks, their comments and label links (their keys cascade), each as its
/// own history record, children first, so that a revert re-inserts parents first.
///
/// # Errors
/// `NOT_FOUND`; database errors.
#[tracing::instrument(skip(db))]
pub async fn delete_project(db: &DatabaseConnection, id: Uuid) -> AppResult<Uuid> {
    let txn = begin_change(db).await?;
    let project = find_for_update::<project::Entity, _>(&txn, id, "project").await?;
    write::delete(&txn, project.into_active_model()).await?;
    commit(txn).await?;
    Ok(id)
}
