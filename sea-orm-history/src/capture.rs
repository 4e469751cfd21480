//! Capture: the one writer of history rows (`record_changes`), the `ActiveModelBehavior` hooks that
//! call it ([`after_save`], [`before_delete`]), the bulk helpers that do what sea-orm's
//! `insert_many`/`update_many`/`delete_many` do but with history, and [`begin`], the way to open a
//! change's transaction.
//!
//! Everything runs on the connection the change itself uses — its transaction — so a change that rolls
//! back leaves no history, and history never lacks a committed change. Deleting a row first deals with
//! the rows whose foreign keys point at it, as the key's `ON DELETE` says and as the database would,
//! but with history: `CASCADE` rows are deleted (their own dependents first), `SET NULL` rows are
//! updated; `RESTRICT` rows are left for the database to refuse the delete.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, FromQueryResult, Iterable, ModelTrait,
    PrimaryKeyToColumn, Statement, TransactionTrait, Value,
};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::context::ChangeContext;
use crate::entity::{EntityInfo, ForeignKey, Historized, OnDelete, ScopeRule};
use crate::error::{HistoryError, HistoryResult};
use crate::record::{HISTORY_COLUMNS, HistoryKind, HistoryRow, chain_hash, content_hash, now};
use crate::registry::Registry;
use crate::rows;
use crate::snapshot;
use crate::writer::{latest_scope, quote};

/// Rows written by one multi-row `INSERT` of history: small enough for every backend's bind limit.
const INSERT_CHUNK: usize = 500;

/// A change about to be recorded.
#[derive(Clone, Debug)]
pub(crate) struct PendingChange {
    /// The object's id.
    pub object_id: String,
    /// What happened.
    pub kind: HistoryKind,
    /// The row after the change (before it, for a DELETE).
    pub snapshot: Json,
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

fn query_err(e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Malformed(format!("building a history statement: {e}"))
}

/// Opens the transaction of a change. Unless the context's assignation is exclusive (generated for
/// this scope), its first statement creates or locks the assignation, so concurrent transactions of
/// one assignation queue up there, before they lock any object, and can neither deadlock each other
/// nor share a step.
///
/// # Errors
/// [`HistoryError::ForeignAssignation`] when the assignation belongs to another user;
/// [`HistoryError::NoContext`] outside a scope; database errors.
pub async fn begin(db: &DatabaseConnection) -> HistoryResult<DatabaseTransaction> {
    let ctx = ChangeContext::require()?;
    let txn = begin_write(db).await?;
    if !ctx.exclusive {
        reserve_steps(&txn, &ctx, 0).await?;
    }
    Ok(txn)
}

/// Opens a transaction that will write. On SQLite it begins `IMMEDIATE`, taking the write lock up
/// front: a deferred transaction that read first and then writes fails at once with `database is
/// locked` when another process (a server, a script, the CLI) committed in between, whereas one that
/// asks for the lock first waits for it (the connection's busy timeout). Elsewhere a plain `BEGIN`.
///
/// # Errors
/// Database errors (on SQLite: the lock not granted within the busy timeout).
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, sea_orm::DbErr> {
    if db.get_database_backend() == DbBackend::Sqlite {
        db.begin_with_options(sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..sea_orm::TransactionOptions::default()
        })
        .await
    } else {
        db.begin().await
    }
}

/// The columns of a new assignation row, in the order the writers give their values.
pub(crate) const ASSIGNATION_COLUMNS: [&str; 10] = [
    "id",
    "actor",
    "app",
    "started_at",
    "change_count",
    "parent_id",
    "root_id",
    "on_behalf_of",
    "args_hash",
    "args_hash_alg",
];

/// What a reservation reads back from the assignation row.
const RESERVED: [&str; 5] = [
    "actor",
    "on_behalf_of",
    "parent_id",
    "change_count",
    "reverted_by",
];

