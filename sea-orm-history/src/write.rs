//! A row and its history record in one round trip: [`insert`] and [`update`] do what
//! `ActiveModelTrait::insert` and `ActiveModelTrait::update` do, the entity's hooks included, but on
//! PostgreSQL the row's own `INSERT` or `UPDATE` and the history write go to the database as one
//! statement (the row's statement is the first CTE of the writer's), a round trip less per change
//! than the `after_save` hook takes. On SQLite the row's statement, the assignation's reservation and
//! the record go as one batch (one hop to the connection's worker thread; SQLite has no
//! data-modifying CTE) when the connection has the library's SHA-256 function (feature `sqlite`,
//! `sqlite::install`), which chains the record in SQL; without it the record follows the row and its
//! reservation in a hop of its own. Either way a hop less than the hook takes.
//! The hook, when it runs for a row written here, writes nothing.
//!
//! [`delete`] does what `ActiveModelTrait::delete` does, given the row as its caller read and locked
//! it: the hook does not read it again, the `DELETE` takes it on the condition that no row points at
//! it (the rows that do are dealt with as the hook does only when it takes nothing), and its
//! `DELETE … RETURNING` goes with the history write as the others' statements do.
//!
//! Everything else is as the hooks do it: the record in the change's transaction, its version, step
//! and hash computed in the statement, an update that changes nothing recorded as nothing.
//!
//! **Lock the row before [`update`]**, in the same transaction (`lock_exclusive()`, as a read that
//! builds the update usually is): the hook's history statement starts after the row's `UPDATE`
//! has waited for a concurrent writer of the row, and so sees that writer's record, whereas one
//! statement reads the history as it was when it started. Without the lock, the second of two
//! concurrent updates of one row fails on the history's unique `(object, version)` index instead of
//! waiting (and one that found nothing changed checks again, with a statement of its own, against the
//! history as it is by then).
//!
//! Run it in the change's transaction, as every historized change: the check that the stored row
//! equals the values sent comes after the statement, and its error is undone by the rollback. The
//! one exception is an [`insert`] that [`one_statement_insert`] allows: on PostgreSQL, in an
//! assignation of its own, it is one statement, atomic without a transaction around it, and run on
//! the pool it saves the `BEGIN` and the `COMMIT` (a round trip).
//!
//! On MySQL/MariaDB (no `RETURNING`), and whenever the record cannot be known before the write (a
//! column left to its database default; an update that sets no column), they are plain
//! `ActiveModelTrait::insert`/`update`, whose hooks record the change.
//!
//! The record holds the values sent, and the row the database returns must equal them. It does for
//! the types sea-orm maps exactly (timestamps at microseconds, as [`crate::now`] gives them); a
//! trigger that rewrites the row, or a column type that changes a value on the way in (text padded
//! by `CHAR(n)`, a decimal rounded to its scale), makes the write fail with
//! [`HistoryError::Malformed`] instead of recording values the row does not hold: write such an
//! entity with `ActiveModelTrait::insert`/`update`.

use sea_orm::sea_query::{Condition, Query, ReturningClause};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr,
    EntityTrait, FromQueryResult, IntoActiveModel, Iterable, QueryTrait,
};

use crate::capture::{PendingChange, Pointers};
use crate::context::ChangeContext;
use crate::entity::Historized;
use crate::error::HistoryError;
use crate::record::HistoryKind;

type Model<A> = <<A as ActiveModelTrait>::Entity as EntityTrait>::Model;

/// Inserts `active` and records its CREATE: `ActiveModelTrait::insert`, a round trip less on
/// PostgreSQL and SQLite when every column is set (see the module docs).
///
/// # Errors
/// As `ActiveModelTrait::insert` with the history hooks: database errors, and the history's errors
/// carried as a [`DbErr`] (see [`HistoryError::into_db_err`]).
pub async fn insert<A, C>(db: &C, active: A) -> Result<Model<A>, DbErr>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    A::Entity: Historized,
    Model<A>: IntoActiveModel<A>,
    C: ConnectionTrait,
{
    if !fused(db) {
        return active.insert(db).await;
    }
    let active = active.before_save(db, true).await?;
    if !every_column_set(&active) {
        // A column left to its default: the rest of `ActiveModelTrait::insert`, whose hook records.
        let model = <A::Entity as EntityTrait>::insert(active)
            .exec_with_returning(db)
            .await?;
        return A::after_save(model, db, true).await;
    }
    let mut query = <A::Entity as EntityTrait>::insert(active.clone()).into_query();
    query.returning(returning::<A>(db.get_database_backend()));
    let statement = db.get_database_backend().build(&query);
    written::<A, C>(db, &active, HistoryKind::Create, statement)
        .await?
        .ok_or_else(|| HistoryError::Malformed("the INSERT returned no row".into()).into_db_err())
}

