//! What every shadow history table shares: the record kinds, the entity names, the shadow table's
//! columns, and the one writer of history rows ([`record_changes`]) that the `ActiveModelBehavior` hooks
//! and the bulk `*_with_history` helpers call inside the change's own transaction.
//!
//! A shadow table `<table>_history` holds one row per change of one object: a full JSON snapshot of the
//! row (after the change; for a DELETE, as it was before), the field diff against the previous version,
//! the version (1, 2, 3 … per object, unique), who/which app/which assignation/which step, an optional
//! reason, and a SHA-256 hash chaining the record to the previous record of the same object.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query, SelectStatement, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    FromQueryResult, IdenStatic, Iterable, PrimaryKeyToColumn, QueryFilter, QuerySelect, Value,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::context::ChangeContext;

/// The message of the [`DbErr::Custom`] returned when a change would join an assignation started by
/// another user. The server maps it to `FORBIDDEN`.
pub const FOREIGN_ASSIGNATION: &str = "chronicle: the assignation belongs to another user";
/// The message of the [`DbErr::Custom`] returned when a historized change runs outside a
/// [`ChangeContext`] scope.
pub const NO_CHANGE_CONTEXT: &str = "chronicle: historized change outside a change context";

/// Rows written by one multi-row `INSERT`: small enough for every backend's bind-parameter limit.
const INSERT_CHUNK: usize = 500;

/// What a history record says happened to its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HistoryKind {
    /// The object was inserted.
    Create,
    /// The object's values changed.
    Update,
    /// The object was deleted; the snapshot is the row as it was before.
    Delete,
}

impl HistoryKind {
    /// The value stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }

    /// Parses the value stored in the `kind` column.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CREATE" => Some(Self::Create),
            "UPDATE" => Some(Self::Update),
            "DELETE" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// Every historized entity. Its order is the order parents come before children.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HistoryEntity {
    /// `project`
    Project,
    /// `label`
    Label,
    /// `task`
    Task,
    /// `task_label`
    TaskLabel,
    /// `comment`
    Comment,
}

impl HistoryEntity {
    /// All historized entities, parents first.
    pub const ALL: [HistoryEntity; 5] = [
        Self::Project,
        Self::Label,
        Self::Task,
        Self::TaskLabel,
        Self::Comment,
    ];

    /// The base table.
    pub fn table(self) -> &'static str {
        match self {
            Self::Project => "project",
            Self::Label => "label",
            Self::Task => "task",
            Self::TaskLabel => "task_label",
            Self::Comment => "comment",
        }
    }

    /// The shadow history table.
    pub fn history_table(self) -> &'static str {
        match self {
            Self::Project => "project_history",
            Self::Label => "label_history",
            Self::Task => "task_history",
            Self::TaskLabel => "task_label_history",
            Self::Comment => "comment_history",
        }
    }

    /// The entity named `s` as the API and the hashes name it (`TASK_LABEL`).
    pub fn parse_api(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Which project a record of this entity belongs to, for project timelines.
    pub fn scope(self) -> Scope {
        match self {
            Self::Project => Scope::Itself,
            Self::Task => Scope::Field("projectId"),
            Self::Comment | Self::TaskLabel => Scope::ParentOf(Self::Task, "taskId"),
            Self::Label => Scope::None,
        }
    }

    /// The name used in the API and in hashes (`TASK_LABEL`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Project => "PROJECT",
            Self::Label => "LABEL",
            Self::Task => "TASK",
            Self::TaskLabel => "TASK_LABEL",
            Self::Comment => "COMMENT",
        }
    }

    /// The bit of this entity in `assignation.entity_mask`.
    pub fn bit(self) -> i32 {
        match self {
            Self::Project => 1,
            Self::Label => 2,
            Self::Task => 4,
            Self::TaskLabel => 8,
            Self::Comment => 16,
        }
    }

    /// The entities whose bits are set in `mask`.
    pub fn from_mask(mask: i32) -> Vec<HistoryEntity> {
        Self::ALL
            .into_iter()
            .filter(|e| mask & e.bit() != 0)
            .collect()
    }
}