/// Makes the context's assignation exist, checks it belongs to the context's user, adds `steps` to
/// its change count, and returns the first of the steps it reserved.
///
/// The statement also takes the assignation row's lock for the rest of the transaction, so concurrent
/// transactions of one assignation are serialized and never share a step.
///
/// # Errors
/// [`HistoryError::ForeignAssignation`] when the assignation was started by another user for another
/// human; [`HistoryError::Forbidden`] when it was reverted, or the context names another parent;
/// database errors.
pub(crate) async fn reserve_steps<C: ConnectionTrait>(
    db: &C,
    ctx: &ChangeContext,
    steps: i32,
) -> HistoryResult<i32> {
    let backend = db.get_database_backend();
    let mut insert = Query::insert();
    insert
        .into_table(col("assignation"))
        .columns(ASSIGNATION_COLUMNS.map(col))
        .values([
            Expr::val(ctx.assignation.as_str()),
            Expr::val(ctx.user.clone()),
            Expr::val(ctx.app.clone()),
            Expr::val(now()),
            Expr::val(steps),
            Expr::val(ctx.lineage.parent.as_ref().map(|p| p.to_string())),
            Expr::val(ctx.root_id()),
            Expr::val(ctx.on_behalf_of()),
            Expr::val(ctx.lineage.args_hash.clone()),
            Expr::val(ctx.lineage.args_hash_alg.clone()),
        ])
        .map_err(query_err)?
        .on_conflict(
            OnConflict::column(col("id"))
                .value(
                    col("change_count"),
                    Expr::col((col("assignation"), col("change_count"))).add(steps),
                )
                .to_owned(),
        );
    let row = if backend == DbBackend::MySql {
        db.execute(&insert).await?;
        let select = Query::select()
            .columns(RESERVED.map(col))
            .from(col("assignation"))
            .and_where(Expr::col(col("id")).eq(ctx.assignation.as_str()))
            .to_owned();
        db.query_one(&select).await?
    } else {
        insert.returning(Query::returning().columns(RESERVED.map(col)));
        db.query_one(&insert).await?
    };
    let row = row.ok_or_else(|| HistoryError::NotFound("the assignation".into()))?;
    Ok(admitted(ctx, &row)? - steps)
}

/// Reads a reservation's answer (the [`RESERVED`] columns of the assignation row it locked and
/// counted): the assignation's change count once the context's change may join it.
///
/// # Errors
/// As [`reserve_steps`].
pub(crate) fn admitted(ctx: &ChangeContext, row: &sea_orm::QueryResult) -> HistoryResult<i32> {
    let actor: Option<String> = row.try_get("", "actor")?;
    let on_behalf_of: Option<String> = row.try_get("", "on_behalf_of")?;
    let parent: Option<String> = row.try_get("", "parent_id")?;
    let for_the_same_human =
        on_behalf_of.is_some() && on_behalf_of.as_deref() == ctx.on_behalf_of();
    if actor != ctx.user && !for_the_same_human {
        return Err(HistoryError::ForeignAssignation(
            ctx.assignation.to_string(),
        ));
    }
    if let Some(claimed) = &ctx.lineage.parent
        && parent.as_deref() != Some(claimed.as_str())
    {
        return Err(HistoryError::Forbidden(format!(
            "the assignation {} is not a child of {claimed}",
            ctx.assignation
        )));
    }
    let reverted_by: Option<String> = row.try_get("", "reverted_by")?;
    if let Some(by) = reverted_by {
        return Err(reverted(ctx.assignation.as_str(), &by));
    }
    Ok(row.try_get("", "change_count")?)
}

/// The refusal of a change that would join an assignation reverted already (its revert could never be
/// reverted with it).
pub(crate) fn reverted(assignation: &str, by: &str) -> HistoryError {
    HistoryError::Forbidden(format!(
        "the assignation {assignation} was reverted (by {by}): changes may not join it any more"
    ))
}

/// The select of every column of `info`'s history table.
pub(crate) fn history_select(info: &EntityInfo) -> SelectStatement {
    Query::select()
        .columns(HISTORY_COLUMNS.map(col))
        .from(col(&info.history_table))
        .to_owned()
}

