//! The audit trail in GraphQL: `AuditEvent`, `auditEvents(...)`, `auditSummary`, `recordEvent`, and
//! the `TimelineEntry` union of `Project.timeline`.

use async_graphql::{Context, Enum, ErrorExtensions, ID, Json, Object, SimpleObject, Union};
use chrono::{DateTime, Utc};
use entity::audit_event;
use serde_json::Value;

use entity::HistoryEntity;
use sea_orm_history::EntitySet;

use super::history::HistoryRecord;
use super::pagination::{ListConnection, ListCursors, page_size};
use super::state;
use crate::audit::query::{self, EventFilter, TimelineEntry as Entry};
use crate::audit::{AuditKind as Kind, NewEvent};
use crate::context::RequestContext;
use crate::error::{AppError, AppResult, IntoGraphql};
use crate::service::validate;
use sea_orm_history::graphql::scalars::Timestamp;

/// What kind of thing an event records.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::audit::AuditKind")]
pub enum AuditKind {
    /// One mutation field, run successfully or not.
    Mutation,
    /// A successful login reported by an integration.
    Login,
    /// Refused credentials.
    LoginFailed,
    /// Written by `recordEvent` or the Rust API.
    Custom,
    /// A refused limit or a malformed request.
    Security,
    /// The server itself.
    System,
    /// A request slower than `--slow-request-ms`: its operation, the hash of its document, its
    /// duration and the time it spent in the database.
    Performance,
    /// An export of history or events: who, the filters, how many rows, the output's SHA-256.
    Export,
    /// An audited Rust function (a CLI command such as `prune`, `verify` or `migrate`, a job, a data
    /// migration): its masked arguments, result or error, logs, a panic's backtrace, notes.
    Function,
}

/// Whether what was recorded succeeded.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::audit::AuditStatus")]
pub enum AuditStatus {
    /// It succeeded.
    Success,
    /// It failed or was refused.
    Failure,
}

/// One audit event.
pub struct AuditEvent(pub audit_event::Model);

#[Object]
impl AuditEvent {
    /// UUIDv7.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// What kind of thing it records.
    async fn kind(&self) -> AuditKind {
        Kind::parse(&self.0.kind).map_or(AuditKind::System, Into::into)
    }
    /// The mutation field's name, or the event's name.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// Whether it succeeded.
    async fn status(&self) -> AuditStatus {
        if self.0.status == "SUCCESS" {
            AuditStatus::Success
        } else {
            AuditStatus::Failure
        }
    }
    /// When it happened (a mutation: when it started).
    async fn at(&self) -> Timestamp {
        Timestamp(self.0.at)
    }
    /// How long it took, in milliseconds.
    async fn duration_ms(&self) -> Option<i32> {
        self.0.duration_ms
    }
    /// The acting user.
    async fn user(&self) -> Option<&str> {
        self.0.actor.as_deref()
    }
    /// The app.
    async fn app(&self) -> Option<&str> {
        self.0.app.as_deref()
    }
    /// The request's assignation id (also for requests that changed nothing).
    async fn assignation_id(&self) -> Option<&str> {
        self.0.assignation_id.as_deref()
    }
    /// The request's assignation, or null when it holds no change (a query, a refused or failed
    /// request, an update that changed nothing).
    async fn assignation(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::history::Assignation>> {
        let Some(id) = self.0.assignation_id.as_deref() else {
            return Ok(None);
        };
        let (db, _) = state(ctx).gql()?;
        let Ok(id) = sea_orm_history::AssignationId::parse(id) else {
            return Ok(None);
        };
        sea_orm_history::query::find_assignation(db, &id)
            .await
            .map(|a| a.map(super::history::Assignation::new))
            .map_err(|e| e.extend())
    }
    /// The client's address.
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }
    /// The client's `User-Agent`.
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }
    /// The W3C trace the event happened in (32 hex digits: the client's `traceparent`, or one the
    /// server started), or null for an event outside any request or trace.
    async fn trace_id(&self) -> Option<&str> {
        self.0.trace_id.as_deref()
    }
    /// The server's span of that trace (16 hex digits), or null.
    async fn span_id(&self) -> Option<&str> {
        self.0.span_id.as_deref()
    }
    /// The mutation's arguments, with secret-looking fields masked as `"***"`.
    async fn input(&self) -> Option<Json<Value>> {
        self.0.input.clone().map(Json)
    }
    /// What it returned (for a mutation: the selection the client asked for, e.g. the id).
    async fn output(&self) -> Option<Json<Value>> {
        self.0.output.clone().map(Json)
    }
    /// The error code and message the client saw.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// Log lines emitted while it ran (warn and above by default).
    async fn logs(&self) -> Vec<String> {
        match &self.0.logs {
            Value::Array(lines) => lines
                .iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }
    /// The entity it concerns.
    async fn entity(&self) -> Option<HistoryEntity> {
        self.0.entity.as_deref().and_then(HistoryEntity::from_name)
    }
    /// The object it concerns.
    async fn object_id(&self) -> Option<ID> {
        self.0.object_id.clone().map(ID)
    }
    /// Free-form details (a custom event's, a refused login's reason, a panic's backtrace).
    async fn details(&self) -> Option<Json<Value>> {
        self.0.details.clone().map(Json)
    }
}

