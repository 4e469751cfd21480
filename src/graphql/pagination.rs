//! Relay connections: `first`/`after` checked against the limits, opaque cursors, and `totalCount`.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{OutputType, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::Limits;
use crate::error::{AppError, AppResult};
use crate::history::Page;

/// The extra field every connection has.
#[derive(SimpleObject)]
pub struct TotalCount {
    /// How many items the whole list holds.
    pub total_count: u64,
}

/// A Relay connection with `totalCount`.
pub type ListConnection<T> = Connection<String, T, TotalCount, EmptyFields>;

/// The page size for `first`: the default when omitted, `LIMIT_EXCEEDED` above the maximum.
///
/// # Errors
/// `BAD_INPUT` for a negative `first`; `LIMIT_EXCEEDED` above the maximum.
pub fn page_size(limits: &Limits, first: Option<i32>) -> AppResult<u64> {
    match first {
        None => Ok(u64::from(limits.default_page_size)),
        Some(n) if n < 0 => Err(AppError::BadInput("first may not be negative".into())),
        Some(n) if n.unsigned_abs() > limits.max_page_size => Err(AppError::LimitExceeded(
            format!("first may not exceed {}", limits.max_page_size),
        )),
        Some(n) => Ok(u64::from(n.unsigned_abs())),
    }
}

/// Encodes a cursor.
pub fn encode_cursor(raw: &str) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a cursor made by [`encode_cursor`].
///
/// # Errors
/// `BAD_INPUT` for anything else.
pub fn decode_cursor(cursor: &str) -> AppResult<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| AppError::BadInput("after is not a cursor of this list".into()))
}

/// Decodes an optional cursor and parses it with `parse`.
///
/// # Errors
/// `BAD_INPUT` when it does not decode or parse.
pub fn parse_after<T>(
    after: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
) -> AppResult<Option<T>> {
    after
        .map(|c| {
            let raw = decode_cursor(c)?;
            parse(&raw)
                .ok_or_else(|| AppError::BadInput("after is not a cursor of this list".into()))
        })
        .transpose()
}

/// Builds a connection from a page: `cursor` gives each item's raw cursor, `node` its GraphQL node.
pub fn connection<K, T: OutputType>(
    page: Page<K>,
    cursor: impl Fn(&K) -> String,
    node: impl Fn(K) -> T,
) -> ListConnection<T> {
    let mut connection = Connection::with_additional_fields(
        false,
        page.has_next,
        TotalCount {
            total_count: page.total,
        },
    );
    connection.edges.extend(
        page.items
            .into_iter()
            .map(|item| Edge::new(encode_cursor(&cursor(&item)), node(item))),
    );
    connection
}

/// The estimated cost of a list field for the complexity limit: its page (`first`, else 20, at most
/// 100) times what each item selects, plus the list itself.
pub fn list_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let page = usize::try_from(first.unwrap_or(20).clamp(0, 100)).unwrap_or(100);
    page.saturating_mul(child_complexity).saturating_add(1)
}