/// The latest record of each of `object_ids` in `info`'s history table.
///
/// A plain read: writers of one object are serialized by the lock on its live row, taken before its
/// history is written, and each statement sees the latest committed records at READ COMMITTED (the
/// default on PostgreSQL; open MySQL connections at READ COMMITTED too, since REPEATABLE READ would read
/// a stale snapshot). The unique (object, version) index refuses a duplicate version regardless.
///
/// # Errors
/// Database errors.
pub(crate) async fn latest_rows<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    object_ids: &[String],
) -> HistoryResult<HashMap<String, HistoryRow>> {
    let backend = db.get_database_backend();
    let q = |name: &str| quote(backend, name);
    let h = q(&info.history_table);
    let columns = HISTORY_COLUMNS
        .iter()
        .map(|c| format!("h.{}", q(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut latest = HashMap::new();
    for chunk in object_ids.chunks(INSERT_CHUNK) {
        // Driven by the ids, each object's latest record found at the top of the
        // (object_id, version) index: an `IN` over the history would visit every record of each.
        let (objects, values) = objects_cte(backend, chunk);
        let (o, id, version) = (q("_h_o"), q("object_id"), q("version"));
        let sql = format!(
            "{objects} SELECT {columns} FROM {o} AS o JOIN {h} AS h ON h.{id} = o.{id}
               AND h.{version} = (SELECT MAX(l.{version}) FROM {h} AS l WHERE l.{id} = o.{id})"
        );
        let stmt = Statement::from_sql_and_values(backend, sql, values);
        for row in HistoryRow::find_by_statement(stmt).all(db).await? {
            latest.insert(row.object_id.clone(), row);
        }
    }
    Ok(latest)
}

/// The latest version of each of `object_ids` in `info`'s history table that has records, each read
/// from the top of the `(object_id, version)` index (a `GROUP BY` over the history would visit every
/// record of each object).
///
/// # Errors
/// Database errors.
pub(crate) async fn latest_versions<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    object_ids: &[String],
) -> HistoryResult<HashMap<String, i32>> {
    #[derive(FromQueryResult)]
    struct Latest {
        object_id: String,
        latest: Option<i32>,
    }
    let backend = db.get_database_backend();
    let q = |name: &str| quote(backend, name);
    let (h, o, id, version) = (
        q(&info.history_table),
        q("_h_o"),
        q("object_id"),
        q("version"),
    );
    let mut latest = HashMap::new();
    for chunk in object_ids.chunks(INSERT_CHUNK) {
        let (objects, values) = objects_cte(backend, chunk);
        let sql = format!(
            "{objects} SELECT o.{id} AS {id},
               (SELECT MAX(l.{version}) FROM {h} AS l WHERE l.{id} = o.{id}) AS {latest}
             FROM {o} AS o",
            latest = q("latest")
        );
        let stmt = Statement::from_sql_and_values(backend, sql, values);
        for row in Latest::find_by_statement(stmt).all(db).await? {
            if let Some(version) = row.latest {
                latest.insert(row.object_id, version);
            }
        }
    }
    Ok(latest)
}

/// Records `changes` of `info` in its history table, in order, through `db` (the change's own
/// transaction), and returns the rows written. An UPDATE whose snapshot equals the object's latest
/// snapshot is skipped: an update that changes nothing writes no history.
///
/// This is the one writer of history rows: the hooks, the bulk helpers and the revert engine all
/// call it.
///
/// # Errors
/// [`HistoryError::NoContext`] outside a scope; [`HistoryError::ForeignAssignation`]; database
/// errors.
pub(crate) async fn record_changes<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    changes: Vec<PendingChange>,
) -> HistoryResult<Vec<HistoryRow>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let ctx = ChangeContext::require()?;
    let ids: Vec<String> = changes.iter().map(|c| c.object_id.clone()).collect();
    let mut latest = latest_rows(db, info, &ids).await?;
    let mut chain: HashMap<String, String> = latest
        .iter()
        .map(|(id, row)| (id.clone(), row.hash.clone()))
        .collect();

    let at = now();
    let mut rows = Vec::with_capacity(changes.len());
    for change in changes {
        let previous = latest.get(&change.object_id);
        if change.kind == HistoryKind::Update
            && previous.is_some_and(|p| p.snapshot == change.snapshot)
        {
            continue;
        }
        let row = HistoryRow {
            id: Uuid::now_v7(),
            version: previous.map_or(1, |p| p.version + 1),
            kind: change.kind,
            at,
            actor: ctx.user.clone(),
            app: ctx.app.clone(),
            assignation_id: ctx.assignation.to_string(),
            step: 0,
            reason: ctx.reason.clone(),
            snapshot: change.snapshot,
            scope_id: previous.and_then(|p| p.scope_id.clone()),
            object_id: change.object_id,
            hash: String::new(),
            trace_id: ctx.trace.as_ref().map(|t| t.trace_id().to_owned()),
            span_id: ctx.trace.as_ref().map(|t| t.span_id().to_owned()),
        };
        latest.insert(row.object_id.clone(), row.clone());
        rows.push(row);
    }
    if rows.is_empty() {
        return Ok(rows);
    }

    resolve_scopes(db, ctx.registry(), info, &mut rows).await?;
    let count = i32::try_from(rows.len()).map_err(query_err)?;
    let first_step = reserve_steps(db, &ctx, count).await?;
    for (offset, row) in (0..).zip(rows.iter_mut()) {
        row.step = first_step + offset;
        // Hashed once the step is final; several records of one object chain to each other in order.
        let content = content_hash(&info.name, row);
        row.hash = chain_hash(
            chain.get(&row.object_id).map(String::as_str),
            row.version,
            row.step,
            &content,
        );
        chain.insert(row.object_id.clone(), row.hash.clone());
    }

    insert_records(db, info, &rows).await?;
    if let Some(tally) = &ctx.tally {
        tally.add(&info.name, &rows);
    }
    Ok(rows)
}