/// Whether [`insert`] of `active` is one statement that needs no transaction around it: on
/// PostgreSQL, every column of `active` set (the row's `INSERT`, the reservation and the record are
/// then one data-modifying statement, atomic on its own), and the running context's assignation its
/// own ([`ChangeContext::generated`]: no other transaction reserves steps in it, so nothing needs
/// locking before the statement). Run [`insert`] on the pool then, not in a transaction: the statement
/// commits alone, a round trip less than `BEGIN` … `COMMIT` (its `COMMIT` is the statement's own).
///
/// It is the caller who knows the rest of what makes that safe, and should only then do it: the
/// entity's `before_save` and `after_save` write nothing of their own (as the hooks of
/// [`historized!`](crate::historized) do), and its columns store the values sent (the check that they
/// did comes after the statement, too late to undo it).
pub fn one_statement_insert<A, C>(db: &C, active: &A) -> bool
where
    A: ActiveModelTrait,
    C: ConnectionTrait,
{
    db.get_database_backend() == DbBackend::Postgres
        && ChangeContext::current().is_some_and(|ctx| ctx.exclusive)
        && every_column_set(active)
}

/// Updates the row `active` stands for and records the UPDATE: `ActiveModelTrait::update`, a round
/// trip less on PostgreSQL and SQLite when every column is known (set or unchanged) and one is set
/// (see the module docs). Lock the row first, in the same transaction (see the module docs).
///
/// # Errors
/// `DbErr::RecordNotUpdated` when no row has `active`'s key; as `ActiveModelTrait::update` with the
/// history hooks.
pub async fn update<A, C>(db: &C, active: A) -> Result<Model<A>, DbErr>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    A::Entity: Historized,
    Model<A>: IntoActiveModel<A>,
    C: ConnectionTrait,
{
    if !fused(db) {
        return active.update(db).await;
    }
    let active = active.before_save(db, false).await?;
    let mut query = <A::Entity as EntityTrait>::update(active.clone())
        .validate()?
        .into_query();
    if query.get_values().is_empty() || !every_column_set(&active) {
        // Nothing to set (sea-orm reads the row instead), or a column's value unknown: the rest of
        // `ActiveModelTrait::update`, whose hook records.
        return A::after_save(
            <A::Entity as EntityTrait>::update(active).exec(db).await?,
            db,
            false,
        )
        .await;
    }
    query.returning(returning::<A>(db.get_database_backend()));
    let statement = db.get_database_backend().build(&query);
    written::<A, C>(db, &active, HistoryKind::Update, statement)
        .await?
        .ok_or(DbErr::RecordNotUpdated)
}

