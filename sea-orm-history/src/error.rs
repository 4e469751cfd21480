//! [`HistoryError`], the one error type of the library, and the way it travels through sea-orm's
//! hooks: `ActiveModelBehavior` returns [`DbErr`], so a history error raised inside a hook is carried as
//! a [`DbErr::Custom`] with a marker and turned back into the same [`HistoryError`] by
//! [`HistoryError::from`].

use sea_orm::{DbErr, SqlErr};
use serde::Serialize;

/// The marker of a [`HistoryError`] carried in a [`DbErr::Custom`].
const MARKER: &str = "sea-orm-history: ";

/// A later change, or a clash, that blocks a revert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    /// The entity's name (`CAKE`).
    pub entity: String,
    /// The object changed since, or in the way.
    pub object_id: String,
    /// The assignation that last changed it (empty when it has no history).
    pub assignation_id: String,
    /// What is in the way: a later change, a dependent row, a missing parent, a unique value (not in
    /// the error's `extensions.conflicts`, which keep their published shape; the preview has it).
    #[serde(skip)]
    pub reason: ConflictReason,
}

/// Why an object blocks a revert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConflictReason {
    /// Changed by a later assignation (`force` overrides it).
    ChangedSince,
    /// A row the revert's delete would leave pointing at nothing (`force` deletes it too).
    Dependent,
    /// A row the revert must bring back needs a parent that is gone (`force` cannot help).
    MissingParent,
    /// A unique value the revert must restore is taken by another row (`force` cannot help).
    UniqueTaken,
}

impl ConflictReason {
    /// Whether `force` overrides it.
    pub fn overridable(self) -> bool {
        matches!(self, Self::ChangedSince | Self::Dependent)
    }
}

/// Everything that can go wrong when capturing, reading, reverting or verifying history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A historized row was changed outside any [`crate::ChangeContext`] scope: the change is refused
    /// rather than made without history.
    #[error("a historized change outside a change context: run it inside ChangeContext::scope")]
    NoContext,
    /// The entity's table is historized but not in the context's registry.
    #[error("`{0}` is historized but not registered: add it to the registry")]
    NotRegistered(String),
    /// The registry cannot be built (a duplicate name, an unregistered parent, …).
    #[error("the history registry: {0}")]
    Registry(String),
    /// The assignation was started by another user.
    #[error("the assignation {0} was started by another user")]
    ForeignAssignation(String),
    /// An id that is not an assignation id (1 to 128 letters, digits, `.`, `_`, `:`, `-`).
    #[error(
        "an assignation id is 1 to 128 characters, each a letter (A-Z, a-z), a digit (0-9), or one \
         of . _ : - (no spaces)"
    )]
    BadAssignationId,
    /// What was asked for does not exist (or its history was pruned).
    #[error("{0} not found")]
    NotFound(String),
    /// The request makes no sense (restoring an object to the state it is in, …).
    #[error("{0}")]
    BadInput(String),
    /// The caller may not do this (revert another user's assignation, …).
    #[error("{0}")]
    Forbidden(String),
    /// A revert of an assignation is blocked; nothing was written.
    #[error(
        "objects of this assignation were changed since, or are in the way; revert with force: true \
         to override later changes (missing parents and taken unique values cannot be overridden)"
    )]
    Conflict(Vec<Conflict>),
    /// An object's restore to a version ([`crate::revert::revert_object`], which has no `force`) is
    /// blocked: a parent gone, a unique value taken, or rows pointing at an object going back to a
    /// DELETE; nothing was written.
    #[error(
        "the object cannot be restored to that version: what it needs is gone or in the way (see \
         the conflicts)"
    )]
    RestoreConflict(Vec<Conflict>),
    /// The assignation, or part of the tree under it, was reverted already.
    #[error("{}", already_reverted(by.as_deref(), parts))]
    AlreadyReverted {
        /// The assignation that reverted it.
        by: Option<String>,
        /// For a tree, each assignation under it that was reverted already, with the one that
        /// reverted it.
        parts: Vec<(String, String)>,
    },
    /// A history record or snapshot does not have the shape this library writes.
    #[error("a history record is malformed: {0}")]
    Malformed(String),
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(DbErr),
}