/// Inserts `rows`, complete, into `info`'s history table, [`INSERT_CHUNK`] to a statement.
///
/// # Errors
/// Database errors.
pub(crate) async fn insert_records<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    rows: &[HistoryRow],
) -> HistoryResult<()> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut insert = Query::insert();
        insert
            .into_table(col(&info.history_table))
            .columns(HISTORY_COLUMNS.map(col));
        for row in chunk {
            insert.values(row_values(row)).map_err(query_err)?;
        }
        db.execute(&insert).await?;
    }
    Ok(())
}

/// The values of `row` in [`HISTORY_COLUMNS`] order, for an INSERT.
pub(crate) fn row_values(row: &HistoryRow) -> [Expr; 15] {
    [
        Expr::val(row.id),
        Expr::val(row.object_id.clone()),
        Expr::val(row.version),
        Expr::val(row.kind.as_str()),
        Expr::val(row.at),
        Expr::val(row.actor.clone()),
        Expr::val(row.app.clone()),
        Expr::val(row.assignation_id.clone()),
        Expr::val(row.step),
        Expr::val(row.reason.clone()),
        Expr::val(row.snapshot.clone()),
        Expr::val(row.hash.clone()),
        Expr::val(row.scope_id.clone()),
        Expr::val(row.trace_id.clone()),
        Expr::val(row.span_id.clone()),
    ]
}

/// The object id of the parent a snapshot of `info` points to through its foreign key `fk`, when every
/// column of the key holds a value.
pub(crate) fn parent_id(info: &EntityInfo, fk: usize, snapshot: &Json) -> Option<String> {
    let key = &info.parents[fk];
    let parts: Option<Vec<Json>> = key
        .columns
        .iter()
        .map(|&i| {
            snapshot
                .get(&info.columns[i].field)
                .filter(|v| !v.is_null())
                .cloned()
        })
        .collect();
    parts.map(|p| snapshot::object_id(&p))
}

