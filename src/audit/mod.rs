//! The audit trail: what was done and tried, beyond data changes.
//!
//! - [`NewEvent`] and [`record`]: the one writer of audit events, also the Rust API for code outside
//!   GraphQL (`chronicle::audit::record(&db, NewEvent::custom("export").user("alice"))`).
//! - [`audited`]: any async function recorded as a `FUNCTION` event (arguments, result, logs, panic,
//!   notes), as `prune`, `verify` and `migrate` are.
//! - [`mask`]: secret-looking argument values replaced by `"***"` before they are stored.
//! - [`capture`]: the `tracing` layer and task-local scope that collect the log lines (and a panic's
//!   message and backtrace) emitted while one mutation runs.
//! - [`query`]: listing events with filters, the summary, and a project's timeline.
//! - [`writer`]: the batching writer the hot path (one `MUTATION` event per mutation field) goes
//!   through: concurrent requests' events share one INSERT and one commit.

pub mod audited;
pub mod capture;
/// Listing events, the summary, and project timelines.
pub mod query;
pub mod writer;

use chrono::{DateTime, Utc};
use entity::{HistoryEntity, audit_event};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, IntoActiveModel};
use sea_orm_history::{ChangeContext, EntitySet, Trace, now};
use serde_json::Value as Json;

/// What kind of thing an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuditKind {
    /// One mutation field, run successfully or not.
    Mutation,
    /// A successful login (for integrations that report them).
    Login,
    /// Refused credentials.
    LoginFailed,
    /// Written by `recordEvent` or the Rust API.
    Custom,
    /// A refused limit or a malformed request.
    Security,
    /// The server itself (pruning, startup).
    System,
    /// A request slower than `--slow-request-ms`.
    Performance,
    /// An export of history or events (`chronicle export`, `GET /export/...`).
    Export,
    /// An audited Rust function ([`audited::Audited`]): a CLI command, a job, a data migration.
    Function,
}

impl AuditKind {
    /// Every kind.
    pub const ALL: [AuditKind; 9] = [
        Self::Mutation,
        Self::Login,
        Self::LoginFailed,
        Self::Custom,
        Self::Security,
        Self::System,
        Self::Performance,
        Self::Export,
        Self::Function,
    ];

    /// The stored and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mutation => "MUTATION",
            Self::Login => "LOGIN",
            Self::LoginFailed => "LOGIN_FAILED",
            Self::Custom => "CUSTOM",
            Self::Security => "SECURITY",
            Self::System => "SYSTEM",
            Self::Performance => "PERFORMANCE",
            Self::Export => "EXPORT",
            Self::Function => "FUNCTION",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Whether what was recorded succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditStatus {
    /// It succeeded.
    Success,
    /// It failed or was refused.
    Failure,
}

impl AuditStatus {
    /// The stored and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Failure => "FAILURE",
        }
    }
}

tokio::task_local! {
    /// The W3C trace of the running request (set by `crate::operations::trace` around each one).
    static TRACE: Trace;
}

/// Runs `fut` in `trace`: events it records without a trace of their own carry it.
pub async fn in_trace<F: std::future::Future>(trace: Trace, fut: F) -> F::Output {
    TRACE.scope(trace, fut).await
}

/// The trace of the running request, if any.
pub fn current_trace() -> Option<Trace> {
    TRACE.try_with(Clone::clone).ok()
}

