//! Reading the audit trail: events by filter, newest first, in keyset pages over the `(at, id)` index;
//! counts by kind, action, status, user and day; and a project's timeline, which merges the history
//! records and events of the project and everything under it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::{HistoryEntity, audit_event};
use sea_orm::sea_query::{Expr, Order};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use sea_orm_history::query::Page;
use sea_orm_history::{EntitySet, HistoryRow};

use super::{AuditKind, AuditStatus};
use crate::error::AppResult;

/// Which events to list. `None` is "any".
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    /// The kind.
    pub kind: Option<AuditKind>,
    /// The action (mutation field or event name).
    pub action: Option<String>,
    /// Succeeded or failed.
    pub status: Option<AuditStatus>,
    /// The acting user.
    pub user: Option<String>,
    /// The app.
    pub app: Option<String>,
    /// The assignation.
    pub assignation_id: Option<String>,
    /// The entity concerned.
    pub entity: Option<HistoryEntity>,
    /// The object concerned.
    pub object_id: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
    /// The W3C trace (32 hex digits).
    pub trace_id: Option<String>,
}

impl EventFilter {
    /// The condition of the filter on `audit_event`.
    pub(crate) fn condition(&self) -> Condition {
        let mut c = Condition::all();
        let eq = |c: Condition, col: audit_event::Column, v: &Option<String>| match v {
            Some(v) => c.add(col.eq(v.clone())),
            None => c,
        };
        c = eq(
            c,
            audit_event::Column::Kind,
            &self.kind.map(|k| k.as_str().to_owned()),
        );
        c = eq(c, audit_event::Column::Action, &self.action);
        c = eq(
            c,
            audit_event::Column::Status,
            &self.status.map(|s| s.as_str().to_owned()),
        );
        c = eq(c, audit_event::Column::Actor, &self.user);
        c = eq(c, audit_event::Column::App, &self.app);
        c = eq(c, audit_event::Column::AssignationId, &self.assignation_id);
        c = eq(
            c,
            audit_event::Column::Entity,
            &self.entity.map(|e| e.name().to_owned()),
        );
        c = eq(c, audit_event::Column::ObjectId, &self.object_id);
        c = eq(c, audit_event::Column::TraceId, &self.trace_id);
        if let Some(since) = self.since {
            c = c.add(audit_event::Column::At.gte(since));
        }
        if let Some(until) = self.until {
            c = c.add(audit_event::Column::At.lt(until));
        }
        c
    }
}

pub(crate) use sea_orm_history::query::past;

/// Events matching `filter`, newest first, `first` of them after the cursor `(at, id)`.
///
/// # Errors
/// Database errors.
pub async fn list_events<C: ConnectionTrait>(
    db: &C,
    filter: &EventFilter,
    first: u64,
    after: Option<(DateTime<Utc>, uuid::Uuid)>,
) -> AppResult<Page<audit_event::Model>> {
    let condition = filter.condition();
    let total =
        sea_orm::PaginatorTrait::count(audit_event::Entity::find().filter(condition.clone()), db)
            .await?;
    let mut select = audit_event::Entity::find().filter(condition);
    if let Some((at, id)) = after {
        select = select.filter(past(at, id, Order::Desc));
    }
    let probe = select
        .order_by(audit_event::Column::At, Order::Desc)
        .order_by(audit_event::Column::Id, Order::Desc)
        .limit(first + 1)
        .all(db)
        .await?;
    Ok(Page::from_probe(probe, first, total))
}

/// Counts of events by kind, action, status, user and UTC day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// By kind.
    pub by_kind: Vec<(String, i64)>,
    /// By action.
    pub by_action: Vec<(String, i64)>,
    /// By status.
    pub by_status: Vec<(String, i64)>,
    /// By user (`""` for none).
    pub by_user: Vec<(String, i64)>,
    /// By day, `YYYY-MM-DD`.
    pub by_day: Vec<(String, i64)>,
}