/// Where a record's project (its `scope_id`) comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The object is a project.
    Itself,
    /// The snapshot field holding the project id.
    Field(&'static str),
    /// The snapshot field holding the id of a parent of this entity, whose project it shares.
    ParentOf(HistoryEntity, &'static str),
    /// Belongs to no project (labels are shared).
    None,
}

/// A historized sea-orm entity: the hooks and helpers of this module work on any entity that
/// implements it (see the `historized!` macro).
pub trait Historized: EntityTrait
where
    Self::Model: Serialize + DeserializeOwned,
{
    /// Which entity this is in history records.
    const ENTITY: HistoryEntity;

    /// The object id used in history records (the primary key; `"<a>:<b>"` for composite keys).
    fn object_id(model: &Self::Model) -> String;

    /// The condition selecting the row of `object_id`, or `None` if it is not an id of this entity.
    fn object_condition(object_id: &str) -> Option<Condition>;

    /// Snapshot fields that say when the row last changed (`updatedAt`): a revert sets them to its own
    /// time rather than back to the old value.
    const TOUCHED: &'static [&'static str] = &[];
}

/// One row of any shadow history table.
#[derive(Clone, Debug, PartialEq, FromQueryResult, serde::Serialize)]
pub struct HistoryRow {
    /// Unique across all history (UUIDv7).
    pub id: Uuid,
    /// The object's id (see [`Historized::object_id`]).
    pub object_id: String,
    /// 1, 2, 3 … per object.
    pub version: i32,
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub kind: String,
    /// When the change was made.
    pub at: DateTime<Utc>,
    /// The acting user.
    pub actor: Option<String>,
    /// The app the user acted through.
    pub app: Option<String>,
    /// The assignation the change belongs to.
    pub assignation_id: String,
    /// Order of this change inside its assignation, from 0.
    pub step: i32,
    /// Why the change was made.
    pub reason: Option<String>,
    /// The whole row after the change (before it, for a DELETE).
    pub snapshot: Json,
    /// `[{field, old, new}]` against the previous version.
    pub changes: Json,
    /// Hex SHA-256 over this record and the previous record's hash.
    pub hash: String,
    /// The project the object belongs to (see [`HistoryEntity::scope`]); derived, not hashed.
    pub scope_id: Option<String>,
}

impl HistoryRow {
    /// The record's kind; an unknown value (only possible by editing the table by hand) reads as UPDATE.
    pub fn history_kind(&self) -> HistoryKind {
        HistoryKind::parse(&self.kind).unwrap_or(HistoryKind::Update)
    }
}

/// The columns of every shadow history table, in the order [`HistoryRow`] lists them.
pub const HISTORY_COLUMNS: [&str; 14] = [
    "id",
    "object_id",
    "version",
    "kind",
    "at",
    "actor",
    "app",
    "assignation_id",
    "step",
    "reason",
    "snapshot",
    "changes",
    "hash",
    "scope_id",
];

/// A change about to be recorded.
#[derive(Clone, Debug)]
pub struct PendingChange {
    /// The object's id.
    pub object_id: String,
    /// What happened.
    pub kind: HistoryKind,
    /// The row after the change (before it, for a DELETE).
    pub snapshot: Json,
}

/// The current time at the precision every backend stores (microseconds), so that a value read back
/// equals the value written and snapshots equal live rows.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The field diff of a change: every field for a CREATE (from null) and a DELETE (to null), the fields
/// whose value differs for an UPDATE.
pub fn diff(kind: HistoryKind, previous: Option<&Json>, snapshot: &Json) -> Json {
    let empty = Map::new();
    let new = snapshot.as_object().unwrap_or(&empty);
    let mut out = Vec::new();
    match kind {
        HistoryKind::Create => {
            for (field, value) in new {
                out.push(json!({"field": field, "old": Json::Null, "new": value}));
            }
        }
        HistoryKind::Delete => {
            for (field, value) in new {
                out.push(json!({"field": field, "old": value, "new": Json::Null}));
            }
        }
        HistoryKind::Update => {
            let old = previous.and_then(Json::as_object).unwrap_or(&empty);
            for (field, value) in new {
                let before = old.get(field).unwrap_or(&Json::Null);
                if before != value {
                    out.push(json!({"field": field, "old": before, "new": value}));
                }
            }
            for (field, before) in old {
                if !new.contains_key(field) {
                    out.push(json!({"field": field, "old": before, "new": Json::Null}));
                }
            }
        }
    }
    Json::Array(out)
}

