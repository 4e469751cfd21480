//! Relay connections for Chronicle's lists: `sea-orm-history`'s (opaque cursors bound to their list,
//! `totalCount`), with `first` checked against the server's limits.

pub use sea_orm_history::graphql::pagination::{ListConnection, ListCursors, list_complexity};

use crate::config::Limits;

/// The page size for `first`: the default when omitted.
///
/// # Errors
/// `BAD_INPUT` for a negative `first`; `LIMIT_EXCEEDED` above the maximum.
pub fn page_size(limits: &Limits, first: Option<i32>) -> async_graphql::Result<u64> {
    sea_orm_history::graphql::pagination::page_size(&super::history_settings(limits), first)
}