impl HistoryError {
    /// The error as a [`DbErr`], for the hooks sea-orm calls (see [`HistoryError::from`] for the way
    /// back).
    pub fn into_db_err(self) -> DbErr {
        match self {
            Self::Database(e) => e,
            other => DbErr::Custom(format!("{MARKER}{}", encode(&other))),
        }
    }

    /// Whether the database refused the change because a unique value is taken.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Database(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))))
    }
}

/// The kinds of error that cross a hook, with their payload, as text.
fn encode(error: &HistoryError) -> String {
    match error {
        HistoryError::NoContext => "no-context".into(),
        HistoryError::NotRegistered(t) => format!("not-registered {t}"),
        HistoryError::ForeignAssignation(a) => format!("foreign-assignation {a}"),
        HistoryError::BadAssignationId => "bad-assignation-id".into(),
        HistoryError::NotFound(w) => format!("not-found {w}"),
        HistoryError::BadInput(w) => format!("bad-input {w}"),
        HistoryError::Forbidden(w) => format!("forbidden {w}"),
        HistoryError::Registry(w) => format!("registry {w}"),
        other => format!("malformed {other}"),
    }
}

fn decode(text: &str) -> HistoryError {
    let (kind, rest) = text.split_once(' ').unwrap_or((text, ""));
    let rest = rest.to_owned();
    match kind {
        "no-context" => HistoryError::NoContext,
        "not-registered" => HistoryError::NotRegistered(rest),
        "foreign-assignation" => HistoryError::ForeignAssignation(rest),
        "bad-assignation-id" => HistoryError::BadAssignationId,
        "not-found" => HistoryError::NotFound(rest),
        "bad-input" => HistoryError::BadInput(rest),
        "forbidden" => HistoryError::Forbidden(rest),
        "registry" => HistoryError::Registry(rest),
        _ => HistoryError::Malformed(rest),
    }
}

/// A [`DbErr`] back as the [`HistoryError`] it carries, or as [`HistoryError::Database`].
impl From<DbErr> for HistoryError {
    fn from(err: DbErr) -> Self {
        if let DbErr::Custom(message) = &err
            && let Some(text) = message.strip_prefix(MARKER)
        {
            return decode(text);
        }
        Self::Database(err)
    }
}

/// A [`HistoryError`] as a [`DbErr`] ([`HistoryError::into_db_err`]), so that `?` carries it out of
/// a function or block that returns sea-orm's error (a transaction's body, say), and
/// [`HistoryError::from`] gives it back whole.
impl From<HistoryError> for DbErr {
    fn from(err: HistoryError) -> Self {
        err.into_db_err()
    }
}

fn already_reverted(by: Option<&str>, parts: &[(String, String)]) -> String {
    if parts.is_empty() {
        let by = by.map(|b| format!(" (by {b})")).unwrap_or_default();
        return format!("the assignation was already reverted{by}");
    }
    let list: Vec<String> = parts.iter().map(|(a, b)| format!("{a} (by {b})")).collect();
    format!(
        "part of the tree was already reverted: {}; revert the rest one assignation at a time",
        list.join(", ")
    )
}

/// The result of the library's functions.
pub type HistoryResult<T> = Result<T, HistoryError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_error_crosses_a_hook_and_comes_back_the_same() {
        for error in [
            HistoryError::NoContext,
            HistoryError::ForeignAssignation("a-1".into()),
            HistoryError::NotRegistered("widget".into()),
        ] {
            let expected = error.to_string();
            let back = HistoryError::from(error.into_db_err());
            assert_eq!(back.to_string(), expected);
        }
        assert!(matches!(
            HistoryError::from(DbErr::Custom("other".into())),
            HistoryError::Database(_)
        ));
    }
}
