//! Reading history back: one object's records and its scope, an object as of an instant, the
//! snapshots records are diffed against, assignations (one, its records in step order across every
//! history table, a filtered list), each through the indexes [`migration`](crate) helpers create:
//! (object id, version) for an object, (assignation id, step) for an assignation, (at) for time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde_json::Value as Json;

use crate::capture::history_select;
use crate::context::AssignationId;
use crate::entity::{EntityInfo, ScopeRule};
use crate::error::{HistoryError, HistoryResult};
use crate::record::{HistoryKind, HistoryRow};
use crate::registry::Registry;
use crate::tables::assignation;
use crate::writer::{latest_scope, quote};

/// One page of a list: the items, whether more follow, and how many the whole list holds.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The items, at most the page size.
    pub items: Vec<T>,
    /// Whether items follow the last one.
    pub has_next: bool,
    /// How many items the whole list holds.
    pub total: u64,
}

impl<T> Page<T> {
    /// The page of `first` items out of `probe`, a read of up to `first + 1` items (the extra one says
    /// whether more follow).
    pub fn from_probe(mut probe: Vec<T>, first: u64, total: u64) -> Self {
        let has_next = probe.len() as u64 > first;
        probe.truncate(usize::try_from(first).unwrap_or(usize::MAX));
        Self {
            items: probe,
            has_next,
            total,
        }
    }

    /// The same page with each item mapped.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next: self.has_next,
            total: self.total,
        }
    }
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

pub(crate) async fn fetch<C: ConnectionTrait>(
    db: &C,
    select: &SelectStatement,
) -> HistoryResult<Vec<HistoryRow>> {
    let stmt = db.get_database_backend().build(select);
    Ok(HistoryRow::find_by_statement(stmt).all(db).await?)
}

/// How many rows `select` gives.
///
/// # Errors
/// Database errors.
pub async fn count<C: ConnectionTrait>(db: &C, select: SelectStatement) -> HistoryResult<u64> {
    let counted = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), col("n"))
        .from_subquery(select, col("counted"))
        .to_owned();
    let n: i64 = match db.query_one(&counted).await? {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// One object's records, newest first: `first` of them before version `before_version`.
///
/// The page's total is counted from the ends of the object's versions, not its rows: versions are
/// gapless and retention removes a prefix of them, so an object holds its oldest to its latest
/// version, each once (`verify` reports a table where that does not hold). Both ends are read from
/// the top and bottom of the `(object id, version)` index however long the history (on SQLite,
/// which answers one `MIN` or `MAX` from the index, the object's index entries are read).
///
/// # Errors
/// Database errors.
pub async fn object_history<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    object_id: &str,
    first: u64,
    before_version: Option<i32>,
) -> HistoryResult<Page<HistoryRow>> {
    let ends = Query::select()
        .expr_as(Expr::col(col("version")).max(), col("latest"))
        .expr_as(Expr::col(col("version")).min(), col("oldest"))
        .from(col(&info.history_table))
        .and_where(Expr::col(col("object_id")).eq(object_id))
        .to_owned();
    let total = match db.query_one(&ends).await? {
        Some(row) => {
            let latest: Option<i32> = row.try_get("", "latest")?;
            let oldest: Option<i32> = row.try_get("", "oldest")?;
            match (latest, oldest) {
                (Some(latest), Some(oldest)) => {
                    u64::try_from(i64::from(latest) - i64::from(oldest) + 1).unwrap_or(0)
                }
                _ => 0,
            }
        }
        None => 0,
    };
    let mut select = history_select(info);
    select.and_where(Expr::col(col("object_id")).eq(object_id));
    if let Some(version) = before_version {
        select.and_where(Expr::col(col("version")).lt(version));
    }
    select
        .order_by(col("version"), Order::Desc)
        .limit(first + 1);
    Ok(Page::from_probe(fetch(db, &select).await?, first, total))
}

