//! The async-graphql parts (feature `graphql`), to merge into an application's schema:
//!
//! - [`ChangeContextExtension`]: runs each operation inside the [`ChangeContext`]
//!   the application put in the request's data, so the hooks of every resolver see it.
//! - [`HistoryQuery`] (`history`, `assignation`, `assignations`, `previewRevert`, `verifyHistory`) and
//!   [`HistoryMutation`] (`revertAssignation`, `revertObject`), generic over the application's
//!   [`EntitySet`](crate::EntitySet) enum, which is its GraphQL `HistoryEntity`.
//! - [`types`]: `HistoryRecord`, `FieldChange`, `Assignation` (with its tree: `parent`, `root`,
//!   `children`, `onBehalfOf`, `tree`), `RevertPreview`, `Verification`, and
//!   [`types::object_history`] for the `history` field of the application's own types.
//! - `log::LogQuery` (feature `log`): the verifiable log — `logSize`, `checkpoint`, `checkpoints`,
//!   `inclusionProof`, `consistencyProof` — to merge into the query root; records say their
//!   `logIndex`.
//! - [`koherent`]: Koherent's `provenance` entries, for the `provenance` field of the application's
//!   own types.
//! - [`scalars::Timestamp`]: the `DateTime` scalar (RFC 3339 in UTC with `Z`, as snapshots hold it).
//! - [`pagination`]: Relay connections with `totalCount` over [`Page`](crate::query::Page)s.
//!
//! The schema's data must hold the `sea_orm::DatabaseConnection`; optionally [`HistorySettings`]
//! (page sizes, lengths) and an `Arc<dyn RevertAccess>` (who may revert what; everyone by default).
//! Errors carry `extensions.code`: `NOT_FOUND`, `BAD_INPUT`, `FORBIDDEN`, `BAD_ASSIGNATION_ID`,
//! `REVERT_CONFLICT` (with `extensions.conflicts`), `ALREADY_REVERTED` (with `extensions.reverted` for
//! a tree), `LIMIT_EXCEEDED`, `INTERNAL`.

pub mod koherent;
#[cfg(feature = "log")]
pub mod log;
pub mod pagination;
pub mod roots;
pub mod scalars;
pub mod types;

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::{Context, ErrorExtensions, Response};
use sea_orm::DatabaseConnection;

use crate::context::ChangeContext;
use crate::error::HistoryError;
use crate::tables::assignation;

pub use roots::{HistoryMutation, HistoryQuery};

/// Limits of the history API. Put one in the schema's data to change the defaults.
#[derive(Clone, Debug)]
pub struct HistorySettings {
    /// `first` when omitted.
    pub default_page_size: u32,
    /// The largest `first` (`LIMIT_EXCEEDED` above).
    pub max_page_size: u32,
    /// The longest `reason`, in characters.
    pub max_reason_chars: usize,
    /// The longest object id a query may name.
    pub max_object_id_chars: usize,
    /// The most assignations a tree may hold for its totals and its revert.
    pub max_tree_assignations: usize,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            default_page_size: 20,
            max_page_size: 100,
            max_reason_chars: 1_000,
            max_object_id_chars: 255,
            max_tree_assignations: crate::revert::DEFAULT_MAX_TREE,
        }
    }
}