/// Formats a timestamp the way hashes see it.
fn canonical_time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The SHA-256 chaining `row` to `previous_hash`: over a canonical JSON encoding (sorted keys) of the
/// record's snapshot and metadata.
pub fn record_hash(entity: HistoryEntity, row: &HistoryRow, previous_hash: Option<&str>) -> String {
    let canonical = json!({
        "entity": entity.as_str(),
        "id": row.id.to_string(),
        "objectId": row.object_id,
        "version": row.version,
        "kind": row.kind,
        "at": canonical_time(&row.at),
        "user": row.actor,
        "app": row.app,
        "assignationId": row.assignation_id,
        "step": row.step,
        "reason": row.reason,
        "snapshot": row.snapshot,
        "previousHash": previous_hash,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

fn assignation_col(name: &str) -> (Alias, Alias) {
    (Alias::new("assignation"), Alias::new(name))
}

fn query_err(e: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(format!("building a history statement: {e}"))
}

/// Makes the context's assignation exist, checks it belongs to the context's user, adds `steps` to its
/// change count and `entity_bits` to its entities, and returns the first of the steps it reserved.
///
/// The statement also takes the assignation row's lock for the rest of the transaction, so concurrent
/// transactions of one assignation are serialized and never share a step. Call it with `steps = 0` as
/// the first statement of a change transaction to take that lock before any object's lock.
///
/// # Errors
/// [`FOREIGN_ASSIGNATION`] when the assignation was started by another user; database errors.
pub async fn reserve_steps<C: ConnectionTrait>(
    db: &C,
    ctx: &ChangeContext,
    steps: i32,
    entity_bits: i32,
) -> Result<i32, DbErr> {
    let backend = db.get_database_backend();
    let mut insert = Query::insert();
    insert
        .into_table(col("assignation"))
        .columns([
            col("id"),
            col("actor"),
            col("app"),
            col("started_at"),
            col("change_count"),
            col("entity_mask"),
        ])
        .values([
            Expr::val(ctx.assignation_id.clone()),
            Expr::val(ctx.user.clone()),
            Expr::val(ctx.app.clone()),
            Expr::val(now()),
            Expr::val(steps),
            Expr::val(entity_bits),
        ])
        .map_err(query_err)?
        .on_conflict(
            OnConflict::column(col("id"))
                .value(
                    col("change_count"),
                    Expr::col(assignation_col("change_count")).add(steps),
                )
                .value(
                    col("entity_mask"),
                    Expr::col(assignation_col("entity_mask")).bit_or(entity_bits),
                )
                .to_owned(),
        );
    let row = if backend == DbBackend::MySql {
        db.execute(&insert).await?;
        let select = Query::select()
            .columns([col("actor"), col("change_count")])
            .from(col("assignation"))
            .and_where(Expr::col(col("id")).eq(ctx.assignation_id.clone()))
            .to_owned();
        db.query_one(&select).await?
    } else {
        insert.returning(Query::returning().columns([col("actor"), col("change_count")]));
        db.query_one(&insert).await?
    };
    let row = row.ok_or_else(|| DbErr::RecordNotFound("assignation".into()))?;
    let actor: Option<String> = row.try_get("", "actor")?;
    if actor != ctx.user {
        return Err(DbErr::Custom(FOREIGN_ASSIGNATION.into()));
    }
    let count: i32 = row.try_get("", "change_count")?;
    Ok(count - steps)
}

/// The latest record of each of `object_ids` in `entity`'s shadow table.
///
/// A plain read: writers of one object are serialized by the lock on its live row, taken before its
/// history is written, and each statement sees the latest committed records at READ COMMITTED (the
/// default on PostgreSQL; `chronicle::startup::connect` sets it on MySQL, whose REPEATABLE READ would
/// read a stale snapshot). The unique (object, version) index refuses a duplicate version regardless.
///
/// # Errors
/// Database errors.
pub async fn latest_rows<C: ConnectionTrait>(
    db: &C,
    entity: HistoryEntity,
    object_ids: &[String],
) -> Result<HashMap<String, HistoryRow>, DbErr> {
    let mut latest = HashMap::new();
    let table = col(entity.history_table());
    for chunk in object_ids.chunks(INSERT_CHUNK) {
        let newest = Query::select()
            .expr(Expr::col((col("h2"), col("version"))).max())
            .from_as(table.clone(), col("h2"))
            .and_where(
                Expr::col((col("h2"), col("object_id"))).equals((col("h"), col("object_id"))),
            )
            .to_owned();
        let mut select: SelectStatement = Query::select();
        select
            .columns(HISTORY_COLUMNS.map(|c| (col("h"), col(c))))
            .from_as(table.clone(), col("h"))
            .and_where(Expr::col((col("h"), col("object_id"))).is_in(chunk.iter().cloned()))
            .and_where(Expr::col((col("h"), col("version"))).in_subquery(newest));
        let stmt = db.get_database_backend().build(&select);
        for row in HistoryRow::find_by_statement(stmt).all(db).await? {
            latest.insert(row.object_id.clone(), row);
        }
    }
    Ok(latest)
}

/// Records `changes` of `entity` in its shadow table, in order, through `db` (the change's own
/// transaction), and returns the rows written. An UPDATE whose snapshot equals the object's latest
/// snapshot is skipped: an update that changes nothing writes no history.
///
/// This is the one writer of history rows: the hooks, the bulk helpers and the revert engine all call it.
///
/// # Errors
/// [`NO_CHANGE_CONTEXT`] outside a [`ChangeContext`] scope; [`FOREIGN_ASSIGNATION`]; database errors.
pub async fn record_changes<C: ConnectionTrait>(
    db: &C,
    entity: HistoryEntity,
    changes: Vec<PendingChange>,
) -> Result<Vec<HistoryRow>, DbErr> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let ctx = ChangeContext::current().ok_or_else(|| DbErr::Custom(NO_CHANGE_CONTEXT.into()))?;
    let ids: Vec<String> = changes.iter().map(|c| c.object_id.clone()).collect();
    let mut latest = latest_rows(db, entity, &ids).await?;
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
            kind: change.kind.as_str().to_owned(),
            at,
            actor: ctx.user.clone(),
            app: ctx.app.clone(),
            assignation_id: ctx.assignation_id.clone(),
            step: 0,
            reason: ctx.reason.clone(),
            changes: diff(change.kind, previous.map(|p| &p.snapshot), &change.snapshot),
            snapshot: change.snapshot,
            scope_id: previous.and_then(|p| p.scope_id.clone()),
            object_id: change.object_id,
            hash: String::new(),
        };
        latest.insert(row.object_id.clone(), row.clone());
        rows.push(row);
    }
    if rows.is_empty() {
        return Ok(rows);
    }

    resolve_scopes(db, entity, &mut rows).await?;
    let count = i32::try_from(rows.len()).map_err(query_err)?;
    let first_step = reserve_steps(db, &ctx, count, entity.bit()).await?;
    for (offset, row) in (0..).zip(rows.iter_mut()) {
        row.step = first_step + offset;
        // Hashed once the step is final; several records of one object chain to each other in order.
        row.hash = record_hash(entity, row, chain.get(&row.object_id).map(String::as_str));
        chain.insert(row.object_id.clone(), row.hash.clone());
    }

    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut insert = Query::insert();
        insert
            .into_table(col(entity.history_table()))
            .columns(HISTORY_COLUMNS.map(col));
        for row in chunk {
            insert.values(row_values(row)).map_err(query_err)?;
        }
        db.execute(&insert).await?;
    }
    if let Some(tally) = &ctx.tally {
        tally.add(entity.as_str(), &rows);
    }
    Ok(rows)
}

