//! Relay connections over [`Page`]s: `first` checked against the limits, opaque cursors bound to
//! their list ([`ListCursors`]), and `totalCount`.

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

/// The cursors of one list. Each cursor names its list (the field, and the object the list belongs
/// to) before its position, so that a cursor of another list, or of the same field of another
/// object, is refused as `BAD_INPUT` instead of being read as a position in this one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListCursors(String);

impl ListCursors {
    /// The cursors of the list `field` (a root field, or one whose items do not depend on its
    /// object).
    #[must_use]
    pub fn of(field: &str) -> Self {
        Self(field.to_owned())
    }

    /// The cursors of the list `field` of the object `owner` (a task's comments, an object's
    /// history, …).
    #[must_use]
    pub fn of_object(field: &str, owner: impl std::fmt::Display) -> Self {
        Self(format!("{field}/{owner}"))
    }

    /// The opaque cursor of the position `raw` in this list.
    #[must_use]
    pub fn encode(&self, raw: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}\n{raw}", self.0))
    }

    /// Decodes an optional cursor made by [`ListCursors::encode`] for this list and parses its position
    /// with `parse`.
    ///
    /// # Errors
    /// `BAD_INPUT` when it does not decode, belongs to another list, or does not parse.
    pub fn after<T>(
        &self,
        after: Option<&str>,
        parse: impl Fn(&str) -> Option<T>,
    ) -> async_graphql::Result<Option<T>> {
        after
            .map(|cursor| {
                URL_SAFE_NO_PAD
                    .decode(cursor)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|text| {
                        // The position never holds a newline; the list may (an owner's id).
                        let (list, raw) = text.rsplit_once('\n')?;
                        (list == self.0).then(|| parse(raw))?
                    })
                    .ok_or_else(|| bad_input("after is not a cursor of this list"))
            })
            .transpose()
    }

    /// The connection of `page`: `cursor` gives each item's position, `node` its GraphQL node.
    pub fn connection<K, T: OutputType>(
        &self,
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
        let cursors: Vec<String> = page.items.iter().map(|k| self.encode(&cursor(k))).collect();
        connection.edges.extend(
            cursors
                .into_iter()
                .zip(page.items.into_iter().map(node))
                .map(|(c, n)| Edge::new(c, n)),
        );
        connection
    }
}

/// The cost of a list field for the complexity limit: its page (`first`, else 20, at most 100) times
/// what each item selects, plus the list itself.
pub fn list_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let page = usize::try_from(first.unwrap_or(20).clamp(0, 100)).unwrap_or(100);
    page.saturating_mul(child_complexity).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(cursors: &ListCursors, cursor: &str) -> Option<i32> {
        cursors
            .after(Some(cursor), |raw| raw.parse().ok())
            .ok()
            .flatten()
    }

    #[test]
    fn a_cursor_reads_back_in_its_own_list_only() {
        let history = ListCursors::of_object("history", "TASK/a");
        let cursor = history.encode("7");
        assert_eq!(position(&history, &cursor), Some(7));
        assert_eq!(
            position(&ListCursors::of_object("history", "TASK/b"), &cursor),
            None
        );
        assert_eq!(position(&ListCursors::of("history"), &cursor), None);
        assert_eq!(
            position(&ListCursors::of_object("records", "TASK/a"), &cursor),
            None
        );
    }

    #[test]
    fn an_owner_with_a_newline_in_its_id_still_pages() {
        let list = ListCursors::of_object("history", "NOTE/line one\nline two");
        assert_eq!(position(&list, &list.encode("3")), Some(3));
    }

    #[test]
    fn a_cursor_that_is_not_one_is_refused() {
        let list = ListCursors::of("projects");
        assert_eq!(position(&list, "not base64!"), None);
        assert_eq!(position(&list, &URL_SAFE_NO_PAD.encode("7")), None);
        assert_eq!(position(&list, &list.encode("seven")), None);
        assert!(
            list.after(None, |raw| raw.parse::<i32>().ok())
                .is_ok_and(|p| p.is_none())
        );
    }
}