/// The scope of `object_id`'s records in `info` (an object's records keep the scope of its first).
/// For a scope root (`historized!(scope_root = true)`), the object itself, without a read (whether
/// or not it has records). Otherwise the latest record's `scope_id`, read from the top of the
/// `(object id, version)` index however long the object's history: `None` when the object has no
/// record with a scope (none at all, or an entity declared without `scope`).
///
/// # Errors
/// Database errors.
pub async fn object_scope<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    object_id: &str,
) -> HistoryResult<Option<String>> {
    if info.scope == ScopeRule::Root {
        return Ok(Some(object_id.to_owned()));
    }
    // The writer's own lookup of a scope, as a query of its own.
    let backend = db.get_database_backend();
    let object = if backend == DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let sql = format!(
        "SELECT {} AS scope_id",
        latest_scope(backend, &quote(backend, &info.history_table), object)
    );
    let statement = Statement::from_sql_and_values(backend, sql, [object_id.into()]);
    match db.query_one_raw(statement).await? {
        Some(row) => Ok(row.try_get("", "scope_id")?),
        None => Ok(None),
    }
}

/// The snapshot of each `(object, version)` of `info` that exists, for diffs against the record that
/// follows it.
///
/// # Errors
/// Database errors.
pub async fn snapshots_at<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    wanted: &[(String, i32)],
) -> HistoryResult<HashMap<(String, i32), HistoryRow>> {
    let mut found = HashMap::new();
    for chunk in wanted.chunks(crate::rows::ID_CHUNK) {
        let any = chunk
            .iter()
            .fold(Condition::any(), |any, (object, version)| {
                any.add(
                    Condition::all()
                        .add(Expr::col(col("object_id")).eq(object.as_str()))
                        .add(Expr::col(col("version")).eq(*version)),
                )
            });
        let mut select = history_select(info);
        select.cond_where(any);
        for row in fetch(db, &select).await? {
            found.insert((row.object_id.clone(), row.version), row);
        }
    }
    Ok(found)
}

/// The snapshots that `rows` (records of `info`) follow, by `(object, version)` of the record: what
/// their field diffs are computed against. A first version has none.
///
/// # Errors
/// Database errors.
pub async fn previous_snapshots<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    rows: &[HistoryRow],
) -> HistoryResult<HashMap<(String, i32), Json>> {
    let wanted: Vec<(String, i32)> = rows
        .iter()
        .filter(|r| r.version > 1 && r.kind == HistoryKind::Update)
        .map(|r| (r.object_id.clone(), r.version - 1))
        .collect();
    Ok(snapshots_at(db, info, &wanted)
        .await?
        .into_iter()
        .map(|((object, version), row)| ((object, version + 1), row.snapshot))
        .collect())
}

/// The snapshot of an object as it was at `at`: its latest record at or before then, unless that
/// record is a DELETE (or there is none).
///
/// # Errors
/// Database errors.
pub async fn as_of<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    object_id: &str,
    at: DateTime<Utc>,
) -> HistoryResult<Option<Json>> {
    let mut select = history_select(info);
    select
        .and_where(Expr::col(col("object_id")).eq(object_id))
        .and_where(Expr::col(col("at")).lte(at))
        .order_by(col("version"), Order::Desc)
        .limit(1);
    let row = fetch(db, &select).await?.into_iter().next();
    Ok(row
        .filter(|r| r.kind != HistoryKind::Delete)
        .map(|r| r.snapshot))
}

/// The model of `E` `object_id` was at `at` (see [`as_of`]).
///
/// # Errors
/// Database errors; a snapshot that does not fit the model.
pub async fn model_as_of<E, C>(
    db: &C,
    registry: &Registry,
    object_id: &str,
    at: DateTime<Utc>,
) -> HistoryResult<Option<E::Model>>
where
    E: EntityTrait,
    E::ActiveModel: sea_orm::TryIntoModel<E::Model>,
    C: ConnectionTrait,
{
    let info = registry.of::<E>()?;
    match as_of(db, info, object_id, at).await? {
        Some(snapshot) => info.model_of::<E>(&snapshot).map(Some),
        None => Ok(None),
    }
}

/// Assignations that are shown: those holding a change, and reverts (even of nothing).
fn visible() -> Condition {
    Condition::any()
        .add(assignation::Column::ChangeCount.gt(0))
        .add(assignation::Column::Reverts.is_not_null())
}

/// An assignation, if it holds a change or is a revert.
///
/// # Errors
/// Database errors.
pub async fn find_assignation<C: ConnectionTrait>(
    db: &C,
    id: &AssignationId,
) -> HistoryResult<Option<assignation::Model>> {
    Ok(assignation::Entity::find_by_id(id.as_str().to_owned())
        .filter(visible())
        .one(db)
        .await?)
}

