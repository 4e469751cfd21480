//! Who, through which app and in which assignation a request acts: the [`Principal`] the
//! [`Authenticator`] established, and the assignation read from `X-Assignation-Id` (or a fresh UUIDv7).
//! The GraphQL extension makes it the [`entity::context::ChangeContext`] of every change the request
//! makes.

use axum::http::HeaderMap;
use entity::context::ChangeContext;

use crate::auth::{Authenticator, Principal};
use crate::error::AppError;

/// The longest `X-Assignation-Id`.
pub const MAX_ASSIGNATION_ID_CHARS: usize = 128;

/// The validated context of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestContext {
    /// Who the request acts as.
    pub principal: Principal,
    /// The request's assignation: the client's `X-Assignation-Id`, or a fresh UUIDv7.
    pub assignation_id: String,
}

/// The request's assignation id: the client's, validated, or a fresh UUIDv7.
///
/// # Errors
/// `BAD_ASSIGNATION_ID` for a malformed or repeated `X-Assignation-Id`.
pub fn assignation_id(headers: &HeaderMap) -> Result<String, AppError> {
    let mut values = headers.get_all("x-assignation-id").iter();
    let Some(value) = values.next() else {
        return Ok(uuid::Uuid::now_v7().to_string());
    };
    // A repeated header is ambiguous: which assignation? Refuse rather than pick one.
    if values.next().is_some() {
        return Err(AppError::BadAssignationId);
    }
    let value = value.to_str().map_err(|_| AppError::BadAssignationId)?;
    if !is_valid_assignation_id(value) {
        return Err(AppError::BadAssignationId);
    }
    Ok(value.to_owned())
}

impl RequestContext {
    /// Authenticates the request and reads its assignation.
    ///
    /// # Errors
    /// See [`Authenticator::authenticate`] and [`assignation_id`].
    pub fn from_headers(
        authenticator: &Authenticator,
        headers: &HeaderMap,
        assignation_id: String,
    ) -> Result<Self, AppError> {
        Ok(Self {
            principal: authenticator.authenticate(headers)?,
            assignation_id,
        })
    }

    /// The change context the hooks see.
    pub fn change_context(&self) -> ChangeContext {
        ChangeContext {
            user: self.principal.user.clone(),
            app: self.principal.app.clone(),
            assignation_id: self.assignation_id.clone(),
            reason: None,
        }
    }
}

/// 1 to 128 characters of `A-Z a-z 0-9 . _ : -`.
pub fn is_valid_assignation_id(id: &str) -> bool {
    (1..=MAX_ASSIGNATION_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}
