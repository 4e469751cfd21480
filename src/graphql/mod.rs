//! The GraphQL schema: query and mutation roots merged from one file per entity, the history types,
//! the extension that carries the request's change context to the history hooks, and the SDL export.
//!
//! - [`project`], [`task`], [`label`], [`comment`]: object types, queries and mutations per entity.
//! - [`history`]: the history library's types for Chronicle's entities, and revert permissions (the
//!   history queries and revert mutations are `sea-orm-history`'s, merged into the roots).
//! - [`audit`]: `AuditEvent`, `auditEvents`, `auditSummary`, `recordEvent`, timeline entries.
//! - [`extension`]: refuses anonymous or oversized mutations and writes each mutation field's audit
//!   event (the library's extension opens the change-context scope around each request).
//! - [`order`]: puts response fields back in the order the query asked for them.
//! - [`reference`]: the Markdown API reference generated from the SDL.
//! - [`pagination`], [`scalars`]: Relay connections with `totalCount`; the `Date` and `DateTime`
//!   scalars.

pub(crate) mod audit;
pub(crate) mod comment;
pub(crate) mod extension;
pub(crate) mod history;
pub(crate) mod label;
pub(crate) mod order;
pub(crate) mod pagination;
pub(crate) mod project;
pub mod reference;
pub(crate) mod scalars;
pub(crate) mod task;

use std::future::Future;
use std::sync::Arc;

use async_graphql::{Context, EmptySubscription, ID, MaybeUndefined, MergedObject, Schema};
use entity::HistoryEntity;
use sea_orm::{DatabaseConnection, PrimaryKeyTrait};
use sea_orm_history::graphql::{
    ChangeContextExtension, HistoryMutation, HistoryQuery, HistorySettings, RevertAccess,
};
use sea_orm_history::with_reason;

use crate::audit::writer::EventWriter;
use crate::auth::Principal;
use crate::config::{AuditSettings, Limits};
use crate::context::RequestContext;
use crate::error::{AppError, AppResult, IntoGraphql};
use crate::operations::metrics::Metrics;

/// Every query field.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    project::ProjectQuery,
    task::TaskQuery,
    label::LabelQuery,
    comment::CommentQuery,
    HistoryQuery<HistoryEntity>,
    sea_orm_history::graphql::log::LogQuery,
    audit::AuditQuery,
);

/// Every mutation field.
#[derive(MergedObject, Default)]
pub struct MutationRoot(
    project::ProjectMutation,
    task::TaskMutation,
    label::LabelMutation,
    comment::CommentMutation,
    HistoryMutation<HistoryEntity>,
    audit::AuditMutation,
);

/// The executable schema.
pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// The schema with its data (database, limits, audit settings, the audit event writer, metrics when
/// on) and the request extension. Call it inside a tokio runtime: it starts the event writer task.
pub fn build_schema(
    db: DatabaseConnection,
    limits: Limits,
    audit: AuditSettings,
    metrics: Option<Arc<Metrics>>,
) -> AppSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .limit_depth(limits.max_query_depth)
    .limit_complexity(limits.max_query_complexity)
    .extension(ChangeContextExtension)
    .extension(extension::ChangeContextExtension)
    .extension(order::ResponseOrderExtension)
    .data(EventWriter::spawn(db.clone()))
    .data(history_settings(&limits))
    .data(Arc::new(history::PrincipalAccess) as Arc<dyn RevertAccess>)
    .data(db)
    .data(limits)
    .data(audit);
    if let Some(metrics) = metrics {
        builder = builder.data(metrics);
    }
    builder.finish()
}

/// The history library's limits, from the server's.
pub fn history_settings(limits: &Limits) -> HistorySettings {
    HistorySettings {
        default_page_size: limits.default_page_size,
        max_page_size: limits.max_page_size,
        max_reason_chars: limits.max_reason_chars,
        max_object_id_chars: OBJECT_ID_CHARS,
        max_tree_assignations: limits.max_tree_assignations,
    }
}

/// The longest object id a query may name (the width of the `object_id` columns).
pub const OBJECT_ID_CHARS: usize = 80;

/// The schema's SDL, as `chronicle schema` prints it and `schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .finish()
    .sdl()
}

/// The database and limits of the running server.
///
/// # Errors
/// `INTERNAL` if the schema was built without them (a programming error).
pub fn state<'a>(ctx: &Context<'a>) -> AppResult<(&'a DatabaseConnection, &'a Limits)> {
    let db = ctx
        .data::<DatabaseConnection>()
        .map_err(|e| AppError::internal(e.message))?;
    let limits = ctx
        .data::<Limits>()
        .map_err(|e| AppError::internal(e.message))?;
    Ok((db, limits))
}

/// Who the request acts as.
///
/// # Errors
/// `INTERNAL` if the request carries no context (a programming error).
pub fn principal<'a>(ctx: &Context<'a>) -> AppResult<&'a Principal> {
    ctx.data::<RequestContext>()
        .map(|request| &request.principal)
        .map_err(|e| AppError::internal(e.message))
}

/// Checks a mutation's `reason` against its limit.
///
/// # Errors
/// `BAD_INPUT` when it is too long.
pub fn check_reason(limits: &Limits, reason: Option<&str>) -> AppResult<()> {
    crate::service::validate::optional_text("reason", reason, limits.max_reason_chars)
}

/// Runs one mutation field: checks its `reason`, makes it the reason of every history record the
/// service writes, and maps the service's error to the API's codes.
///
/// # Errors
/// The service's error, or `BAD_INPUT` for an overlong reason.
pub async fn mutation<'a, T, Fut>(
    ctx: &Context<'a>,
    reason: Option<String>,
    run: impl FnOnce(&'a DatabaseConnection, &'a Limits) -> Fut,
) -> async_graphql::Result<T>
where
    Fut: Future<Output = AppResult<T>>,
{
    let (db, limits) = state(ctx).gql()?;
    check_reason(limits, reason.as_deref()).gql()?;
    with_reason(reason, run(db, limits)).await.gql()
}

/// One object of `E` by id, now or (with `as_of`) as it was then; null for an id that names nothing.
///
/// # Errors
/// Database errors.
pub async fn find_one<E>(
    ctx: &Context<'_>,
    id: &ID,
    as_of: Option<sea_orm_history::graphql::scalars::Timestamp>,
) -> async_graphql::Result<Option<E::Model>>
where
    E: sea_orm::EntityTrait,
    E::Model: Send + Sync,
    E::ActiveModel: sea_orm::TryIntoModel<E::Model>,
    E::PrimaryKey: PrimaryKeyTrait<ValueType = uuid::Uuid>,
{
    let (db, _) = state(ctx).gql()?;
    // Ids are UUIDs: anything else names no object.
    let Ok(id) = uuid::Uuid::parse_str(id) else {
        return Ok(None);
    };
    match as_of {
        Some(at) => crate::service::as_of::<E, _>(db, &id.to_string(), at.utc()).await,
        None => E::find_by_id(id).one(db).await.map_err(Into::into),
    }
    .gql()
}

/// An optional nullable input as the services take it: `None` leaves it, `Some(None)` clears it.
pub fn maybe<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// A non-nullable update field: omitted leaves it, a value sets it, an explicit `null` is refused.
///
/// # Errors
/// `BAD_INPUT` naming `field` for an explicit null.
pub fn required<T>(field: &str, value: MaybeUndefined<T>) -> AppResult<Option<T>> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Err(AppError::BadInput(format!("{field} may not be null"))),
        MaybeUndefined::Value(v) => Ok(Some(v)),
    }
}