/// One count of [`AuditSummary`].
#[derive(SimpleObject, Clone, Debug)]
pub struct Count {
    /// What was counted (a kind, an action, a status, a user — empty for none — or a `YYYY-MM-DD` day).
    pub key: String,
    /// How many events.
    pub count: i32,
}

/// Counts of audit events.
#[derive(SimpleObject, Clone, Debug)]
pub struct AuditSummary {
    /// By kind.
    pub by_kind: Vec<Count>,
    /// By action.
    pub by_action: Vec<Count>,
    /// By status.
    pub by_status: Vec<Count>,
    /// By user.
    pub by_user: Vec<Count>,
    /// By UTC day, oldest first.
    pub by_day: Vec<Count>,
}

fn counts(pairs: Vec<(String, i64)>) -> Vec<Count> {
    pairs
        .into_iter()
        .map(|(key, n)| Count {
            key,
            count: i32::try_from(n).unwrap_or(i32::MAX),
        })
        .collect()
}

/// One entry of a project's timeline.
#[derive(Union)]
pub enum TimelineEntry {
    /// A history record of the project or of an object under it.
    Record(HistoryRecord),
    /// An audit event about the project or an object under it.
    Event(AuditEvent),
}

fn event_cursor(s: &str) -> Option<(DateTime<Utc>, uuid::Uuid)> {
    let (micros, id) = s.split_once('|')?;
    Some((
        DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?,
        uuid::Uuid::parse_str(id).ok()?,
    ))
}

fn cursor_of(key: (DateTime<Utc>, uuid::Uuid)) -> String {
    format!("{}|{}", key.0.timestamp_micros(), key.1)
}

