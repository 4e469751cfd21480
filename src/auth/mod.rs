//! Who a request acts as, and what it may do.
//!
//! [`Authenticator`] turns a request's headers into a [`Principal`]: in header mode from `X-User` and
//! `X-App` (trusted), in jwt mode from a verified bearer token ([`jwt`]). A provenance token
//! ([`provenance`]) places the request's assignation in a tree and names the human it runs for. The
//! permission rules are methods of [`Principal`], so every check in the server reads the same rules.

pub mod jwt;
pub mod provenance;

use axum::http::HeaderMap;

use crate::config::{AuthMode, AuthSettings, Limits};
use crate::error::AppError;

/// The scope that lets a user revert (and preview reverting) anyone's assignation.
pub const REVERT_ANY: &str = "history:revert-any";

/// Where a principal's identity came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `X-User`/`X-App` in header mode (which may name nobody: local use).
    Header,
    /// A verified bearer token.
    Token,
    /// No credentials in jwt mode (only when anonymous reads are allowed).
    Anonymous,
}

/// The identity a request acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The acting user (`X-User`, or the token's `sub`).
    pub user: Option<String>,
    /// The app (`X-App`, or the token's `azp`, else `client_id`).
    pub app: Option<String>,
    /// Permissions (the token's `scope`); none in header mode.
    pub scopes: Vec<String>,
    /// How the identity was established.
    pub source: Source,
}

impl Principal {
    /// Whether the request may run mutations: anonymous requests in jwt mode may not.
    pub fn may_write(&self) -> bool {
        self.source != Source::Anonymous
    }

    /// Whether the principal holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the principal may revert, or preview the revert of, an assignation started by
    /// `started_by`. With auth on, only that user or a holder of [`REVERT_ANY`] may; header mode trusts
    /// its caller (it has no permissions to check).
    pub fn may_revert(&self, started_by: Option<&str>) -> bool {
        match self.source {
            Source::Header => true,
            Source::Anonymous => false,
            Source::Token => {
                self.has_scope(REVERT_ANY)
                    || (self.user.is_some() && self.user.as_deref() == started_by)
            }
        }
    }
}

/// The configured way of establishing a [`Principal`].
pub enum Authenticator {
    /// Trust `X-User`/`X-App`.
    Header {
        /// Longest value accepted, in characters.
        max_identity_chars: usize,
    },
    /// Verify `Authorization: Bearer <JWT>`.
    Jwt {
        /// The token verifier (boxed: it holds the key, much larger than the header variant).
        verifier: Box<jwt::JwtVerifier>,
        /// Whether requests without a token may run queries.
        allow_anonymous_read: bool,
        /// Longest `Authorization` header, in bytes.
        max_token_bytes: usize,
    },
}

impl Authenticator {
    /// The authenticator the settings describe.
    ///
    /// # Errors
    /// A jwt mode without exactly one key, or a key file that cannot be read or parsed.
    pub fn from_settings(settings: &AuthSettings, limits: &Limits) -> Result<Self, jwt::KeyError> {
        Ok(match settings.mode {
            AuthMode::Header => Self::Header {
                max_identity_chars: limits.max_identity_chars,
            },
            AuthMode::Jwt => Self::Jwt {
                verifier: Box::new(jwt::JwtVerifier::from_settings(
                    settings,
                    limits.max_identity_chars,
                )?),
                allow_anonymous_read: settings.allow_anonymous_read,
                max_token_bytes: limits.max_token_bytes,
            },
        })
    }

    /// Establishes who the request acts as.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for missing (unless anonymous reads are allowed), malformed, expired or badly
    /// signed tokens; `LIMIT_EXCEEDED` for an overlong `Authorization` header; `BAD_INPUT` for an
    /// unreadable, repeated or overlong `X-User`/`X-App` in header mode.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AppError> {
        match self {
            Self::Header { max_identity_chars } => Ok(Principal {
                user: identity_header(headers, "x-user", *max_identity_chars)?,
                app: identity_header(headers, "x-app", *max_identity_chars)?,
                scopes: Vec::new(),
                source: Source::Header,
            }),
            Self::Jwt {
                verifier,
                allow_anonymous_read,
                max_token_bytes,
            } => {
                let mut values = headers.get_all(axum::http::header::AUTHORIZATION).iter();
                let (Some(value), None) = (values.next(), values.next()) else {
                    if headers.contains_key(axum::http::header::AUTHORIZATION) {
                        return Err(AppError::Unauthenticated(
                            "send one Authorization header".into(),
                        ));
                    }
                    return if *allow_anonymous_read {
                        Ok(Principal {
                            user: None,
                            app: None,
                            scopes: Vec::new(),
                            source: Source::Anonymous,
                        })
                    } else {
                        Err(AppError::Unauthenticated(
                            "a bearer token is required".into(),
                        ))
                    };
                };
                if value.len() > *max_token_bytes {
                    return Err(AppError::LimitExceeded(format!(
                        "the Authorization header may not exceed {max_token_bytes} bytes"
                    )));
                }
                let token = value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
                    AppError::Unauthenticated(
                        "the Authorization header must be `Bearer <token>`".into(),
                    )
                })?;
                verifier
                    .verify(token)
                    .map_err(|e| AppError::Unauthenticated(e.to_string()))
            }
        }
    }
}

/// The token of `Bearer <token>` (the scheme is case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A trusted identity header: absent or blank is nobody; repeated, non-UTF-8 or overlong is refused.
fn identity_header(
    headers: &HeaderMap,
    name: &str,
    max: usize,
) -> Result<Option<String>, AppError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AppError::BadInput(format!("{name} may be sent only once")));
    }
    let value = std::str::from_utf8(value.as_bytes())
        .map_err(|_| AppError::BadInput(format!("{name} must be UTF-8")))?
        .trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max {
        return Err(AppError::BadInput(format!(
            "{name} may not exceed {max} characters"
        )));
    }
    Ok(Some(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_is_read_whatever_the_scheme_case() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn only_the_owner_or_a_revert_any_holder_may_revert_with_auth_on() {
        let alice = Principal {
            user: Some("alice".into()),
            app: None,
            scopes: vec![],
            source: Source::Token,
        };
        assert!(alice.may_revert(Some("alice")));
        assert!(!alice.may_revert(Some("bob")));
        assert!(!alice.may_revert(None));
        let admin = Principal {
            scopes: vec![REVERT_ANY.into()],
            ..alice.clone()
        };
        assert!(admin.may_revert(Some("bob")));
        let header = Principal {
            source: Source::Header,
            ..alice
        };
        assert!(header.may_revert(Some("bob")));
    }
}