/// Who may revert (and preview the revert of) what. Put an `Arc<dyn RevertAccess>` in the schema's
/// data; without one, everyone may.
pub trait RevertAccess: Send + Sync {
    /// Whether the caller of `ctx` may revert `assignation`.
    fn may_revert(&self, ctx: &Context<'_>, assignation: &assignation::Model) -> bool;

    /// Whether the caller of `ctx` may bring object `object_id` of `entity` (its history name) back
    /// to an earlier version with `revertObject`. Everyone may, unless this says otherwise.
    fn may_restore(&self, ctx: &Context<'_>, entity: &str, object_id: &str) -> bool {
        let _ = (ctx, entity, object_id);
        true
    }
}

/// The database of the schema.
///
/// # Errors
/// `INTERNAL` when the schema was built without one.
pub fn database<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a DatabaseConnection> {
    ctx.data::<DatabaseConnection>().map_err(|e| {
        HistoryError::Malformed(format!("the schema has no database: {}", e.message)).extend()
    })
}

/// The history settings of the schema (the defaults when it has none).
pub fn settings(ctx: &Context<'_>) -> HistorySettings {
    ctx.data_opt::<HistorySettings>()
        .cloned()
        .unwrap_or_default()
}

/// Whether the caller may revert `assignation` (see [`RevertAccess`]).
pub(crate) fn may_revert(ctx: &Context<'_>, assignation: &assignation::Model) -> bool {
    ctx.data_opt::<Arc<dyn RevertAccess>>()
        .is_none_or(|access| access.may_revert(ctx, assignation))
}

/// Whether the caller may restore an object with `revertObject` (see [`RevertAccess`]).
pub(crate) fn may_restore(ctx: &Context<'_>, entity: &str, object_id: &str) -> bool {
    ctx.data_opt::<Arc<dyn RevertAccess>>()
        .is_none_or(|access| access.may_restore(ctx, entity, object_id))
}

/// The `extensions.code` of each error.
impl ErrorExtensions for HistoryError {
    fn extend(&self) -> async_graphql::Error {
        let code = match self {
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadInput(_) => "BAD_INPUT",
            Self::Forbidden(_) | Self::ForeignAssignation(_) => "FORBIDDEN",
            Self::BadAssignationId => "BAD_ASSIGNATION_ID",
            Self::Conflict(_) | Self::RestoreConflict(_) => "REVERT_CONFLICT",
            Self::AlreadyReverted { .. } => "ALREADY_REVERTED",
            Self::NoContext
            | Self::NotRegistered(_)
            | Self::Registry(_)
            | Self::Malformed(_)
            | Self::Database(_) => "INTERNAL",
        };
        let message = if code == "INTERNAL" {
            tracing::error!(error = %self, "internal error");
            "internal error".to_owned()
        } else {
            self.to_string()
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code);
            if let Self::AlreadyReverted { parts, .. } = self
                && !parts.is_empty()
            {
                let list: Vec<async_graphql::Value> = parts
                    .iter()
                    .map(|(id, by)| {
                        async_graphql::Value::from_json(
                            serde_json::json!({"assignationId": id, "revertedBy": by}),
                        )
                        .unwrap_or(async_graphql::Value::Null)
                    })
                    .collect();
                ext.set("reverted", list);
            }
            if let Self::Conflict(conflicts) | Self::RestoreConflict(conflicts) = self {
                let list: Vec<async_graphql::Value> = conflicts
                    .iter()
                    .map(|c| {
                        async_graphql::Value::from_json(serde_json::json!(c))
                            .unwrap_or(async_graphql::Value::Null)
                    })
                    .collect();
                ext.set("conflicts", list);
            }
        })
    }
}

/// An error for a page size above the limit.
pub(crate) fn limit_exceeded(message: String) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", "LIMIT_EXCEEDED"))
}

/// A `BAD_INPUT` error.
pub(crate) fn bad_input(message: impl Into<String>) -> async_graphql::Error {
    HistoryError::BadInput(message.into()).extend()
}

/// Runs each operation inside the [`ChangeContext`] in the request's data (`request.data(context)`),
/// so that every resolver's changes are historized under it.
pub struct ChangeContextExtension;

impl ExtensionFactory for ChangeContextExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ScopeExtension)
    }
}

struct ScopeExtension;

#[async_trait::async_trait]
impl Extension for ScopeExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        match ctx.data_opt::<ChangeContext>() {
            Some(change) => change.clone().scope(next.run(ctx, operation_name)).await,
            None => next.run(ctx, operation_name).await,
        }
    }
}
