//! [`HistoryError`], the one error type of the library, and the way it travels through sea-orm's
//! hooks: `ActiveModelBehavior` returns [`DbErr`], so a history error raised inside a hook is carried as
//! a [`DbErr::Custom`] (its message, then a marker and the error encoded) and turned back into the same
//! [`HistoryError`] by [`HistoryError::from`].

use sea_orm::{DbErr, SqlErr};
use serde::{Deserialize, Serialize};

/// The marker of a [`HistoryError`] carried in a [`DbErr::Custom`]: the error's message, then this
/// on a line of its own with the error encoded after it.
const MARKER: &str = "\nsea-orm-history: ";

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
            other => DbErr::Custom(format!("{other}{MARKER}{}", encode(&other))),
        }
    }

    /// Whether the database refused the change because a unique value is taken.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Database(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))))
    }
}

/// An error as text to cross a hook, its kind first, then its payload (JSON for the structured ones),
/// so that [`decode`] gives back the same error.
fn encode(error: &HistoryError) -> String {
    let conflicts = |list: &[Conflict]| {
        let rows: Vec<_> = list
            .iter()
            .map(|c| (&c.entity, &c.object_id, &c.assignation_id, c.reason))
            .collect();
        serde_json::to_string(&rows).unwrap_or_default()
    };
    match error {
        HistoryError::Conflict(list) => format!("conflict {}", conflicts(list)),
        HistoryError::RestoreConflict(list) => format!("restore-conflict {}", conflicts(list)),
        HistoryError::AlreadyReverted { by, parts } => format!(
            "already-reverted {}",
            serde_json::to_string(&(by, parts)).unwrap_or_default()
        ),
        HistoryError::Malformed(w) => format!("malformed {w}"),
        HistoryError::NoContext => "no-context".into(),
        HistoryError::NotRegistered(t) => format!("not-registered {t}"),
        HistoryError::ForeignAssignation(a) => format!("foreign-assignation {a}"),
        HistoryError::BadAssignationId => "bad-assignation-id".into(),
        HistoryError::NotFound(w) => format!("not-found {w}"),
        HistoryError::BadInput(w) => format!("bad-input {w}"),
        HistoryError::Forbidden(w) => format!("forbidden {w}"),
        HistoryError::Registry(w) => format!("registry {w}"),
        // Carried by `into_db_err` as itself; here only for completeness.
        HistoryError::Database(e) => format!("malformed {e}"),
    }
}

/// The conflicts of [`encode`].
fn decode_conflicts(text: &str) -> Option<Vec<Conflict>> {
    let rows: Vec<(String, String, String, ConflictReason)> = serde_json::from_str(text).ok()?;
    Some(
        rows.into_iter()
            .map(|(entity, object_id, assignation_id, reason)| Conflict {
                entity,
                object_id,
                assignation_id,
                reason,
            })
            .collect(),
    )
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
        "conflict" => decode_conflicts(&rest)
            .map_or_else(|| HistoryError::Malformed(rest), HistoryError::Conflict),
        "restore-conflict" => decode_conflicts(&rest).map_or_else(
            || HistoryError::Malformed(rest),
            HistoryError::RestoreConflict,
        ),
        "already-reverted" => serde_json::from_str(&rest).map_or_else(
            |_| HistoryError::Malformed(rest),
            |(by, parts)| HistoryError::AlreadyReverted { by, parts },
        ),
        _ => HistoryError::Malformed(rest),
    }
}

/// A [`DbErr`] back as the [`HistoryError`] it carries, or as [`HistoryError::Database`].
impl From<DbErr> for HistoryError {
    fn from(err: DbErr) -> Self {
        if let DbErr::Custom(message) = &err {
            // The marker after which the rest decodes to an error whose message is what precedes it
            // (a message may hold the marker's text itself).
            for (at, _) in message.match_indices(MARKER) {
                let decoded = decode(&message[at + MARKER.len()..]);
                if decoded.to_string() == message[..at] {
                    return decoded;
                }
            }
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
        let conflict = |reason| Conflict {
            entity: "CAKE".into(),
            object_id: "7".into(),
            assignation_id: "bake \"2\"".into(),
            reason,
        };
        for error in [
            HistoryError::NoContext,
            HistoryError::NotRegistered("widget".into()),
            HistoryError::Registry("a cycle".into()),
            HistoryError::ForeignAssignation("a-1".into()),
            HistoryError::BadAssignationId,
            HistoryError::NotFound("cake 7".into()),
            HistoryError::BadInput("nothing to restore".into()),
            HistoryError::Forbidden("not yours".into()),
            HistoryError::Conflict(vec![
                conflict(ConflictReason::ChangedSince),
                conflict(ConflictReason::UniqueTaken),
            ]),
            HistoryError::RestoreConflict(vec![conflict(ConflictReason::MissingParent)]),
            HistoryError::AlreadyReverted {
                by: Some("undo-1".into()),
                parts: vec![("child".into(), "undo-0".into())],
            },
            HistoryError::Malformed("a snapshot without its key".into()),
            HistoryError::Malformed(format!("nested:{MARKER}not-found cake 7")),
        ] {
            let expected = format!("{error:?}");
            let message = error.to_string();
            // Into a DbErr by `?` (From), as a hook or a transaction's body carries it, and back.
            let carried: DbErr = error.into();
            assert!(
                carried
                    .to_string()
                    .starts_with(&format!("Custom Error: {message}\n")),
                "the DbErr reads as the error: {carried}"
            );
            assert_eq!(format!("{:?}", HistoryError::from(carried)), expected);
        }
        assert!(matches!(
            HistoryError::from(DbErr::Custom("other".into())),
            HistoryError::Database(_)
        ));
    }
}