/// `WITH "_h_o"("object_id") AS (VALUES (?), …)` over `ids`, in `backend`'s quoting and
/// placeholders, and the values it binds: the objects a statement then looks up one by one. MariaDB
/// gets `SELECT ? UNION ALL …` instead: a prepared statement's `VALUES (?)` yields no rows there.
fn objects_cte(backend: DbBackend, ids: &[String]) -> (String, Vec<Value>) {
    let rows = match backend {
        DbBackend::Postgres => format!(
            "VALUES {}",
            (1..=ids.len())
                .map(|n| format!("(${n})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DbBackend::MySql => vec!["SELECT ?"; ids.len()].join(" UNION ALL "),
        _ => format!("VALUES {}", vec!["(?)"; ids.len()].join(", ")),
    };
    let sql = format!(
        "WITH {}({}) AS ({rows})",
        quote(backend, "_h_o"),
        quote(backend, "object_id")
    );
    (sql, ids.iter().map(|id| id.clone().into()).collect())
}

/// Fills in the scope of records of objects seen for the first time: a root is its own scope; an
/// entity scoped through a parent shares that parent's (read from the parent's records: an object's
/// parent of scope never changes, and its records outlive it).
async fn resolve_scopes<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    info: &EntityInfo,
    rows: &mut [HistoryRow],
) -> HistoryResult<()> {
    match info.scope {
        ScopeRule::None => {}
        ScopeRule::Root => {
            for row in rows.iter_mut().filter(|r| r.scope_id.is_none()) {
                row.scope_id = Some(row.object_id.clone());
            }
        }
        ScopeRule::Via(fk) => {
            let Some(parent) = registry.by_table(&info.parents[fk].parent_table) else {
                return Ok(());
            };
            if parent.scope == ScopeRule::Root {
                for row in rows.iter_mut().filter(|r| r.scope_id.is_none()) {
                    row.scope_id = parent_id(info, fk, &row.snapshot);
                }
                return Ok(());
            }
            let wanted: BTreeSet<String> = rows
                .iter()
                .filter(|r| r.scope_id.is_none())
                .filter_map(|r| parent_id(info, fk, &r.snapshot))
                .collect();
            if wanted.is_empty() {
                return Ok(());
            }
            let wanted: Vec<String> = wanted.into_iter().collect();
            let mut scopes = HashMap::new();
            let backend = db.get_database_backend();
            let q = |name: &str| quote(backend, name);
            for chunk in wanted.chunks(INSERT_CHUNK) {
                let (objects, values) = objects_cte(backend, chunk);
                let (o, id) = (q("_h_o"), q("object_id"));
                let scope = latest_scope(backend, &q(&parent.history_table), &format!("o.{id}"));
                let sql = format!(
                    "{objects} SELECT o.{id} AS {id}, {scope} AS {} FROM {o} AS o",
                    q("scope_id")
                );
                let select = Statement::from_sql_and_values(backend, sql, values);
                for row in db.query_all_raw(select).await? {
                    let id: String = row.try_get("", "object_id")?;
                    let scope: Option<String> = row.try_get("", "scope_id")?;
                    scopes.insert(id, scope);
                }
            }
            for row in rows.iter_mut().filter(|r| r.scope_id.is_none()) {
                row.scope_id = parent_id(info, fk, &row.snapshot)
                    .and_then(|p| scopes.get(&p).cloned().flatten());
            }
        }
    }
    Ok(())
}

/// The hook behind `before_save`: refuses the write before it happens when it could not be
/// historized (no change context, or an entity the context's registry does not hold), so that no row
/// changes without history even outside a transaction.
///
/// # Errors
/// [`HistoryError::NoContext`], [`HistoryError::NotRegistered`], carried as a [`DbErr`].
pub fn before_save<E: Historized>() -> Result<(), DbErr> {
    ChangeContext::require()
        .and_then(|ctx| ctx.registry().of::<E>().map(|_| ()))
        .map_err(HistoryError::into_db_err)
}

/// The hook behind `after_save`: records a CREATE or an UPDATE of `model`.
///
/// # Errors
/// As `record_changes`, carried as a [`DbErr`] (see [`HistoryError::into_db_err`]).
pub async fn after_save<E, C>(db: &C, model: &E::Model, insert: bool) -> Result<(), DbErr>
where
    E: Historized,
    C: ConnectionTrait,
{
    async {
        let ctx = ChangeContext::require()?;
        let info = ctx.registry().of::<E>()?;
        let snapshot = info.snapshot_of(model)?;
        let object_id = info.object_id(&snapshot);
        if ctx.take_written_with_row(info, &object_id) {
            // crate::write recorded it in the row's own statement.
            return Ok(false);
        }
        let change = PendingChange {
            object_id,
            kind: if insert {
                HistoryKind::Create
            } else {
                HistoryKind::Update
            },
            snapshot,
        };
        crate::writer::record_one(db, info, change).await
    }
    .await
    .map(|_| ())
    .map_err(HistoryError::into_db_err)
}

/// The condition selecting the row `active` stands for, by its primary key.
fn primary_key_condition<A: ActiveModelTrait>(active: &A) -> Result<Condition, HistoryError> {
    let mut condition = Condition::all();
    for key in <A::Entity as EntityTrait>::PrimaryKey::iter() {
        let column = key.into_column();
        let value: Value = active.get(column).into_value().ok_or_else(|| {
            HistoryError::BadInput("a delete without the row's primary key".into())
        })?;
        condition = condition.add(column.eq(value));
    }
    Ok(condition)
}

/// The hook behind `before_delete`: reads the row as it is in the database (locking it), refuses the
/// delete when rows point at it through a `RESTRICT` key (the database would), deals with the rows
/// pointing at it through `CASCADE` and `SET NULL` keys (see the module docs), and keeps its snapshot
/// for [`after_delete`], which records the DELETE once the row is gone. Deleting a row that does not
/// exist records nothing. A row [`write::delete`](crate::write::delete) hands it, as its caller read
/// and locked it, is kept as it is: the writer deals with its dependents.
///
/// # Errors
/// [`HistoryError::BadInput`] for rows in the way; as `record_changes`; carried as a [`DbErr`].
pub async fn before_delete<E, A, C>(db: &C, active: &A) -> Result<(), DbErr>
where
    E: Historized,
    A: ActiveModelTrait<Entity = E>,
    C: ConnectionTrait,
{
    async {
        let ctx = ChangeContext::require()?;
        let registry = ctx.registry();
        let info = registry.of::<E>()?;
        if let Some(row) = ctx.take_given(info, &key_object_id(info, active)?) {
            // crate::write::delete's caller read and locked it, and the writer deals with the rows
            // pointing at it.
            ctx.deleting(info, vec![row]);
            return Ok(());
        }
        let found = rows::snapshots_where(db, info, primary_key_condition(active)?, true).await?;
        clear_dependents(db, registry, info, &found).await?;
        ctx.deleting(info, found);
        Ok(())
    }
    .await
    .map_err(HistoryError::into_db_err)
}

/// The hook behind `after_delete`: records the DELETE of the row [`before_delete`] read, now that the
/// database has deleted it.
///
/// # Errors
/// As `record_changes`, carried as a [`DbErr`].
pub async fn after_delete<E, A, C>(db: &C, active: &A) -> Result<(), DbErr>
where
    E: Historized,
    A: ActiveModelTrait<Entity = E>,
    C: ConnectionTrait,
{
    async {
        let ctx = ChangeContext::require()?;
        let info = ctx.registry().of::<E>()?;
        let object_id = key_object_id(info, active)?;
        let Some(snapshot) = ctx.deleted(info, &object_id) else {
            return Ok(());
        };
        let change = PendingChange {
            object_id,
            kind: HistoryKind::Delete,
            snapshot,
        };
        crate::writer::record_one(db, info, change)
            .await
            .map(|_| ())
    }
    .await
    .map_err(HistoryError::into_db_err)
}

/// The object id of the row `active` stands for, from its primary key.
fn key_object_id<A: ActiveModelTrait>(info: &EntityInfo, active: &A) -> HistoryResult<String> {
    let mut key = serde_json::Map::new();
    for k in <A::Entity as EntityTrait>::PrimaryKey::iter() {
        let column = k.into_column();
        if let Some(value) = active.get(column).into_value() {
            key.insert(
                crate::snapshot::camel_case(sea_orm::IdenStatic::as_str(&column)),
                crate::snapshot::value_to_json(value)?,
            );
        }
    }
    Ok(info.object_id(&Json::Object(key)))
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The rows of `info` about to be deleted, so far in this cascade (against loops in data whose keys
/// point at each other).
type Visited = BTreeSet<(String, String)>;

fn visited(info: &EntityInfo, ids: &[String]) -> Visited {
    ids.iter()
        .map(|id| (info.name.clone(), id.clone()))
        .collect()
}

/// A foreign key of a dependent entity, with that entity.
type Key<'a> = (&'a EntityInfo, &'a ForeignKey);

/// The keys through which rows point at `found` (snapshots of `info`, about to be deleted), in the
/// order the registry lists them. With two keys or more, one statement asks which have rows (see
/// [`rows::pointed_at`]): a row nothing points at is then deleted after one probe, not a read per
/// key. With one, its own read asks as much.
///
/// # Errors
/// Database errors.
async fn pointing_keys<'a, C: ConnectionTrait>(
    db: &C,
    registry: &'a Registry,
    info: &'a EntityInfo,
    found: &[Json],
) -> HistoryResult<Vec<Key<'a>>> {
    let keys: Vec<Key<'a>> = registry.dependents_of(&info.table).collect();
    if keys.len() < 2 || found.is_empty() {
        return Ok(keys);
    }
    let refs: Vec<&Json> = found.iter().collect();
    let present = rows::pointed_at(db, &keys, info, &refs).await?;
    Ok(keys
        .into_iter()
        .zip(present)
        .filter_map(|(key, present)| present.then_some(key))
        .collect())
}

/// Deals with the rows pointing at `found` (snapshots of live rows of `info`, locked, about to be
/// deleted) as their keys' `ON DELETE` says (see the module docs): refuses the delete when a
/// `RESTRICT` key holds them, deletes `CASCADE` rows and updates `SET NULL` rows, with history.
///
/// # Errors
/// [`HistoryError::BadInput`] for rows in the way; as `record_changes`.
pub(crate) async fn clear_dependents<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    info: &EntityInfo,
    found: &[Json],
) -> HistoryResult<()> {
    let ids: Vec<String> = found.iter().map(|s| info.object_id(s)).collect();
    let keys = pointing_keys(db, registry, info, found).await?;
    restrict(db, &keys, info, found, &ids).await?;
    cascade(db, registry, &keys, info, found, &mut visited(info, &ids)).await
}

/// What a `DELETE` of one row must do about the rows that may point at it (see [`pointers`]).
pub(crate) enum Pointers {
    /// No key could point at it (no dependent entity, or the row holds none of their keys' values).
    None,
    /// Delete it on this condition (a `NOT EXISTS` per key): when it holds, nothing points at it.
    Unless(Condition),
    /// Deal with them first: a key points from the entity's own table (MySQL refuses a `DELETE`
    /// whose subquery reads its own table).
    First,
}

/// What rows may point at `row` (a snapshot of `info`) through the keys of dependent entities, for a
/// `DELETE` that takes the row only when it has nothing to cascade, set to null or be refused by.
pub(crate) fn pointers(registry: &Registry, info: &EntityInfo, row: &Json) -> Pointers {
    let mut condition = Condition::all();
    for (child, fk) in registry.dependents_of(&info.table) {
        if child.table == info.table {
            return Pointers::First;
        }
        if let Some(select) = rows::pointing(child, fk, info, &[row]) {
            condition = condition.add(Expr::exists(select).not());
        }
    }
    if condition.is_empty() {
        Pointers::None
    } else {
        Pointers::Unless(condition)
    }
}

/// Refuses the delete of `rows` of `info` when rows other than themselves point at them through a
/// `RESTRICT` key among `keys`: the database would refuse it, after the cascades had run.
async fn restrict<C: ConnectionTrait>(
    db: &C,
    keys: &[Key<'_>],
    info: &EntityInfo,
    found: &[Json],
    ids: &[String],
) -> HistoryResult<()> {
    let refs: Vec<&Json> = found.iter().collect();
    for &(child, fk) in keys {
        if fk.on_delete != OnDelete::Restrict {
            continue;
        }
        let blocking = rows::dependents(db, child, fk, info, &refs, false)
            .await?
            .into_iter()
            .any(|s| child.table != info.table || !ids.contains(&child.object_id(&s)));
        if blocking {
            return Err(HistoryError::BadInput(format!(
                "rows of {} point at the {} being deleted",
                child.name, info.name
            )));
        }
    }
    Ok(())
}

/// Deletes the rows `found` of `info` (snapshots of live rows) with history, after the rows pointing
/// at them. Returns how many rows of `info` it recorded.
pub(crate) fn delete_rows<'a, C: ConnectionTrait>(
    db: &'a C,
    registry: &'a Registry,
    info: &'a EntityInfo,
    found: Vec<Json>,
    visited: &'a mut Visited,
) -> Boxed<'a, HistoryResult<usize>> {
    Box::pin(async move {
        if found.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = found.iter().map(|s| info.object_id(s)).collect();
        let keys = pointing_keys(db, registry, info, &found).await?;
        restrict(db, &keys, info, &found, &ids).await?;
        cascade(db, registry, &keys, info, &found, visited).await?;
        let deleted = rows::delete(db, info, &ids).await?;
        rows::expect_rows(info, deleted, ids.len(), "deleted")?;
        if let ([snapshot], [object_id]) = (found.as_slice(), ids.as_slice()) {
            // One row: the one-statement write.
            let change = PendingChange {
                object_id: object_id.clone(),
                kind: HistoryKind::Delete,
                snapshot: snapshot.clone(),
            };
            return Ok(usize::from(
                crate::writer::record_one(db, info, change).await?,
            ));
        }
        let changes = found
            .into_iter()
            .zip(ids)
            .map(|(snapshot, object_id)| PendingChange {
                object_id,
                kind: HistoryKind::Delete,
                snapshot,
            })
            .collect();
        Ok(record_changes(db, info, changes).await?.len())
    })
}

