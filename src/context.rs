//! Who, through which app and in which assignation a request acts: read once from its headers
//! (`X-User`, `X-App`, `X-Assignation-Id`), validated, and handed to the GraphQL layer, whose extension
//! makes it the [`entity::context::ChangeContext`] of every change the request makes.

use axum::http::HeaderMap;
use entity::context::ChangeContext;

use crate::error::AppError;

/// The longest `X-User` / `X-App` accepted (the width of the `actor`/`app` columns).
pub const MAX_IDENTITY_CHARS: usize = 200;
/// The longest `X-Assignation-Id`.
pub const MAX_ASSIGNATION_ID_CHARS: usize = 128;

/// The validated change context of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestContext {
    /// The acting user.
    pub user: Option<String>,
    /// The app the user acts through.
    pub app: Option<String>,
    /// The request's assignation: the client's `X-Assignation-Id`, or a fresh UUIDv7.
    pub assignation_id: String,
}

impl RequestContext {
    /// Reads and validates the context headers.
    ///
    /// # Errors
    /// `BAD_ASSIGNATION_ID` for a malformed `X-Assignation-Id`; `BAD_INPUT` for an unreadable or overlong
    /// `X-User`/`X-App`.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, AppError> {
        // A repeated header is ambiguous: which assignation, which user? Refuse rather than pick one.
        if headers.get_all("x-assignation-id").iter().count() > 1 {
            return Err(AppError::BadAssignationId);
        }
        for name in ["x-user", "x-app"] {
            if headers.get_all(name).iter().count() > 1 {
                return Err(AppError::BadInput(format!("{name} may be sent only once")));
            }
        }
        let assignation_id = match headers.get("x-assignation-id") {
            None => uuid::Uuid::now_v7().to_string(),
            Some(value) => {
                let value = value.to_str().map_err(|_| AppError::BadAssignationId)?;
                if !is_valid_assignation_id(value) {
                    return Err(AppError::BadAssignationId);
                }
                value.to_owned()
            }
        };
        Ok(Self {
            user: identity(headers, "x-user")?,
            app: identity(headers, "x-app")?,
            assignation_id,
        })
    }

    /// The change context the hooks see.
    pub fn change_context(&self) -> ChangeContext {
        ChangeContext {
            user: self.user.clone(),
            app: self.app.clone(),
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

fn identity(headers: &HeaderMap, name: &str) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let value = std::str::from_utf8(value.as_bytes())
        .map_err(|_| AppError::BadInput(format!("{name} must be UTF-8")))?
        .trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > MAX_IDENTITY_CHARS {
        return Err(AppError::BadInput(format!(
            "{name} may not exceed {MAX_IDENTITY_CHARS} characters"
        )));
    }
    Ok(Some(value.to_owned()))
}
