//! Relay connections over [`Page`]s: `first` checked against the limits, opaque cursors, and
//! `totalCount`.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{OutputType, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{HistorySettings, bad_input, limit_exceeded};
use crate::query::Page;

/// The extra field every connection has.
#[derive(SimpleObject)]
pub struct TotalCount {
    /// How many items the whole list holds.
    pub total_count: u64,
}

/// A Relay connection with `totalCount`.
pub type ListConnection<T> = Connection<String, T, TotalCount, EmptyFields>;

/// The page size for `first`: the default when omitted.
///
/// # Errors
/// `BAD_INPUT` for a negative `first`; `LIMIT_EXCEEDED` above the maximum.
pub fn page_size(settings: &HistorySettings, first: Option<i32>) -> async_graphql::Result<u64> {
    match first {
        None => Ok(u64::from(settings.default_page_size)),
        Some(n) if n < 0 => Err(bad_input("first may not be negative")),
        Some(n) if n.unsigned_abs() > settings.max_page_size => Err(limit_exceeded(format!(
            "first may not exceed {}",
            settings.max_page_size
        ))),
        Some(n) => Ok(u64::from(n.unsigned_abs())),
    }
}

/// Encodes a cursor.
pub fn encode_cursor(raw: &str) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes an optional cursor made by [`encode_cursor`] and parses it with `parse`.
///
/// # Errors
/// `BAD_INPUT` when it does not decode or parse.
pub fn parse_after<T>(
    after: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
) -> async_graphql::Result<Option<T>> {
    after
        .map(|cursor| {
            URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|raw| parse(&raw))
                .ok_or_else(|| bad_input("after is not a cursor of this list"))
        })
        .transpose()
}

/// The connection of `page`: `cursor` gives each item's raw cursor, `node` its GraphQL node.
pub fn connection<K, T: OutputType>(
    page: Page<K>,
    cursor: impl Fn(&K) -> String,
    node: impl FnMut(K) -> T,
) -> ListConnection<T> {
    let mut connection = Connection::with_additional_fields(
        false,
        page.has_next,
        TotalCount {
            total_count: page.total,
        },
    );
    let cursors: Vec<String> = page
        .items
        .iter()
        .map(|k| encode_cursor(&cursor(k)))
        .collect();
    connection.edges.extend(
        cursors
            .into_iter()
            .zip(page.items.into_iter().map(node))
            .map(|(c, n)| Edge::new(c, n)),
    );
    connection
}

/// The cost of a list field for the complexity limit: its page (`first`, else 20, at most 100) times
/// what each item selects, plus the list itself.
pub fn list_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let page = usize::try_from(first.unwrap_or(20).clamp(0, 100)).unwrap_or(100);
    page.saturating_mul(child_complexity).saturating_add(1)
}