/// Fills in the project of records of objects seen for the first time: a project is its own scope, a
/// task's is its `projectId`, a comment's or label link's is its task's (read from the task's records:
/// a task never changes project, and its records outlive it).
async fn resolve_scopes<C: ConnectionTrait>(
    db: &C,
    entity: HistoryEntity,
    rows: &mut [HistoryRow],
) -> Result<(), DbErr> {
    let field = |row: &HistoryRow, name: &str| {
        row.snapshot
            .get(name)
            .and_then(Json::as_str)
            .map(str::to_owned)
    };
    match entity.scope() {
        Scope::None => {}
        Scope::Itself => {
            for row in rows.iter_mut().filter(|r| r.scope_id.is_none()) {
                row.scope_id = Some(row.object_id.clone());
            }
        }
        Scope::Field(name) => {
            for row in rows.iter_mut().filter(|r| r.scope_id.is_none()) {
                row.scope_id = field(row, name);
            }
        }
        Scope::ParentOf(parent, name) => {
            let parents: Vec<String> = rows
                .iter()
                .filter(|r| r.scope_id.is_none())
                .filter_map(|r| field(r, name))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            if parents.is_empty() {
                return Ok(());
            }
            let mut scopes = HashMap::new();
            for chunk in parents.chunks(INSERT_CHUNK) {
                let select = Query::select()
                    .column(col("object_id"))
                    .expr_as(Expr::col(col("scope_id")).max(), col("scope_id"))
                    .from(col(parent.history_table()))
                    .and_where(Expr::col(col("object_id")).is_in(chunk.iter().cloned()))
                    .group_by_col(col("object_id"))
                    .to_owned();
                for row in db.query_all(&select).await? {
                    let id: String = row.try_get("", "object_id")?;
                    let scope: Option<String> = row.try_get("", "scope_id")?;
                    scopes.insert(id, scope);
                }
            }
            for row in rows.iter_mut().filter(|r| r.scope_id.is_none()) {
                row.scope_id = field(row, name).and_then(|p| scopes.get(&p).cloned().flatten());
            }
        }
    }
    Ok(())
}