/// The entities an assignation changed, parents first.
///
/// # Errors
/// Database errors.
pub async fn entities_of<'r, C: ConnectionTrait>(
    db: &C,
    registry: &'r Registry,
    assignation_id: &str,
) -> HistoryResult<Vec<&'r EntityInfo>> {
    let mut found = Vec::new();
    for info in registry.entities() {
        let probe = Query::select()
            .expr(Expr::val(1))
            .from(col(&info.history_table))
            .and_where(Expr::col(col("assignation_id")).eq(assignation_id))
            .limit(1)
            .to_owned();
        if db.query_one(&probe).await?.is_some() {
            found.push(info);
        }
    }
    Ok(found)
}

/// An assignation's records in step order across every history table, `first` of them after step
/// `after_step`.
///
/// # Errors
/// Database errors.
pub async fn assignation_records<'r, C: ConnectionTrait>(
    db: &C,
    registry: &'r Registry,
    assignation: &assignation::Model,
    first: u64,
    after_step: Option<i32>,
) -> HistoryResult<Page<(&'r EntityInfo, HistoryRow)>> {
    let mut merged = Vec::new();
    for info in registry.entities() {
        let mut select = history_select(info);
        select.and_where(Expr::col(col("assignation_id")).eq(assignation.id.as_str()));
        if let Some(step) = after_step {
            select.and_where(Expr::col(col("step")).gt(step));
        }
        select.order_by(col("step"), Order::Asc).limit(first + 1);
        merged.extend(fetch(db, &select).await?.into_iter().map(|r| (info, r)));
    }
    merged.sort_by_key(|(_, r)| r.step);
    Ok(Page::from_probe(
        merged,
        first,
        u64::try_from(assignation.change_count).unwrap_or(0),
    ))
}

/// The rows past the keyset position `(at, id)` of a table with `at` and `id` columns (history tables,
/// and any table keyed the same way): older ones for newest-first pages (`Order::Desc`), newer ones
/// otherwise.
pub fn past(at: DateTime<Utc>, id: uuid::Uuid, order: Order) -> Condition {
    let (at_column, id_column) = (Expr::col(col("at")), Expr::col(col("id")));
    let (at_past, id_past) = match order {
        Order::Desc => (at_column.clone().lt(at), id_column.lt(id)),
        _ => (at_column.clone().gt(at), id_column.gt(id)),
    };
    Condition::any()
        .add(at_past)
        .add(Condition::all().add(at_column.eq(at)).add(id_past))
}

/// The records of every object in scope `scope_id` (see [`crate::Declaration::scope`]), newest first,
/// `first` of them past `after` (`(at, id)`): each history table is read through its `(scope_id, at)`
/// index, `first + 1` rows each, and merged.
///
/// # Errors
/// Database errors.
pub async fn scope_history<'r, C: ConnectionTrait>(
    db: &C,
    registry: &'r Registry,
    scope_id: &str,
    first: u64,
    after: Option<(DateTime<Utc>, uuid::Uuid)>,
) -> HistoryResult<Page<(&'r EntityInfo, HistoryRow)>> {
    let scoped = registry
        .entities()
        .iter()
        .filter(|info| info.scope != crate::entity::ScopeRule::None);
    keyed_history(db, scoped, "scope_id", scope_id, Order::Desc, first, after).await
}

/// The records made in the W3C trace `trace_id` (see [`crate::Trace`]), across every history table,
/// oldest first, `first` of them past `after` (`(at, id)`): each table is read through its
/// `(trace_id)` index, `first + 1` rows each, and merged.
///
/// # Errors
/// Database errors.
pub async fn trace_history<'r, C: ConnectionTrait>(
    db: &C,
    registry: &'r Registry,
    trace_id: &str,
    first: u64,
    after: Option<(DateTime<Utc>, uuid::Uuid)>,
) -> HistoryResult<Page<(&'r EntityInfo, HistoryRow)>> {
    let all = registry.entities().iter();
    keyed_history(db, all, "trace_id", trace_id, Order::Asc, first, after).await
}