/// Deletes the row `active` stands for and records the DELETE, and returns how many rows it deleted
/// (0 when there was no such row, and then it records nothing): `ActiveModelTrait::delete`, with
/// fewer round trips when every column of `active` holds a value, as a model read under lock gives it
/// (`Entity::find_by_id(..).lock_exclusive()`, in the same transaction). The hook then takes the row
/// from `active` instead of reading and locking it again; the `DELETE` is first sent on the condition
/// that no row of a dependent entity points at it (`NOT EXISTS` per key), so a row with nothing to
/// cascade costs no statement for its dependents, and when it takes nothing they are dealt with as the
/// hook does and the `DELETE` is sent again; on PostgreSQL the row's `DELETE` and its record are one
/// statement, on SQLite the `DELETE` goes with the reservation (see the module docs). A key from the entity's own table is dealt with first (MySQL
/// refuses a `DELETE` whose subquery reads its own table).
///
/// **Lock the row first**, and run at READ COMMITTED (the default on PostgreSQL; see
/// [`crate::capture`] for MySQL), as every historized change: its record holds `active`'s values. On PostgreSQL and SQLite a row whose
/// stored values differ from them (read without a lock, and changed since) fails the delete with
/// [`HistoryError::Malformed`]; on MySQL the record would hold the stale values. An `active` that
/// lacks a column's value is plain `ActiveModelTrait::delete`, whose hook reads the row.
///
/// # Errors
/// As `ActiveModelTrait::delete` with the history hooks: database errors, rows in the way of a
/// `RESTRICT` key, and the history's errors carried as a [`DbErr`].
pub async fn delete<A, C>(db: &C, active: A) -> Result<u64, DbErr>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    A::Entity: Historized,
    Model<A>: IntoActiveModel<A>,
    C: ConnectionTrait,
{
    if !every_column_set(&active) {
        return Ok(active.delete(db).await?.rows_affected);
    }
    let (ctx, info, object_id, snapshot) = (|| {
        let ctx = ChangeContext::require()?;
        let info = ctx.registry().of::<A::Entity>()?;
        let snapshot = info.snapshot_of_active(&active)?.ok_or_else(|| {
            HistoryError::Malformed(format!("{}: a column has no value to record", info.name))
        })?;
        let object_id = info.object_id(&snapshot);
        Ok((ctx, info, object_id, snapshot))
    })()
    .map_err(HistoryError::into_db_err)?;
    // The hook takes the row from here; taken back if it did not (the hook failed, or is not ours).
    ctx.give(info, &object_id, Some(snapshot));
    let active = A::before_delete(active, db).await;
    ctx.give(info, &object_id, None);
    let active = active?;
    let Some(snapshot) = ctx.deleted(info, &object_id) else {
        // The hook kept nothing (it is not sea-orm-history's): the rest of ActiveModelTrait::delete.
        let result = <A::Entity as EntityTrait>::delete(active.clone())
            .exec(db)
            .await?;
        A::after_delete(active, db).await?;
        return Ok(result.rows_affected);
    };
    // The rows pointing at it: first the DELETE is tried on the condition that there are none (the
    // usual case, then no statement of their own); when it takes nothing, they are dealt with as the
    // hook does, and the DELETE is sent again without the condition.
    let registry = ctx.registry();
    let clear_dependents = async || {
        crate::capture::clear_dependents(db, registry, info, std::slice::from_ref(&snapshot))
            .await
            .map_err(HistoryError::into_db_err)
    };
    let guard = match crate::capture::pointers(registry, info, &snapshot) {
        Pointers::None => None,
        Pointers::Unless(condition) => Some(condition),
        Pointers::First => {
            clear_dependents().await?;
            None
        }
    };
    let mut deleted = delete_row(db, &ctx, info, &active, &snapshot, guard.clone()).await?;
    if deleted == 0 && guard.is_some() {
        // Rows point at it (or it is not there, and then none do, and nothing is deleted again).
        clear_dependents().await?;
        deleted = delete_row(db, &ctx, info, &active, &snapshot, None).await?;
    }
    if deleted > 0 && !fused(db) {
        // after_delete records it.
        ctx.deleting(info, vec![snapshot]);
    }
    A::after_delete(active, db).await?;
    Ok(deleted)
}

/// Deletes the row `active` stands for (whose values, as locked, `snapshot` holds) when `guard`
/// holds, and how many rows it deleted. On PostgreSQL and SQLite its record is written with it (see
/// the module docs); on MySQL `after_delete` writes it.
async fn delete_row<A, C>(
    db: &C,
    ctx: &ChangeContext,
    info: &crate::entity::EntityInfo,
    active: &A,
    snapshot: &serde_json::Value,
    guard: Option<Condition>,
) -> Result<u64, DbErr>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    A::Entity: Historized,
    Model<A>: IntoActiveModel<A>,
    C: ConnectionTrait,
{
    let mut query = <A::Entity as EntityTrait>::delete(active.clone())
        .validate()?
        .into_query();
    if let Some(guard) = guard {
        query.cond_where(guard);
    }
    if !fused(db) {
        return Ok(db.execute(&query).await?.rows_affected());
    }
    query.returning(returning::<A>(db.get_database_backend()));
    let statement = db.get_database_backend().build(&query);
    let change = PendingChange {
        object_id: info.object_id(snapshot),
        kind: HistoryKind::Delete,
        snapshot: snapshot.clone(),
    };
    async {
        let Some((row, _)) =
            crate::writer::write_with_record(db, ctx, info, change, statement).await?
        else {
            return Ok(0);
        };
        if as_sent::<A>(info, &row, snapshot)?.is_none() {
            return Err(HistoryError::Malformed(format!(
                "{}: the row deleted differs from the values its delete was given (read without a \
                 lock, and changed since), so its record would not hold it: lock the row before \
                 write::delete",
                info.name
            )));
        }
        Ok(1)
    }
    .await
    .map_err(HistoryError::into_db_err)
}