/// The values of `row` in [`HISTORY_COLUMNS`] order, for an INSERT.
pub fn row_values(row: &HistoryRow) -> [SimpleExpr; 14] {
    [
        Expr::val(row.id),
        Expr::val(row.object_id.clone()),
        Expr::val(row.version),
        Expr::val(row.kind.clone()),
        Expr::val(row.at),
        Expr::val(row.actor.clone()),
        Expr::val(row.app.clone()),
        Expr::val(row.assignation_id.clone()),
        Expr::val(row.step),
        Expr::val(row.reason.clone()),
        Expr::val(row.snapshot.clone()),
        Expr::val(row.changes.clone()),
        Expr::val(row.hash.clone()),
        Expr::val(row.scope_id.clone()),
    ]
}

/// Serializes a model into its snapshot.
///
/// # Errors
/// A model that does not serialize (never for the derived entities).
pub fn snapshot_of<M: Serialize>(model: &M) -> Result<Json, DbErr> {
    serde_json::to_value(model).map_err(|e| DbErr::Custom(format!("snapshot: {e}")))
}

/// The hook behind `after_save`: records a CREATE or an UPDATE of `model`.
///
/// # Errors
/// As [`record_changes`].
pub async fn record_saved<E, C>(db: &C, model: &E::Model, insert: bool) -> Result<(), DbErr>
where
    E: Historized,
    E::Model: Serialize + DeserializeOwned,
    C: ConnectionTrait,
{
    let change = PendingChange {
        object_id: E::object_id(model),
        kind: if insert {
            HistoryKind::Create
        } else {
            HistoryKind::Update
        },
        snapshot: snapshot_of(model)?,
    };
    record_changes(db, E::ENTITY, vec![change]).await?;
    Ok(())
}