/// The records of the tables `infos` whose `column` is `value`, by `(at, id)` in `order`, `first` of
/// them past `after`: `first + 1` rows of each table, merged.
async fn keyed_history<'r, C: ConnectionTrait>(
    db: &C,
    infos: impl Iterator<Item = &'r EntityInfo>,
    column: &str,
    value: &str,
    order: Order,
    first: u64,
    after: Option<(DateTime<Utc>, uuid::Uuid)>,
) -> HistoryResult<Page<(&'r EntityInfo, HistoryRow)>> {
    let newest_first = matches!(order, Order::Desc);
    let mut merged: Vec<(&EntityInfo, HistoryRow)> = Vec::new();
    let mut total = 0;
    for info in infos {
        let mut select = history_select(info);
        select.and_where(Expr::col(col(column)).eq(value));
        total += count(db, select.clone()).await?;
        if let Some((at, id)) = after {
            select.cond_where(past(at, id, order.clone()));
        }
        select
            .order_by(col("at"), order.clone())
            .order_by(col("id"), order.clone())
            .limit(first + 1);
        merged.extend(fetch(db, &select).await?.into_iter().map(|r| (info, r)));
    }
    merged.sort_by_key(|(_, r)| (r.at, r.id));
    if newest_first {
        merged.reverse();
    }
    Ok(Page::from_probe(merged, first, total))
}

/// Filters of [`list_assignations`]; `None` means any.
#[derive(Clone, Debug, Default)]
pub struct AssignationFilter {
    /// Started by this user.
    pub user: Option<String>,
    /// Started through this app.
    pub app: Option<String>,
    /// Changed this entity (its name).
    pub entity: Option<String>,
    /// Changed this object (of `entity` when given, else of any entity).
    pub object_id: Option<String>,
    /// Started at or after.
    pub since: Option<DateTime<Utc>>,
    /// Started at or before.
    pub until: Option<DateTime<Utc>>,
    /// Reverted (true) or not (false).
    pub reverted: Option<bool>,
    /// In the tree of this root (the root itself included).
    pub root_id: Option<String>,
}

/// The keyset position of an assignation in the newest-first list: when it started, its id.
pub type AssignationCursor = (DateTime<Utc>, String);

/// Assignations matching `filter`, newest first, `first` of them after `after`.
///
/// # Errors
/// Database errors.
pub async fn list_assignations<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    filter: &AssignationFilter,
    first: u64,
    after: Option<AssignationCursor>,
) -> HistoryResult<Page<assignation::Model>> {
    use assignation::Column as A;
    let mut condition = Condition::all().add(visible());
    if let Some(user) = &filter.user {
        condition = condition.add(A::Actor.eq(user.as_str()));
    }
    if let Some(app) = &filter.app {
        condition = condition.add(A::App.eq(app.as_str()));
    }
    let entities: Vec<&EntityInfo> = match &filter.entity {
        Some(name) => registry.get(name).into_iter().collect(),
        None => registry.entities().iter().collect(),
    };
    if filter.entity.is_some() || filter.object_id.is_some() {
        let mut any = Condition::any();
        for info in &entities {
            let mut touched = Query::select();
            touched
                .column(col("assignation_id"))
                .from(col(&info.history_table));
            if let Some(object_id) = &filter.object_id {
                touched.and_where(Expr::col(col("object_id")).eq(object_id.as_str()));
            }
            any = any.add(A::Id.in_subquery(touched));
        }
        // An unknown entity matches nothing.
        condition = condition.add(if entities.is_empty() {
            Condition::all().add(Expr::val(1).eq(0))
        } else {
            any
        });
    }
    if let Some(since) = filter.since {
        condition = condition.add(A::StartedAt.gte(since));
    }
    if let Some(until) = filter.until {
        condition = condition.add(A::StartedAt.lte(until));
    }
    if let Some(root) = &filter.root_id {
        // The root by id, the rest by the root index, which covers only the rows that are not their
        // own root (as written here: the index's condition, so that the database may use it).
        condition = condition.add(
            Condition::any().add(A::Id.eq(root.as_str())).add(
                Condition::all()
                    .add(A::RootId.eq(root.as_str()))
                    .add(Expr::col(A::RootId).ne(Expr::col(A::Id))),
            ),
        );
    }
    match filter.reverted {
        Some(true) => condition = condition.add(A::RevertedBy.is_not_null()),
        Some(false) => condition = condition.add(A::RevertedBy.is_null()),
        None => {}
    }
    assignation_page(db, condition, Order::Desc, first, after).await
}

