//! The one error type of the server, [`AppError`], and its mapping to the API's `extensions.code`.
//! Internal and database details are logged here and never sent to the client.

use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, SqlErr};
use sea_orm_history::{Conflict, HistoryError};

/// Everything that can go wrong in a request, by what the client should do about it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input breaks a rule of the API; the message says which.
    #[error("{0}")]
    BadInput(String),
    /// The object named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Credentials are missing or invalid; the message says why (never echoing the token).
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// `X-Assignation-Id` is malformed.
    #[error(
        "X-Assignation-Id must be 1 to 128 characters, each a letter (A-Z, a-z), a digit (0-9), or one \
         of . _ : - (no spaces)"
    )]
    BadAssignationId,
    /// A revert is blocked (objects changed since, or in the way); the message is the library's,
    /// which says whether `force` overrides it.
    #[error("{message}")]
    RevertConflict {
        /// What blocks it, and what to do.
        message: String,
        /// Each object in the way.
        conflicts: Vec<Conflict>,
    },
    /// The assignation was reverted already.
    #[error("the assignation was already reverted")]
    AlreadyReverted,
    /// A limit was exceeded; the message says which.
    #[error("{0}")]
    LimitExceeded(String),
    /// Anything else: logged in full, reported as `INTERNAL`.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// The whole message, internal detail included: for the command line, where the reader is the
    /// operator, never for an API client.
    pub fn detailed(&self) -> String {
        match self {
            Self::Internal(detail) => detail.clone(),
            other => other.to_string(),
        }
    }

    /// The `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput(_) => "BAD_INPUT",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::BadAssignationId => "BAD_ASSIGNATION_ID",
            Self::RevertConflict { .. } => "REVERT_CONFLICT",
            Self::AlreadyReverted => "ALREADY_REVERTED",
            Self::LimitExceeded(_) => "LIMIT_EXCEEDED",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// An `INTERNAL` error; `detail` is logged, not returned.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }
}

impl From<HistoryError> for AppError {
    fn from(err: HistoryError) -> Self {
        match err {
            HistoryError::NotFound(what) => Self::NotFound(what),
            HistoryError::BadInput(why) => Self::BadInput(why),
            HistoryError::Forbidden(why) => Self::Forbidden(why),
            HistoryError::ForeignAssignation(_) => Self::Forbidden(
                "this assignation was started by another user; use your own X-Assignation-Id"
                    .into(),
            ),
            HistoryError::BadAssignationId => Self::BadAssignationId,
            HistoryError::Conflict(ref conflicts)
            | HistoryError::RestoreConflict(ref conflicts) => Self::RevertConflict {
                conflicts: conflicts.clone(),
                message: err.to_string(),
            },
            HistoryError::AlreadyReverted { .. } => Self::AlreadyReverted,
            HistoryError::Database(e) => Self::from_database(e),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        // A history error raised inside a hook travels as a database error.
        Self::from(HistoryError::from(err))
    }
}

impl AppError {
    fn from_database(err: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(_)) = err.sql_err() {
            return Self::BadInput("a value that must be unique is already taken".into());
        }
        if let Some(SqlErr::ForeignKeyConstraintViolation(_)) = err.sql_err() {
            return Self::BadInput("a referenced object does not exist".into());
        }
        Self::Internal(err.to_string())
    }
}

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        if let Self::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| {
            ext.set("code", self.code());
            if let Self::RevertConflict { conflicts, .. } = self {
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

/// The result of a service call.
pub type AppResult<T> = Result<T, AppError>;

/// The code of an error async-graphql raised itself, which carries none (parsing, validation, limits,
/// a variable not given): what the client sees, and what the audit trail records beside it.
pub(crate) fn code_of_unclassified(message: &str) -> &'static str {
    if message.contains("nested too deep")
        || message.contains("too complex")
        || message.starts_with("The recursion depth of the query cannot be greater than")
    {
        "LIMIT_EXCEEDED"
    } else {
        "BAD_INPUT"
    }
}

/// Turns a service result into a resolver result, with `extensions.code` set.
pub trait IntoGraphql<T> {
    /// Converts the error with [`ErrorExtensions::extend`].
    ///
    /// # Errors
    /// The converted error.
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> IntoGraphql<T> for AppResult<T> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}