/// The condition selecting the row `active` stands for, by its primary key.
fn primary_key_condition<A>(active: &A) -> Result<Condition, DbErr>
where
    A: ActiveModelTrait,
{
    let mut condition = Condition::all();
    for key in <A::Entity as EntityTrait>::PrimaryKey::iter() {
        let column = key.into_column();
        let value: Value = active
            .get(column)
            .into_value()
            .ok_or_else(|| DbErr::Custom("delete without a primary key".into()))?;
        condition = condition.add(column.eq(value));
    }
    Ok(condition)
}

/// The hook behind `before_delete`: reads the row as it is in the database (locking it) and records its
/// DELETE. Deleting a row that does not exist records nothing.
///
/// # Errors
/// As [`record_changes`].
pub async fn record_deleting<E, A, C>(db: &C, active: &A) -> Result<(), DbErr>
where
    E: Historized,
    E::Model: Serialize + DeserializeOwned,
    A: ActiveModelTrait<Entity = E>,
    C: ConnectionTrait,
{
    let condition = primary_key_condition(active)?;
    let Some(model) = E::find().filter(condition).lock_exclusive().one(db).await? else {
        return Ok(());
    };
    let change = PendingChange {
        object_id: E::object_id(&model),
        kind: HistoryKind::Delete,
        snapshot: snapshot_of(&model)?,
    };
    record_changes(db, E::ENTITY, vec![change]).await?;
    Ok(())
}

/// Inserts `models` in batched statements and records a CREATE for each: the bulk counterpart of
/// `ActiveModel::insert`, which `insert_many` (skipping hooks) is not.
///
/// # Errors
/// As [`record_changes`]; constraint violations of the insert.
pub async fn insert_with_history<E, C>(db: &C, models: Vec<E::Model>) -> Result<(), DbErr>
where
    E: Historized,
    E::Model: Serialize + DeserializeOwned + sea_orm::IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: Send,
    C: ConnectionTrait,
{
    let mut changes = Vec::with_capacity(models.len());
    for model in &models {
        changes.push(PendingChange {
            object_id: E::object_id(model),
            kind: HistoryKind::Create,
            snapshot: snapshot_of(model)?,
        });
    }
    let mut models = models.into_iter().peekable();
    while models.peek().is_some() {
        let chunk: Vec<E::ActiveModel> = models
            .by_ref()
            .take(INSERT_CHUNK / 4)
            .map(sea_orm::IntoActiveModel::into_active_model)
            .collect();
        E::insert_many(chunk).exec_without_returning(db).await?;
    }
    record_changes(db, E::ENTITY, changes).await?;
    Ok(())
}

/// Writes `models` over their existing rows in batched upserts and records an UPDATE for each that
/// changed: the bulk counterpart of `ActiveModel::update`. Callers lock the rows first and pass only
/// rows that exist.
///
/// # Errors
/// As [`record_changes`]; constraint violations of the write.
pub async fn update_with_history<E, C>(db: &C, models: Vec<E::Model>) -> Result<(), DbErr>
where
    E: Historized,
    E::Model: Serialize + DeserializeOwned + sea_orm::IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: Send,
    C: ConnectionTrait,
{
    if models.is_empty() {
        return Ok(());
    }
    let mut changes = Vec::with_capacity(models.len());
    for model in &models {
        changes.push(PendingChange {
            object_id: E::object_id(model),
            kind: HistoryKind::Update,
            snapshot: snapshot_of(model)?,
        });
    }
    let keys: Vec<E::Column> = E::PrimaryKey::iter().map(|k| k.into_column()).collect();
    let values: Vec<E::Column> = E::Column::iter()
        .filter(|c| !keys.iter().any(|k| k.as_str() == c.as_str()))
        .collect();
    let mut models = models.into_iter().peekable();
    while models.peek().is_some() {
        let chunk: Vec<E::ActiveModel> = models
            .by_ref()
            .take(INSERT_CHUNK / 4)
            .map(|m| sea_orm::IntoActiveModel::into_active_model(m).reset_all())
            .collect();
        let mut upsert = OnConflict::columns(keys.clone());
        if values.is_empty() {
            upsert.do_nothing();
        } else {
            upsert.update_columns(values.clone());
        }
        E::insert_many(chunk)
            .on_conflict(upsert)
            .exec_without_returning(db)
            .await?;
    }
    record_changes(db, E::ENTITY, changes).await?;
    Ok(())
}