/// Counts events between `since` and `until`, of `user` when given.
///
/// # Errors
/// Database errors.
pub async fn summary<C: ConnectionTrait>(
    db: &C,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    user: Option<String>,
) -> AppResult<Summary> {
    let filter = EventFilter {
        since,
        until,
        user,
        ..EventFilter::default()
    };
    let day = match db.get_database_backend() {
        DbBackend::Postgres => "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        DbBackend::MySql => "DATE_FORMAT(at, '%Y-%m-%d')",
        _ => "substr(at, 1, 10)",
    };
    let mut out = Summary::default();
    for (key, target) in [
        ("kind", &mut out.by_kind),
        ("action", &mut out.by_action),
        ("status", &mut out.by_status),
        ("COALESCE(actor, '')", &mut out.by_user),
        (day, &mut out.by_day),
    ] {
        let select = audit_event::Entity::find()
            .filter(filter.condition())
            .select_only()
            .expr_as(Expr::cust(key), "k")
            .expr_as(Expr::cust("COUNT(*)"), "n")
            .group_by(Expr::cust(key))
            .order_by(Expr::cust("COUNT(*)"), Order::Desc)
            .order_by(Expr::cust(key), Order::Asc)
            .limit(1000)
            .build(db.get_database_backend());
        for row in db.query_all_raw(select).await? {
            let k: String = row.try_get("", "k")?;
            let n: i64 = row.try_get("", "n")?;
            target.push((k, n));
        }
    }
    out.by_day.sort();
    Ok(out)
}

/// One entry of a project's timeline.
#[derive(Clone, Debug)]
// A page holds at most a hundred entries, each read from the database: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum TimelineEntry {
    /// A history record of the project or of an object under it.
    Record(HistoryEntity, HistoryRow),
    /// An audit event about the project or an object under it.
    Event(audit_event::Model),
}

impl TimelineEntry {
    /// The sort key, newest first: time, then id.
    pub fn key(&self) -> (DateTime<Utc>, uuid::Uuid) {
        match self {
            Self::Record(_, row) => (row.at, row.id),
            Self::Event(event) => (event.at, event.id),
        }
    }
}

/// The history records and events of project `project_id` and everything under it, newest first,
/// `first` of them older than the cursor `(at, id)`: the records of the project's scope (see
/// `sea_orm_history::query::scope_history`) and the events of the same scope, `first + 1` of each,
/// merged.
///
/// # Errors
/// Database errors.
pub async fn timeline<C: ConnectionTrait>(
    db: &C,
    project_id: &str,
    first: u64,
    after: Option<(DateTime<Utc>, uuid::Uuid)>,
) -> AppResult<Page<TimelineEntry>> {
    let registry = HistoryEntity::registry()?;
    let records =
        sea_orm_history::query::scope_history(db, registry, project_id, first, after).await?;
    let mut total = records.total;
    let mut merged: BTreeMap<(DateTime<Utc>, uuid::Uuid), TimelineEntry> = BTreeMap::new();
    for (info, row) in records.items {
        if let Some(entity) = HistoryEntity::from_name(&info.name) {
            merged.insert((row.at, row.id), TimelineEntry::Record(entity, row));
        }
    }
    let scoped = audit_event::Entity::find().filter(audit_event::Column::ScopeId.eq(project_id));
    total += sea_orm::PaginatorTrait::count(scoped.clone(), db).await?;
    let mut events = scoped;
    if let Some((at, id)) = after {
        events = events.filter(past(at, id, Order::Desc));
    }
    for event in events
        .order_by(audit_event::Column::At, Order::Desc)
        .order_by(audit_event::Column::Id, Order::Desc)
        .limit(first + 1)
        .all(db)
        .await?
    {
        merged.insert((event.at, event.id), TimelineEntry::Event(event));
    }
    let probe: Vec<TimelineEntry> = merged.into_values().rev().collect();
    let mut page = Page::from_probe(probe, first, total);
    page.has_next |= records.has_next;
    Ok(page)
}