/// Applies the `ON DELETE` of every `CASCADE` and `SET NULL` key among `keys` (keys pointing at
/// `parents`, snapshots of `parent` about to be deleted), with history; rows already being deleted in
/// this cascade are left alone.
async fn cascade<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    keys: &[Key<'_>],
    parent: &EntityInfo,
    parents: &[Json],
    visited: &mut Visited,
) -> HistoryResult<()> {
    let refs: Vec<&Json> = parents.iter().collect();
    for &(child, fk) in keys {
        if fk.on_delete == OnDelete::Restrict {
            continue;
        }
        let mut found = rows::dependents(db, child, fk, parent, &refs, true).await?;
        found.retain(|s| !visited.contains(&(child.name.clone(), child.object_id(s))));
        if found.is_empty() {
            continue;
        }
        match fk.on_delete {
            OnDelete::Cascade => {
                for s in &found {
                    visited.insert((child.name.clone(), child.object_id(s)));
                }
                delete_rows(db, registry, child, found, visited).await?;
            }
            OnDelete::SetNull => {
                let cleared: Vec<Json> = found
                    .into_iter()
                    .map(|mut s| {
                        if let Some(fields) = s.as_object_mut() {
                            for &i in &fk.columns {
                                fields.insert(child.columns[i].field.clone(), Json::Null);
                            }
                        }
                        s
                    })
                    .collect();
                rows::update(db, child, &cleared).await?;
                record_changes(db, child, updates(child, cleared)).await?;
            }
            OnDelete::Restrict => {}
        }
    }
    Ok(())
}