/// One keyset page of the assignations `condition` selects, ordered by (start, id) in `order`:
/// `first` of them past `after`, with the total.
async fn assignation_page<C: ConnectionTrait>(
    db: &C,
    mut condition: Condition,
    order: Order,
    first: u64,
    after: Option<AssignationCursor>,
) -> HistoryResult<Page<assignation::Model>> {
    use assignation::Column as A;
    let total = assignation::Entity::find()
        .filter(condition.clone())
        .count(db)
        .await?;
    if let Some((at, id)) = after {
        let (at_past, id_past) = match order {
            Order::Desc => (A::StartedAt.lt(at), A::Id.lt(id)),
            _ => (A::StartedAt.gt(at), A::Id.gt(id)),
        };
        condition = condition.add(
            Condition::any()
                .add(at_past)
                .add(Condition::all().add(A::StartedAt.eq(at)).add(id_past)),
        );
    }
    let probe = assignation::Entity::find()
        .filter(condition)
        .order_by(A::StartedAt, order.clone())
        .order_by(A::Id, order)
        .limit(first + 1)
        .all(db)
        .await?;
    Ok(Page::from_probe(probe, first, total))
}

/// The children of assignation `parent` (those it started that hold a change), oldest first, `first`
/// of them after `after`.
///
/// # Errors
/// Database errors.
pub async fn children<C: ConnectionTrait>(
    db: &C,
    parent: &str,
    first: u64,
    after: Option<AssignationCursor>,
) -> HistoryResult<Page<assignation::Model>> {
    use assignation::Column as A;
    let condition = Condition::all().add(visible()).add(A::ParentId.eq(parent));
    assignation_page(db, condition, Order::Asc, first, after).await
}

/// Every assignation under `root` (its children, theirs, …), read level by level; none of them
/// `root` itself.
///
/// # Errors
/// [`HistoryError::BadInput`] when there are more than `cap`; database errors.
pub async fn descendants<C: ConnectionTrait>(
    db: &C,
    root: &str,
    cap: usize,
) -> HistoryResult<Vec<assignation::Model>> {
    use assignation::Column as A;
    let mut found: Vec<assignation::Model> = Vec::new();
    let mut seen: std::collections::HashSet<String> =
        std::collections::HashSet::from([root.to_owned()]);
    let mut level = vec![root.to_owned()];
    while !level.is_empty() {
        let mut next = Vec::new();
        for chunk in level.chunks(500) {
            let rows = assignation::Entity::find()
                .filter(A::ParentId.is_in(chunk.iter().cloned()))
                .order_by_asc(A::StartedAt)
                .order_by_asc(A::Id)
                .all(db)
                .await?;
            for row in rows {
                // A cycle cannot be built through the API, but a row is visited once regardless.
                if seen.insert(row.id.clone()) {
                    next.push(row.id.clone());
                    found.push(row);
                }
            }
            if found.len() > cap {
                return Err(HistoryError::BadInput(format!(
                    "the tree under {root} holds more than {cap} assignations (the cap is a setting)"
                )));
            }
        }
        level = next;
    }
    Ok(found)
}

/// The size of the tree under an assignation, itself included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeTotals {
    /// Assignations.
    pub assignations: u64,
    /// History records.
    pub changes: u64,
    /// Assignations already reverted.
    pub reverted: u64,
}

/// The totals of `top` and every assignation under it.
///
/// # Errors
/// As [`descendants`].
pub async fn tree_totals<C: ConnectionTrait>(
    db: &C,
    top: &assignation::Model,
    cap: usize,
) -> HistoryResult<TreeTotals> {
    let below = descendants(db, &top.id, cap).await?;
    let mut totals = TreeTotals::default();
    for a in std::iter::once(top).chain(&below) {
        if a.change_count == 0 && a.reverts.is_none() {
            continue;
        }
        totals.assignations += 1;
        totals.changes += u64::try_from(a.change_count).unwrap_or(0);
        totals.reverted += u64::from(a.reverted_by.is_some());
    }
    Ok(totals)
}

/// The select of every column of `info`'s history table, to add conditions and an order to and read
/// with [`fetch_rows`].
pub fn records_select(info: &EntityInfo) -> SelectStatement {
    crate::capture::history_select(info)
}

/// The history rows `select` (a [`records_select`]) reads.
///
/// # Errors
/// Database errors; [`crate::HistoryError::Malformed`] for a row of the wrong shape.
pub async fn fetch_rows<C: ConnectionTrait>(
    db: &C,
    select: &SelectStatement,
) -> HistoryResult<Vec<HistoryRow>> {
    fetch(db, select).await
}
