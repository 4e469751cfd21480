//! The work behind the resolvers: plain async functions over a database connection, callable from
//! tests and from code outside GraphQL. Every mutation runs in one transaction opened by
//! [`begin_change`]; the entity hooks write its history inside it. A create on PostgreSQL in the
//! request's own assignation (none named, so one generated for it) is one statement, which is its own
//! transaction: the row, the assignation and the chained record together
//! (`sea_orm_history::write::one_statement_insert`), without a `BEGIN` and a `COMMIT` of its own, a
//! round trip less. The server's entities allow it: their hooks are `historized!`'s, which write
//! nothing of their own beside that statement, and their columns store the values sent.
//!
//! - [`project`], [`task`], [`label`], [`comment`]: create, update, delete (with cascades).
//! - [`validate`]: the input rules of the API.

pub mod comment;
pub mod label;
pub mod project;
pub mod task;
pub mod validate;

use sea_orm::sea_query::LockType;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QuerySelect};
use sea_orm_history::query::Page;

use crate::error::{AppError, AppResult};

/// Opens the transaction of one mutation (see [`sea_orm_history::begin`]): its first statement creates
/// or locks the request's assignation, so concurrent mutations of one assignation queue up there,
/// before they lock any object.
///
/// # Errors
/// `FORBIDDEN` when the assignation belongs to another user; database errors.
pub async fn begin_change(db: &DatabaseConnection) -> AppResult<DatabaseTransaction> {
    Ok(sea_orm_history::begin(db).await?)
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
    // `all`, not `one`: a key matches one row at most, and `one`'s `LIMIT ?` makes SQLite prepare
    // the statement again every time it runs (it plans with the bound limit).
    E::find_by_id(id)
        .lock(lock)
        .all(db)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| AppError::NotFound(what.to_owned()))
}

/// Locks the parent `id` of `E` that a child is about to be written under, where the child's own
/// foreign key cannot do it safely: on MySQL/MariaDB, a share lock read (`NOT_FOUND`, named `what`,
/// when there is no such row); elsewhere nothing, and no round trip.
///
/// On PostgreSQL the child's foreign key checks the parent at the end of the child's statement and
/// locks it (`FOR KEY SHARE`) until the transaction ends, which is what a delete of the parent,
/// locking it `FOR UPDATE` first, waits for; SQLite serializes writers. A missing parent is then
/// the write's foreign key violation, which [`parent_missing`] reports. InnoDB, though, inserts the
/// child's record before it waits for the parent's lock, and the delete, holding that lock, then
/// waits for the child's record as it looks for children: a deadlock (seen in
/// `SHOW ENGINE INNODB STATUS`), which the lock read taken first avoids.
///
/// # Errors
/// `NOT_FOUND` (MySQL/MariaDB); database errors.
pub async fn lock_parent<E>(txn: &DatabaseTransaction, id: uuid::Uuid, what: &str) -> AppResult<()>
where
    E: EntityTrait,
    E::PrimaryKey: sea_orm::PrimaryKeyTrait<ValueType = uuid::Uuid>,
{
    if txn.get_database_backend() == sea_orm::DbBackend::MySql {
        find_for_share::<E, _>(txn, id, what).await?;
    }
    Ok(())
}

/// The error of writing a child under a parent that `what` names (see [`lock_parent`]): `NOT_FOUND`
/// when the child's foreign key found no parent, else the error as it is.
pub(crate) fn parent_missing(what: &str) -> impl FnOnce(sea_orm::DbErr) -> AppError + '_ {
    move |err| match err.sql_err() {
        Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => {
            AppError::NotFound(what.to_owned())
        }
        _ => err.into(),
    }
}

/// Inserts `row`, a child of the `P` row `parent` (which `what` names), with its history: alone on
/// PostgreSQL when the library allows it (`write::one_statement_insert`: one statement, its own
/// transaction, the child's foreign key locking the parent against a concurrent delete), else in a
/// change's transaction that locks the parent first where the database needs it ([`lock_parent`]).
///
/// # Errors
/// `NOT_FOUND` (named `what`) when there is no such parent; database errors.
pub(crate) async fn create_child<A, P>(
    db: &DatabaseConnection,
    row: A,
    parent: uuid::Uuid,
    what: &str,
) -> AppResult<<A::Entity as EntityTrait>::Model>
where
    A: sea_orm::ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
    A::Entity: sea_orm_history::Historized,
    <A::Entity as EntityTrait>::Model: sea_orm::IntoActiveModel<A>,
    P: EntityTrait,
    P::PrimaryKey: sea_orm::PrimaryKeyTrait<ValueType = uuid::Uuid>,
{
    use sea_orm_history::write;
    if write::one_statement_insert(db, &row) {
        return write::insert(db, row).await.map_err(parent_missing(what));
    }
    let txn = begin_change(db).await?;
    lock_parent::<P>(&txn, parent, what).await?;
    let model = write::insert(&txn, row)
        .await
        .map_err(parent_missing(what))?;
    commit(txn).await?;
    Ok(model)
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
) -> AppResult<Page<E::Model>>
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
    let probe = query.order_by_asc(id).limit(first + 1).all(db).await?;
    Ok(Page::from_probe(probe, first, total))
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
    E: sea_orm::EntityTrait,
    E::ActiveModel: sea_orm::TryIntoModel<E::Model>,
    C: ConnectionTrait,
{
    use sea_orm_history::EntitySet;
    let registry = entity::HistoryEntity::registry()?;
    Ok(sea_orm_history::query::model_as_of::<E, C>(db, registry, object_id, at).await?)
}