fn updates(info: &EntityInfo, snapshots: Vec<Json>) -> Vec<PendingChange> {
    snapshots
        .into_iter()
        .map(|snapshot| PendingChange {
            object_id: info.object_id(&snapshot),
            kind: HistoryKind::Update,
            snapshot,
        })
        .collect()
}

/// The rows `snapshots` name as the database now holds them (what it stored may differ from what was
/// sent: precision, scale, defaults), in the same order.
///
/// # Errors
/// [`HistoryError::NotFound`] when a row is not there; database errors.
async fn stored<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    snapshots: &[Json],
) -> HistoryResult<Vec<Json>> {
    let ids: Vec<String> = snapshots.iter().map(|s| info.object_id(s)).collect();
    let mut found = rows::snapshots_of(db, info, &ids, true).await?;
    let stored: Vec<Json> = ids.iter().filter_map(|id| found.remove(id)).collect();
    rows::expect_rows(info, stored.len() as u64, ids.len(), "written")?;
    Ok(stored)
}

/// Inserts `models` in batched statements and records a CREATE for each: the counterpart of
/// `insert_many` (which skips hooks) with history.
///
/// # Errors
/// As `record_changes`; constraint violations of the insert.
pub async fn insert_with_history<E, C>(db: &C, models: &[E::Model]) -> HistoryResult<()>
where
    E: Historized,
    C: ConnectionTrait,
{
    let ctx = ChangeContext::require()?;
    let info = ctx.registry().of::<E>()?;
    let snapshots = models
        .iter()
        .map(|m| info.snapshot_of(m))
        .collect::<Result<Vec<_>, _>>()?;
    rows::insert(db, info, &snapshots).await?;
    let written = stored(db, info, &snapshots).await?;
    let changes = written
        .into_iter()
        .map(|snapshot| PendingChange {
            object_id: info.object_id(&snapshot),
            kind: HistoryKind::Create,
            snapshot,
        })
        .collect();
    record_changes(db, info, changes).await?;
    Ok(())
}