/// An event about to be recorded. Build one with [`NewEvent::new`] or [`NewEvent::custom`] and the
/// builder methods, then [`record`] it.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// The kind.
    pub kind: AuditKind,
    /// The mutation field's or the event's name.
    pub action: String,
    /// Success or failure.
    pub status: AuditStatus,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: Option<i32>,
    /// The acting user.
    pub user: Option<String>,
    /// The app.
    pub app: Option<String>,
    /// The request's assignation.
    pub assignation_id: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The arguments, already masked.
    pub input: Option<Json>,
    /// What it returned.
    pub output: Option<Json>,
    /// The error code and message the client saw.
    pub error: Option<String>,
    /// Log lines emitted while it ran.
    pub logs: Vec<String>,
    /// The entity it concerns.
    pub entity: Option<HistoryEntity>,
    /// The object it concerns.
    pub object_id: Option<String>,
    /// Free-form details.
    pub details: Option<Json>,
    /// The project the object belongs to, when the caller knows it already (else it is looked up).
    pub scope_id: Option<Option<String>>,
    /// The W3C trace it happened in (else the current change context's or request's, if any).
    pub trace: Option<Trace>,
}

impl NewEvent {
    /// A successful event of `kind` named `action`, now.
    pub fn new(kind: AuditKind, action: impl Into<String>) -> Self {
        Self {
            kind,
            action: action.into(),
            status: AuditStatus::Success,
            at: now(),
            duration_ms: None,
            user: None,
            app: None,
            assignation_id: None,
            ip: None,
            user_agent: None,
            input: None,
            output: None,
            error: None,
            logs: Vec::new(),
            entity: None,
            object_id: None,
            details: None,
            scope_id: None,
            trace: None,
        }
    }

    /// A `CUSTOM` event named `action`.
    pub fn custom(action: impl Into<String>) -> Self {
        Self::new(AuditKind::Custom, action)
    }

    /// Marks it failed with the error the client saw.
    #[must_use]
    pub fn failed(mut self, error: impl Into<String>) -> Self {
        self.status = AuditStatus::Failure;
        self.error = Some(error.into());
        self
    }

    /// Sets the acting user.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Names the object it concerns.
    #[must_use]
    pub fn object(mut self, entity: HistoryEntity, object_id: impl Into<String>) -> Self {
        self.entity = Some(entity);
        self.object_id = Some(object_id.into());
        self
    }

    /// Stamps it with the request's user, app, assignation and client.
    #[must_use]
    pub fn from_request(mut self, request: &crate::context::RequestContext) -> Self {
        self.user = request.principal.user.clone();
        self.app = request.principal.app.clone();
        self.assignation_id = Some(request.assignation_id.to_string());
        self.ip = request.ip.clone();
        self.user_agent = request.user_agent.clone();
        if request.trace.is_some() {
            self.trace = request.trace.clone();
        }
        self
    }

    /// Sets the W3C trace it happened in.
    #[must_use]
    pub fn trace(mut self, trace: Option<Trace>) -> Self {
        self.trace = trace;
        self
    }

    /// Attaches free-form details.
    #[must_use]
    pub fn details(mut self, details: Json) -> Self {
        self.details = Some(details);
        self
    }
}

/// The longest `action`, `user_agent` and `error` stored (longer ones are cut).
const MAX_ACTION: usize = 200;
const MAX_USER_AGENT: usize = 512;
const MAX_ERROR: usize = 4000;

fn cut(value: String, max: usize) -> String {
    if value.chars().count() <= max {
        value
    } else {
        value.chars().take(max).collect()
    }
}

/// `text` with every NUL character as U+FFFD: PostgreSQL stores no NUL, in text or in `jsonb`, and a
/// failed mutation's arguments may hold one (refused with `BAD_INPUT`, but its event is still
/// written). Done on every database alike, so that they all keep the same event.
fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// [`without_nul`] of every key and string in `value`, in place: an event without NUL (every event
/// but a rare refused one) is walked, not copied.
fn json_without_nul(mut value: Json) -> Json {
    fn clean(value: &mut Json) {
        match value {
            Json::String(text) if text.contains('\0') => *text = text.replace('\0', "\u{FFFD}"),
            Json::Array(items) => items.iter_mut().for_each(clean),
            Json::Object(map) => {
                if map.keys().any(|key| key.contains('\0')) {
                    *map = std::mem::take(map)
                        .into_iter()
                        .map(|(key, v)| (without_nul(key), v))
                        .collect();
                }
                map.values_mut().for_each(clean);
            }
            _ => {}
        }
    }
    clean(&mut value);
    value
}

