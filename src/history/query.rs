//! History queries. Each reads one shadow table per entity through the indexes the migration creates:
//! (object_id, version) for one object, (assignation_id, step) for an assignation, (at) for time.

use chrono::{DateTime, Utc};
use entity::assignation;
use entity::history::{HISTORY_COLUMNS, HistoryEntity, HistoryKind, HistoryRow};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value as Json;

use crate::error::AppResult;

/// One page of a list: the items, whether more follow, and the total count.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The items, at most the page size.
    pub items: Vec<T>,
    /// Whether items follow the last one.
    pub has_next: bool,
    /// How many items the whole list holds.
    pub total: u64,
}

pub(crate) fn history_select(entity: HistoryEntity) -> SelectStatement {
    Query::select()
        .columns(HISTORY_COLUMNS.map(Alias::new))
        .from(Alias::new(entity.history_table()))
        .to_owned()
}

pub(crate) async fn fetch<C: ConnectionTrait>(
    db: &C,
    select: &SelectStatement,
) -> AppResult<Vec<HistoryRow>> {
    let stmt = db.get_database_backend().build(select);
    Ok(HistoryRow::find_by_statement(stmt).all(db).await?)
}

pub(crate) async fn count<C: ConnectionTrait>(db: &C, select: SelectStatement) -> AppResult<u64> {
    let counted = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
        .from_subquery(select, Alias::new("counted"))
        .to_owned();
    let row = db.query_one(&counted).await?;
    let n: i64 = match row {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// One object's records, newest first, `first` of them after version `before_version`.
///
/// # Errors
/// Database errors.
pub async fn object_history<C: ConnectionTrait>(
    db: &C,
    entity: HistoryEntity,
    object_id: &str,
    first: u64,
    before_version: Option<i32>,
) -> AppResult<Page<HistoryRow>> {
    let mut select = history_select(entity);
    select.and_where(Expr::col(Alias::new("object_id")).eq(object_id));
    let total = count(
        db,
        Query::select()
            .column(Alias::new("id"))
            .from(Alias::new(entity.history_table()))
            .and_where(Expr::col(Alias::new("object_id")).eq(object_id))
            .to_owned(),
    )
    .await?;
    if let Some(version) = before_version {
        select.and_where(Expr::col(Alias::new("version")).lt(version));
    }
    select
        .order_by(Alias::new("version"), Order::Desc)
        .limit(first + 1);
    let mut items = fetch(db, &select).await?;
    let has_next = items.len() as u64 > first;
    items.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    Ok(Page {
        items,
        has_next,
        total,
    })
}

/// The snapshot of an object as it was at `at`: its latest record at or before then, unless that record
/// is a DELETE (or there is none).
///
/// # Errors
/// Database errors.
pub async fn as_of<C: ConnectionTrait>(
    db: &C,
    entity: HistoryEntity,
    object_id: &str,
    at: DateTime<Utc>,
) -> AppResult<Option<Json>> {
    let mut select = history_select(entity);
    select
        .and_where(Expr::col(Alias::new("object_id")).eq(object_id))
        .and_where(Expr::col(Alias::new("at")).lte(at))
        .order_by(Alias::new("version"), Order::Desc)
        .limit(1);
    let row = fetch(db, &select).await?.into_iter().next();
    Ok(row
        .filter(|r| r.history_kind() != HistoryKind::Delete)
        .map(|r| r.snapshot))
}

/// Assignations the API shows: those holding a change, and reverts (even of nothing).
fn visible() -> Condition {
    Condition::any()
        .add(assignation::Column::ChangeCount.gt(0))
        .add(assignation::Column::Reverts.is_not_null())
}

/// An assignation, if it holds at least one change or is a revert.
///
/// # Errors
/// Database errors.
pub async fn find_assignation<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> AppResult<Option<assignation::Model>> {
    // An id no request could have carried names nothing (and may hold bytes a backend refuses).
    if !crate::context::is_valid_assignation_id(id) {
        return Ok(None);
    }
    Ok(assignation::Entity::find_by_id(id.to_owned())
        .filter(visible())
        .one(db)
        .await?)
}

/// An assignation's records in step order across every table it touched, `first` of them after step
/// `after_step`.
///
/// # Errors
/// Database errors.
pub async fn assignation_records<C: ConnectionTrait>(
    db: &C,
    assignation: &assignation::Model,
    first: u64,
    after_step: Option<i32>,
) -> AppResult<Page<(HistoryEntity, HistoryRow)>> {
    let mut merged = Vec::new();
    for entity in HistoryEntity::from_mask(assignation.entity_mask) {
        let mut select = history_select(entity);
        select.and_where(Expr::col(Alias::new("assignation_id")).eq(assignation.id.as_str()));
        if let Some(step) = after_step {
            select.and_where(Expr::col(Alias::new("step")).gt(step));
        }
        select
            .order_by(Alias::new("step"), Order::Asc)
            .limit(first + 1);
        merged.extend(fetch(db, &select).await?.into_iter().map(|r| (entity, r)));
    }
    merged.sort_by_key(|(_, r)| r.step);
    let has_next = merged.len() as u64 > first;
    merged.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    Ok(Page {
        items: merged,
        has_next,
        total: u64::try_from(assignation.change_count).unwrap_or(0),
    })
}

/// Filters of `assignations(...)`; `None` means any.
#[derive(Clone, Debug, Default)]
pub struct AssignationFilter {
    /// Started by this user.
    pub user: Option<String>,
    /// Started through this app.
    pub app: Option<String>,
    /// Touched this entity.
    pub entity: Option<HistoryEntity>,
    /// Touched this object (of `entity` when given, else of any entity).
    pub object_id: Option<String>,
    /// Started at or after.
    pub since: Option<DateTime<Utc>>,
    /// Started at or before.
    pub until: Option<DateTime<Utc>>,
    /// Reverted (true) or not (false).
    pub reverted: Option<bool>,
}

/// The keyset position of an assignation in the newest-first list.
pub type AssignationCursor = (DateTime<Utc>, String);

/// Assignations matching `filter`, newest first, `first` of them after `after`.
///
/// # Errors
/// Database errors.
pub async fn list_assignations<C: ConnectionTrait>(
    db: &C,
    filter: &AssignationFilter,
    first: u64,
    after: Option<AssignationCursor>,
) -> AppResult<Page<assignation::Model>> {
    use assignation::Column as A;
    let mut condition = Condition::all().add(visible());
    if let Some(user) = &filter.user {
        condition = condition.add(A::Actor.eq(user.as_str()));
    }
    if let Some(app) = &filter.app {
        condition = condition.add(A::App.eq(app.as_str()));
    }
    if let Some(entity) = filter.entity {
        condition = condition.add(Expr::col(A::EntityMask).bit_and(entity.bit()).ne(0));
    }
    if let Some(object_id) = &filter.object_id {
        let entities = match filter.entity {
            Some(e) => vec![e],
            None => HistoryEntity::ALL.to_vec(),
        };
        let mut any = Condition::any();
        for entity in entities {
            let touched = Query::select()
                .column(Alias::new("assignation_id"))
                .from(Alias::new(entity.history_table()))
                .and_where(Expr::col(Alias::new("object_id")).eq(object_id.as_str()))
                .to_owned();
            any = any.add(A::Id.in_subquery(touched));
        }
        condition = condition.add(any);
    }
    if let Some(since) = filter.since {
        condition = condition.add(A::StartedAt.gte(since));
    }
    if let Some(until) = filter.until {
        condition = condition.add(A::StartedAt.lte(until));
    }
    match filter.reverted {
        Some(true) => condition = condition.add(A::RevertedBy.is_not_null()),
        Some(false) => condition = condition.add(A::RevertedBy.is_null()),
        None => {}
    }
    let total = assignation::Entity::find()
        .filter(condition.clone())
        .count(db)
        .await?;
    if let Some((at, id)) = after {
        condition = condition.add(
            Condition::any()
                .add(A::StartedAt.lt(at))
                .add(Condition::all().add(A::StartedAt.eq(at)).add(A::Id.lt(id))),
        );
    }
    let mut items = assignation::Entity::find()
        .filter(condition)
        .order_by_desc(A::StartedAt)
        .order_by_desc(A::Id)
        .limit(first + 1)
        .all(db)
        .await?;
    let has_next = items.len() as u64 > first;
    items.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    Ok(Page {
        items,
        has_next,
        total,
    })
}