/// Writes `models` over their existing rows and records an UPDATE for each that changed: the
/// counterpart of `update_many` with history. Lock the rows first (a `SELECT … FOR UPDATE`).
///
/// # Errors
/// As `record_changes`; constraint violations of the write.
pub async fn update_with_history<E, C>(db: &C, models: &[E::Model]) -> HistoryResult<()>
where
    E: Historized,
    C: ConnectionTrait,
{
    let ctx = ChangeContext::require()?;
    let info = ctx.registry().of::<E>()?;
    let snapshots = models
        .iter()
        .map(|m| info.snapshot_of(m))
        .collect::<Result<Vec<_>, _>>()?;
    rows::update(db, info, &snapshots).await?;
    let written = stored(db, info, &snapshots).await?;
    record_changes(db, info, updates(info, written)).await?;
    Ok(())
}

/// Deletes every row of `E` matching `condition` with history — reading and locking the rows first,
/// dealing with the rows pointing at them, and deleting exactly those — and returns how many: the
/// counterpart of `delete_many` with history.
///
/// # Errors
/// As `record_changes`; constraint violations of the delete.
pub async fn delete_with_history<E, C>(db: &C, condition: Condition) -> HistoryResult<usize>
where
    E: Historized,
    C: ConnectionTrait,
{
    let ctx = ChangeContext::require()?;
    let registry = ctx.registry();
    let info = registry.of::<E>()?;
    let found = rows::snapshots_where(db, info, condition, true).await?;
    let ids: Vec<String> = found.iter().map(|s| info.object_id(s)).collect();
    delete_rows(db, registry, info, found, &mut visited(info, &ids)).await
}

/// The snapshot of `model` of `E` (as history records hold it).
///
/// # Errors
/// [`HistoryError::NoContext`] outside a scope; `E` not registered.
pub fn snapshot_of<E: Historized>(model: &E::Model) -> HistoryResult<Json>
where
    E::Model: ModelTrait,
{
    let ctx = ChangeContext::require()?;
    ctx.registry().of::<E>()?.snapshot_of(model)
}