/// The model `row` (a row the database returned) reads as, or `None` when it does not hold the
/// values `sent`, which its record holds.
fn as_sent<A: ActiveModelTrait>(
    info: &crate::entity::EntityInfo,
    row: &sea_orm::QueryResult,
    sent: &serde_json::Value,
) -> Result<Option<Model<A>>, HistoryError> {
    let model = Model::<A>::from_query_result(row, "")?;
    Ok((&info.snapshot_of(&model)? == sent).then_some(model))
}

/// Whether `db` writes a row with its history in one round trip (see the module docs): PostgreSQL
/// and SQLite.
fn fused<C: ConnectionTrait>(db: &C) -> bool {
    matches!(
        db.get_database_backend(),
        DbBackend::Postgres | DbBackend::Sqlite
    )
}

/// Whether every column of `active` holds a value (set or unchanged).
fn every_column_set<A: ActiveModelTrait>(active: &A) -> bool {
    <A::Entity as EntityTrait>::Column::iter()
        .all(|c| active.get(c).is_set() || active.get(c).is_unchanged())
}

/// `RETURNING` every column, as sea-orm reads a written row back.
fn returning<A: ActiveModelTrait>(backend: DbBackend) -> ReturningClause {
    Query::returning().exprs(
        <A::Entity as EntityTrait>::Column::iter()
            .map(|c| c.select_as(c.into_returning_expr(backend))),
    )
}

/// Runs `statement` (the row's write of `active`) with the record of `kind`, then the entity's
/// `after_save` hook, whose history write stands down for this row. `None` when the statement
/// matched no row.
async fn written<A, C>(
    db: &C,
    active: &A,
    kind: HistoryKind,
    statement: sea_orm::Statement,
) -> Result<Option<Model<A>>, DbErr>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    A::Entity: Historized,
    Model<A>: IntoActiveModel<A>,
    C: ConnectionTrait,
{
    let recorded = async {
        let ctx = ChangeContext::require()?;
        let info = ctx.registry().of::<A::Entity>()?;
        let snapshot = info.snapshot_of_active(active)?.ok_or_else(|| {
            HistoryError::Malformed(format!("{}: a column has no value to record", info.name))
        })?;
        let object_id = info.object_id(&snapshot);
        let change = PendingChange {
            object_id: object_id.clone(),
            kind,
            snapshot: snapshot.clone(),
        };
        let Some((row, recorded)) =
            crate::writer::write_with_record(db, &ctx, info, change.clone(), statement).await?
        else {
            return Ok(None);
        };
        if kind == HistoryKind::Update
            && !recorded
            && db.get_database_backend() == DbBackend::Postgres
        {
            // No change as the statement saw the history, which is as of its start: a writer that
            // committed since (the row was not locked first) may have recorded other values, which
            // this update has just overwritten. Checked again on the history as it is now. (SQLite's
            // writers are serialized, and its reservation reads the history after the row's write.)
            crate::writer::record_one(db, info, change).await?;
        }
        let Some(model) = as_sent::<A>(info, &row, &snapshot)? else {
            return Err(HistoryError::Malformed(format!(
                "{}: the row as the database stored it differs from the values sent (a trigger, \
                 or a column type that changes values), so its record would not hold it; write it \
                 with ActiveModelTrait::{}",
                info.name,
                if kind == HistoryKind::Create {
                    "insert"
                } else {
                    "update"
                }
            )));
        };
        Ok(Some((ctx, info, object_id, model)))
    }
    .await
    .map_err(HistoryError::into_db_err)?;
    let Some((ctx, info, object_id, model)) = recorded else {
        return Ok(None);
    };
    // The hook's history write stands down for this row, once; unmarked however after_save ends.
    ctx.written_with_row(info, &object_id, true);
    let _unmark = Unmark {
        ctx: &ctx,
        info,
        object_id: &object_id,
    };
    A::after_save(model, db, kind == HistoryKind::Create)
        .await
        .map(Some)
}

/// Takes the mark of [`written`] off its row when dropped: after `after_save`, or when it fails,
/// panics or is cancelled.
struct Unmark<'a> {
    ctx: &'a ChangeContext,
    info: &'a crate::entity::EntityInfo,
    object_id: &'a str,
}

impl Drop for Unmark<'_> {
    fn drop(&mut self) {
        self.ctx.written_with_row(self.info, self.object_id, false);
    }
}