/// Deletes every row matching `condition` and records a DELETE for each (in one batch), reading and
/// locking the rows first and deleting exactly those: the bulk counterpart of `ActiveModel::delete`,
/// which `delete_many` (skipping hooks) is not. Returns the deleted rows.
///
/// # Errors
/// As [`record_changes`]; constraint violations of the delete.
pub async fn delete_with_history<E, C>(db: &C, condition: Condition) -> Result<Vec<E::Model>, DbErr>
where
    E: Historized,
    E::Model: Serialize + DeserializeOwned + sea_orm::IntoActiveModel<E::ActiveModel>,
    C: ConnectionTrait,
{
    let models = E::find().filter(condition).lock_exclusive().all(db).await?;
    if models.is_empty() {
        return Ok(models);
    }
    let mut changes = Vec::with_capacity(models.len());
    let mut keys = Vec::with_capacity(models.len());
    for model in &models {
        changes.push(PendingChange {
            object_id: E::object_id(model),
            kind: HistoryKind::Delete,
            snapshot: snapshot_of(model)?,
        });
        let active = sea_orm::IntoActiveModel::into_active_model(model.clone());
        keys.push(primary_key_condition(&active)?);
    }
    record_changes(db, E::ENTITY, changes).await?;
    for chunk in keys.chunks(INSERT_CHUNK / 2) {
        let any = chunk.iter().cloned().fold(Condition::any(), Condition::add);
        E::delete_many().filter(any).exec(db).await?;
    }
    Ok(models)
}

/// Implements `ActiveModelBehavior` for the entity module it is called in, so that every
/// `insert`/`update`/`save`/`delete` of an `ActiveModel` writes its history record in the same
/// connection (transaction). The module's `Entity` must implement [`Historized`].
#[macro_export]
macro_rules! historized {
    () => {
        #[$crate::async_trait::async_trait]
        impl ::sea_orm::ActiveModelBehavior for ActiveModel {
            async fn after_save<C>(
                model: Model,
                db: &C,
                insert: bool,
            ) -> ::std::result::Result<Model, ::sea_orm::DbErr>
            where
                C: ::sea_orm::ConnectionTrait,
            {
                $crate::history::record_saved::<Entity, C>(db, &model, insert).await?;
                Ok(model)
            }

            async fn before_delete<C>(self, db: &C) -> ::std::result::Result<Self, ::sea_orm::DbErr>
            where
                C: ::sea_orm::ConnectionTrait,
            {
                $crate::history::record_deleting::<Entity, Self, C>(db, &self).await?;
                Ok(self)
            }
        }
    };
}

/// Declares the sea-orm entity of a shadow history table named `$table` (the columns of
/// [`HistoryRow`]), for code that wants to query history with sea-orm directly.
#[macro_export]
macro_rules! shadow_table {
    ($table:literal) => {
        use ::sea_orm::entity::prelude::*;

        /// One history record (see [`crate::history::HistoryRow`]).
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = $table)]
        pub struct Model {
            /// Unique across all history (UUIDv7).
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: Uuid,
            /// The object's id.
            pub object_id: String,
            /// 1, 2, 3 … per object.
            pub version: i32,
            /// `CREATE`, `UPDATE` or `DELETE`.
            pub kind: String,
            /// When the change was made.
            pub at: DateTimeUtc,
            /// The acting user.
            pub actor: Option<String>,
            /// The app the user acted through.
            pub app: Option<String>,
            /// The assignation the change belongs to.
            pub assignation_id: String,
            /// Order of this change inside its assignation.
            pub step: i32,
            /// Why the change was made.
            pub reason: Option<String>,
            /// The whole row after the change (before it, for a DELETE).
            pub snapshot: Json,
            /// The field diff against the previous version.
            pub changes: Json,
            /// Hex SHA-256 chaining this record to the previous one.
            pub hash: String,
        }

        /// Shadow tables have no relations.
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        /// History rows are written by [`crate::history::record_changes`], never through this model.
        impl ActiveModelBehavior for ActiveModel {}
    };
}
