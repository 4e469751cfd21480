//! The work behind the resolvers: plain async functions over a database connection, callable from
//! tests and from code outside GraphQL. Every mutation runs in one transaction opened by
//! [`begin_change`]; the entity hooks write its history inside it.
//!
//! - [`project`], [`task`], [`label`], [`comment`]: create, update, delete (with cascades).
//! - [`validate`]: the input rules of the API.

pub mod comment;
pub mod label;
pub mod project;
pub mod task;
pub mod validate;

use entity::context::ChangeContext;
use entity::history::reserve_steps;
use sea_orm::sea_query::LockType;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QuerySelect,
    TransactionTrait,
};

use crate::error::{AppError, AppResult};

/// Opens the transaction of one mutation. Its first statement creates or locks the context's
/// assignation, so concurrent mutations of one assignation queue up here, before they lock any object,
/// and can neither deadlock each other nor share a step. An assignation the server generated for this
/// request ([`ChangeContext::exclusive`]) has no concurrent writers: the history writer locks it when
/// it reserves steps, one round trip fewer.
///
/// # Errors
/// `FORBIDDEN` when the assignation belongs to another user; database errors.
pub async fn begin_change(db: &DatabaseConnection) -> AppResult<DatabaseTransaction> {
    let txn = db.begin().await?;
    if let Some(ctx) = ChangeContext::current()
        && !ctx.exclusive
    {
        reserve_steps(&txn, &ctx, 0, 0).await?;
    }
    Ok(txn)
}

/// Loads the row `id` of `E` and locks it until the transaction ends (a no-op on SQLite, whose writers
/// are serialized anyway).
///
/// # Errors
/// `NOT_FOUND` (named `what`) when there is no such row; database errors.
pub async fn find_for_update<E, C>(db: &C, id: uuid::Uuid, what: &str) -> AppResult<E::Model>
where
    E: EntityTrait,
    E::PrimaryKey: sea_orm::PrimaryKeyTrait<ValueType = uuid::Uuid>,
    C: ConnectionTrait,
{
    find_locked::<E, C>(db, id, what, LockType::Update).await
}

/// Loads the row `id` of `E` and locks it against changes, but not against other sharers, until the
/// transaction ends: what creating a child needs of its parent (it must not be deleted meanwhile),
/// while children of one parent are created concurrently.
///
/// # Errors
/// `NOT_FOUND` (named `what`) when there is no such row; database errors.
pub async fn find_for_share<E, C>(db: &C, id: uuid::Uuid, what: &str) -> AppResult<E::Model>
where
    E: EntityTrait,
    E::PrimaryKey: sea_orm::PrimaryKeyTrait<ValueType = uuid::Uuid>,
    C: ConnectionTrait,
{
    find_locked::<E, C>(db, id, what, LockType::Share).await
}

async fn find_locked<E, C>(
    db: &C,
    id: uuid::Uuid,
    what: &str,
    lock: LockType,
) -> AppResult<E::Model>
where
    E: EntityTrait,
    E::PrimaryKey: sea_orm::PrimaryKeyTrait<ValueType = uuid::Uuid>,
    C: ConnectionTrait,
{
    E::find_by_id(id)
        .lock(lock)
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound(what.to_owned()))
}

/// Commits `txn`.
///
/// # Errors
/// Database errors.
pub async fn commit(txn: DatabaseTransaction) -> AppResult<()> {
    Ok(txn.commit().await?)
}

/// One page of `E`'s rows matching `condition`, in id order (UUIDv7: creation order), `first` of them
/// after the id `after`.
///
/// # Errors
/// Database errors.
pub async fn page_by_id<E, C>(
    db: &C,
    condition: sea_orm::Condition,
    id: E::Column,
    first: u64,
    after: Option<uuid::Uuid>,
) -> AppResult<crate::history::Page<E::Model>>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter, QueryOrder};
    let total = E::find().filter(condition.clone()).count(db).await?;
    let mut query = E::find().filter(condition);
    if let Some(after) = after {
        query = query.filter(id.gt(after));
    }
    let mut items = query.order_by_asc(id).limit(first + 1).all(db).await?;
    let has_next = items.len() as u64 > first;
    items.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    Ok(crate::history::Page {
        items,
        has_next,
        total,
    })
}

/// An object of `E` as it was at `at`, rebuilt from its history.
///
/// # Errors
/// `INTERNAL` when a snapshot does not fit the model; database errors.
pub async fn as_of<E, C>(
    db: &C,
    object_id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<Option<E::Model>>
where
    E: entity::history::Historized,
    E::Model: serde::Serialize + serde::de::DeserializeOwned,
    C: ConnectionTrait,
{
    let Some(snapshot) = crate::history::as_of(db, E::ENTITY, object_id, at).await? else {
        return Ok(None);
    };
    serde_json::from_value(snapshot)
        .map(Some)
        .map_err(|e| AppError::internal(format!("snapshot of {object_id}: {e}")))
}
