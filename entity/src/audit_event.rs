//! `audit_event`: the audit trail beyond data changes. One row per mutation field run (successful or
//! not), refused login, refused or malformed request, and custom event. Not historized: audit events
//! are themselves the record, append-only, removed only by `chronicle prune`.

use sea_orm::entity::prelude::*;

/// An audit event row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "audit_event")]
pub struct Model {
    /// UUIDv7: time-ordered, so (at, id) orders events.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `MUTATION`, `LOGIN`, `LOGIN_FAILED`, `CUSTOM`, `SECURITY` or `SYSTEM`.
    pub kind: String,
    /// The mutation field's name, or the event's name.
    pub action: String,
    /// `SUCCESS` or `FAILURE`.
    pub status: String,
    /// When it happened (for a mutation: when it started).
    pub at: DateTimeUtc,
    /// How long it took, in milliseconds.
    pub duration_ms: Option<i32>,
    /// The acting user.
    pub actor: Option<String>,
    /// The app.
    pub app: Option<String>,
    /// The request's assignation.
    pub assignation_id: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The arguments, secrets masked.
    pub input: Option<Json>,
    /// What it returned (ids).
    pub output: Option<Json>,
    /// The error code and message the client saw.
    pub error: Option<String>,
    /// Log lines emitted while it ran.
    pub logs: Json,
    /// The entity it concerns.
    pub entity: Option<String>,
    /// The object it concerns.
    pub object_id: Option<String>,
    /// The project the object belongs to (for project timelines).
    pub scope_id: Option<String>,
    /// Free-form details.
    pub details: Option<Json>,
    /// The W3C trace the event happened in (32 hex digits).
    pub trace_id: Option<String>,
    /// The span of that trace (16 hex digits).
    pub span_id: Option<String>,
}

/// No relations: events name objects by entity and id, which may be gone.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

/// Audit rows are plain inserts.
impl ActiveModelBehavior for ActiveModel {}