/// `Project.timeline`: history records and events of the project and everything under it.
///
/// # Errors
/// `BAD_INPUT` for a bad cursor; `LIMIT_EXCEEDED` for `first` above the maximum; database errors.
pub async fn project_timeline(
    ctx: &Context<'_>,
    project_id: &str,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<ListConnection<TimelineEntry>> {
    // The timeline holds audit events: anonymous readers may not see it either.
    may_read_audit(ctx).gql()?;
    let (db, limits) = state(ctx).gql()?;
    let first = page_size(limits, first)?;
    let cursors = ListCursors::of_object("timeline", project_id);
    let after = cursors.after(after.as_deref(), event_cursor)?;
    let page = query::timeline(db, project_id, first, after).await.gql()?;
    // The records' diffs are read in one batch per entity.
    let records: Vec<(HistoryEntity, sea_orm_history::HistoryRow)> = page
        .items
        .iter()
        .filter_map(|entry| match entry {
            Entry::Record(entity, row) => Some((*entity, row.clone())),
            Entry::Event(_) => None,
        })
        .collect();
    let mut records = HistoryRecord::load(db, records).await?.into_iter();
    let keys: Vec<String> = page.items.iter().map(|e| cursor_of(e.key())).collect();
    let mut items = Vec::with_capacity(page.items.len());
    for (key, entry) in keys.into_iter().zip(page.items) {
        let node = match entry {
            Entry::Record(..) => match records.next() {
                Some(record) => TimelineEntry::Record(record),
                None => continue,
            },
            Entry::Event(event) => TimelineEntry::Event(AuditEvent(event)),
        };
        items.push((key, node));
    }
    let page = sea_orm_history::query::Page {
        items,
        has_next: page.has_next,
        total: page.total,
    };
    Ok(cursors.connection(page, |(key, _)| key.clone(), |(_, node)| node))
}

/// Audit events are not for anonymous readers: they name users and addresses.
fn may_read_audit(ctx: &Context<'_>) -> AppResult<()> {
    match ctx.data_opt::<RequestContext>() {
        Some(request) if !request.principal.may_write() => Err(AppError::Unauthenticated(
            "reading the audit trail needs a bearer token".into(),
        )),
        _ => Ok(()),
    }
}

/// The audit queries.
#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Audit events, newest first, filtered by any of kind, action, status, user, app, assignation,
    /// entity and object, time (`since` inclusive, `until` exclusive), and W3C trace (`traceId`).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "super::pagination::list_complexity(first, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        kind: Option<AuditKind>,
        action: Option<String>,
        status: Option<AuditStatus>,
        user: Option<String>,
        app: Option<String>,
        assignation_id: Option<String>,
        entity: Option<HistoryEntity>,
        object_id: Option<ID>,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        first: Option<i32>,
        after: Option<String>,
        trace_id: Option<String>,
    ) -> async_graphql::Result<ListConnection<AuditEvent>> {
        may_read_audit(ctx).gql()?;
        let (db, limits) = state(ctx).gql()?;
        for (field, value, max) in [
            ("action", action.as_deref(), 200),
            ("user", user.as_deref(), 200),
            ("app", app.as_deref(), 200),
            ("assignationId", assignation_id.as_deref(), 128),
            ("objectId", object_id.as_ref().map(|id| id.as_str()), 80),
            ("traceId", trace_id.as_deref(), 32),
        ] {
            if let Some(value) = value {
                validate::key(field, value, max).gql()?;
            }
        }
        let trace_id = trace_id
            .as_deref()
            .map(crate::export::trace_id)
            .transpose()
            .gql()?;
        let first = page_size(limits, first)?;
        let cursors = ListCursors::of("auditEvents");
        let after = cursors.after(after.as_deref(), event_cursor)?;
        let filter = EventFilter {
            kind: kind.map(Kind::from),
            action,
            status: status.map(crate::audit::AuditStatus::from),
            user,
            app,
            assignation_id,
            entity,
            object_id: object_id.map(|id| id.0),
            trace_id,
            since: since.map(Timestamp::utc),
            until: until.map(Timestamp::utc),
        };
        let page = query::list_events(db, &filter, first, after).await.gql()?;
        Ok(cursors.connection(page, |event| cursor_of((event.at, event.id)), AuditEvent))
    }

    /// Counts of audit events by kind, action, status, user and day, between `since` and `until`,
    /// of one user when given.
    async fn audit_summary(
        &self,
        ctx: &Context<'_>,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        user: Option<String>,
    ) -> async_graphql::Result<AuditSummary> {
        may_read_audit(ctx).gql()?;
        let (db, _) = state(ctx).gql()?;
        if let Some(user) = &user {
            validate::key("user", user, 200).gql()?;
        }
        let summary = query::summary(
            db,
            since.map(Timestamp::utc),
            until.map(Timestamp::utc),
            user,
        )
        .await
        .gql()?;
        Ok(AuditSummary {
            by_kind: counts(summary.by_kind),
            by_action: counts(summary.by_action),
            by_status: counts(summary.by_status),
            by_user: counts(summary.by_user),
            by_day: counts(summary.by_day),
        })
    }
}

/// The audit mutations.
#[derive(Default)]
pub struct AuditMutation;

#[Object]
impl AuditMutation {
    /// Records a `CUSTOM` event (an export, a view of sensitive data, a business event) by the
    /// request's user, optionally about one object; it shows in that object's project timeline.
    async fn record_event(
        &self,
        ctx: &Context<'_>,
        action: String,
        entity: Option<HistoryEntity>,
        object_id: Option<ID>,
        details: Option<Json<Value>>,
    ) -> async_graphql::Result<AuditEvent> {
        let (db, _) = state(ctx).gql()?;
        validate::text("action", &action, 1, 200).gql()?;
        let mut event = NewEvent::new(Kind::Custom, action);
        match (entity, object_id) {
            (Some(entity), Some(id)) => {
                validate::key("objectId", &id, 80).gql()?;
                event = event.object(entity, id.0);
            }
            (None, None) => {}
            _ => {
                return Err(AppError::BadInput(
                    "give both entity and objectId, or neither".into(),
                ))
                .gql();
            }
        }
        if let Some(Json(mut details)) = details {
            validate::json_without_nul("details", &details).gql()?;
            if let Some(settings) = ctx.data_opt::<crate::config::AuditSettings>() {
                crate::audit::mask(&mut details, &settings.mask);
            }
            event = event.details(details);
        }
        if let Some(request) = ctx.data_opt::<RequestContext>() {
            event = event.from_request(request);
        }
        let model = crate::audit::record(db, event)
            .await
            .map_err(AppError::from)
            .gql()?;
        Ok(AuditEvent(model))
    }
}