/// Records `event`, resolving the project it belongs to (so it shows in that project's timeline).
///
/// # Errors
/// Database errors.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    event: NewEvent,
) -> Result<audit_event::Model, DbErr> {
    let model = row_of(db, event).await?;
    model
        .clone()
        .into_active_model()
        .reset_all()
        .insert(db)
        .await
}

/// The row of `event`, its project resolved (looked up unless the event says it).
///
/// # Errors
/// Database errors.
pub async fn row_of<C: ConnectionTrait>(
    db: &C,
    event: NewEvent,
) -> Result<audit_event::Model, DbErr> {
    let object_id = event.object_id.map(without_nul);
    let scope_id = match (event.scope_id, event.entity, &object_id) {
        (Some(known), _, _) => known,
        (None, Some(entity), Some(object_id)) => scope_of(db, entity, object_id).await?,
        _ => None,
    };
    let trace = event
        .trace
        .or_else(|| ChangeContext::current().and_then(|ctx| ctx.trace))
        .or_else(current_trace);
    Ok(audit_event::Model {
        id: uuid::Uuid::now_v7(),
        kind: event.kind.as_str().to_owned(),
        action: without_nul(cut(event.action, MAX_ACTION)),
        status: event.status.as_str().to_owned(),
        at: event.at,
        duration_ms: event.duration_ms,
        actor: event.user.map(without_nul),
        app: event.app.map(without_nul),
        assignation_id: event.assignation_id.map(without_nul),
        ip: event.ip,
        user_agent: event
            .user_agent
            .map(|ua| without_nul(cut(ua, MAX_USER_AGENT))),
        input: event.input.map(json_without_nul),
        output: event.output.map(json_without_nul),
        error: event.error.map(|e| without_nul(cut(e, MAX_ERROR))),
        logs: json_without_nul(Json::from(event.logs)),
        entity: event.entity.map(|e| e.name().to_owned()),
        object_id,
        scope_id,
        details: event.details.map(json_without_nul),
        trace_id: trace.as_ref().map(|t| t.trace_id().to_owned()),
        span_id: trace.as_ref().map(|t| t.span_id().to_owned()),
    })
}

/// The project an object belongs to: itself for a project, else the scope of its history.
async fn scope_of<C: ConnectionTrait>(
    db: &C,
    entity: HistoryEntity,
    object_id: &str,
) -> Result<Option<String>, DbErr> {
    let Some(info) = HistoryEntity::registry()
        .ok()
        .and_then(|r| r.get(entity.name()))
    else {
        return Ok(None);
    };
    sea_orm_history::query::object_scope(db, info, object_id)
        .await
        .map_err(|e| e.into_db_err())
}

/// The message of a panic's payload (a `String` or `&str`, as `panic!` makes them).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message")
}

/// Replaces the value of every object key in `names` (compared case-insensitively, at any depth)
/// with `"***"`.
pub fn mask(value: &mut Json, names: &[String]) {
    match value {
        Json::Object(map) => {
            for (key, v) in map.iter_mut() {
                if names.iter().any(|n| n.eq_ignore_ascii_case(key)) {
                    *v = Json::from("***");
                } else {
                    mask(v, names);
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|v| mask(v, names)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_fields_are_masked_at_any_depth() {
        let mut input = serde_json::json!({
            "name": "x",
            "input": {"Password": "hunter2", "nested": [{"apiKey": "k", "keep": 1}]},
            "token": null
        });
        mask(
            &mut input,
            &["password".into(), "apikey".into(), "token".into()],
        );
        assert_eq!(
            input,
            serde_json::json!({
                "name": "x",
                "input": {"Password": "***", "nested": [{"apiKey": "***", "keep": 1}]},
                "token": "***"
            })
        );
    }
}
