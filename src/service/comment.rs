//! Comments: create, update, delete.

use entity::{comment, task};
use sea_orm::{DatabaseConnection, IntoActiveModel, Set};
use sea_orm_history::{now, write};
use uuid::Uuid;

use super::{begin_change, commit, create_child, find_for_update, validate};
use crate::error::AppResult;

/// The longest comment body, in characters.
pub const MAX_BODY_CHARS: usize = 10_000;

/// Creates a comment on an existing task.
///
/// # Errors
/// `BAD_INPUT`, `NOT_FOUND` (the task); database errors.
#[tracing::instrument(skip(db, body))]
pub async fn create_comment(
    db: &DatabaseConnection,
    task_id: Uuid,
    body: String,
) -> AppResult<comment::Model> {
    validate::text("body", &body, 1, MAX_BODY_CHARS)?;
    let at = now();
    let comment = comment::ActiveModel {
        id: Set(Uuid::now_v7()),
        task_id: Set(task_id),
        body: Set(body),
        created_at: Set(at),
        updated_at: Set(at),
    };
    create_child::<_, task::Entity>(db, comment, task_id, "task").await
}

/// Changes a comment's body. The same body writes nothing.
///
/// # Errors
/// `NOT_FOUND`, `BAD_INPUT`; database errors.
#[tracing::instrument(skip(db, body))]
pub async fn update_comment(
    db: &DatabaseConnection,
    id: Uuid,
    body: Option<String>,
) -> AppResult<comment::Model> {
    if let Some(body) = &body {
        validate::text("body", body, 1, MAX_BODY_CHARS)?;
    }
    let txn = begin_change(db).await?;
    let current = find_for_update::<comment::Entity, _>(&txn, id, "comment").await?;
    let Some(body) = body.filter(|b| *b != current.body) else {
        return Ok(current);
    };
    let mut active = current.into_active_model();
    active.body = Set(body);
    active.updated_at = Set(now());
    let model = write::update(&txn, active).await?;
    commit(txn).await?;
    Ok(model)
}

/// Deletes a comment.
///
/// # Errors
/// `NOT_FOUND`; database errors.
#[tracing::instrument(skip(db))]
pub async fn delete_comment(db: &DatabaseConnection, id: Uuid) -> AppResult<Uuid> {
    let txn = begin_change(db).await?;
    let current = find_for_update::<comment::Entity, _>(&txn, id, "comment").await?;
    write::delete(&txn, current.into_active_model()).await?;
    commit(txn).await?;
    Ok(id)
}
