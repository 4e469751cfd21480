//! Labels: create, update (names stay unique), delete (with their task links).

use entity::label;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, Set,
};
use sea_orm_history::write;
use uuid::Uuid;

use super::{begin_change, commit, find_for_update, validate};
use crate::error::{AppError, AppResult};

/// A new label.
#[derive(Clone, Debug)]
pub struct NewLabel {
    /// Unique, 1–50 characters.
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
}

/// Changes to a label; `None` leaves a value as it is.
#[derive(Clone, Debug, Default)]
pub struct LabelChanges {
    /// New name.
    pub name: Option<String>,
    /// New colour.
    pub color: Option<String>,
}

async fn ensure_name_free<C: ConnectionTrait>(
    db: &C,
    name: &str,
    except: Option<Uuid>,
) -> AppResult<()> {
    let mut query = label::Entity::find().filter(label::Column::Name.eq(name));
    if let Some(id) = except {
        query = query.filter(label::Column::Id.ne(id));
    }
    if query.one(db).await?.is_some() {
        return Err(AppError::BadInput(format!(
            "a label named {name:?} already exists"
        )));
    }
    Ok(())
}

/// Creates a label.
///
/// # Errors
/// `BAD_INPUT` (invalid or taken name, bad colour); database errors.
#[tracing::instrument(skip(db))]
pub async fn create_label(db: &DatabaseConnection, input: NewLabel) -> AppResult<label::Model> {
    validate::text("name", &input.name, 1, 50)?;
    validate::color(&input.color)?;
    let txn = begin_change(db).await?;
    ensure_name_free(&txn, &input.name, None).await?;
    let model = write::insert(
        &txn,
        label::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(input.name),
            color: Set(input.color),
        },
    )
    .await?;
    commit(txn).await?;
    Ok(model)
}

/// Updates a label. An update that changes no value writes nothing.
///
/// # Errors
/// `NOT_FOUND`, `BAD_INPUT`; database errors.
#[tracing::instrument(skip(db))]
pub async fn update_label(
    db: &DatabaseConnection,
    id: Uuid,
    changes: LabelChanges,
) -> AppResult<label::Model> {
    if let Some(name) = &changes.name {
        validate::text("name", name, 1, 50)?;
    }
    if let Some(color) = &changes.color {
        validate::color(color)?;
    }
    let txn = begin_change(db).await?;
    let current = find_for_update::<label::Entity, _>(&txn, id, "label").await?;
    let mut next = current.clone();
    if let Some(name) = changes.name {
        ensure_name_free(&txn, &name, Some(id)).await?;
        next.name = name;
    }
    if let Some(color) = changes.color {
        next.color = color;
    }
    if next == current {
        return Ok(current);
    }
    let model = write::update(&txn, next.into_active_model().reset_all()).await?;
    commit(txn).await?;
    Ok(model)
}

/// Deletes a label and its task links (their key cascades), each historized.
///
/// # Errors
/// `NOT_FOUND`; database errors.
#[tracing::instrument(skip(db))]
pub async fn delete_label(db: &DatabaseConnection, id: Uuid) -> AppResult<Uuid> {
    let txn = begin_change(db).await?;
    let label = find_for_update::<label::Entity, _>(&txn, id, "label").await?;
    write::delete(&txn, label.into_active_model()).await?;
    commit(txn).await?;
    Ok(id)
}
