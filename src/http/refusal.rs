//! Requests refused before anything runs: answered with a GraphQL-shaped JSON body carrying
//! `errors[].extensions.code`, and recorded in the audit trail — `LOGIN_FAILED` for refused credentials
//! (with the reason, never the token), `SECURITY` for everything else — with the client's address, user
//! agent, and the user and app the request claimed.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::DatabaseConnection;

use crate::audit::{AuditKind, NewEvent};
use crate::context;
use crate::error::AppError;

/// What a refusal records about the request it refuses.
pub(crate) struct Refusal<'a> {
    db: &'a DatabaseConnection,
    pub(crate) ip: Option<String>,
    pub(crate) user_agent: Option<String>,
    /// The user the request claimed (`X-User` in header mode), even though it was refused.
    pub(crate) user: Option<String>,
    /// The app the request claimed (`X-App` in header mode).
    pub(crate) app: Option<String>,
}

impl<'a> Refusal<'a> {
    /// A refusal of the request with `headers` from `peer`.
    pub(crate) fn new(
        db: &'a DatabaseConnection,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        trusted_proxies: &[IpAddr],
        claims_identity: bool,
        max_identity_chars: usize,
    ) -> Self {
        let claimed = |name: &str| {
            claims_identity
                .then(|| context::claimed_identity(headers, name, max_identity_chars))
                .flatten()
        };
        Self {
            db,
            ip: context::client_ip(peer, headers, trusted_proxies),
            user_agent: context::user_agent(headers),
            user: claimed("x-user"),
            app: claimed("x-app"),
        }
    }

    /// Records `event` with what is known of the request.
    pub(crate) async fn record(&self, mut event: NewEvent, assignation_id: Option<&str>) {
        event.ip = self.ip.clone();
        event.user_agent = self.user_agent.clone();
        event.assignation_id = assignation_id.map(str::to_owned);
        if event.user.is_none() {
            event.user = self.user.clone();
        }
        if event.app.is_none() {
            event.app = self.app.clone();
        }
        if let Err(e) = crate::audit::record(self.db, event).await {
            tracing::error!(error = %e, "cannot write the audit event");
        }
    }

    /// Records the refusal of the whole request with `error` and answers it with `status`.
    pub(crate) async fn answer(
        &self,
        status: StatusCode,
        error: &AppError,
        assignation_id: Option<&str>,
    ) -> Response {
        let event = match error {
            AppError::Unauthenticated(reason) => {
                NewEvent::new(AuditKind::LoginFailed, "authenticate")
                    .failed(format!("{}: {error}", error.code()))
                    .details(serde_json::json!({ "reason": reason }))
            }
            _ => NewEvent::new(AuditKind::Security, "refused_request")
                .failed(format!("{}: {error}", error.code()))
                .details(serde_json::json!({ "status": status.as_u16() })),
        };
        self.record(event, assignation_id).await;
        let response = refuse(status, error);
        match assignation_id {
            Some(id) => with_assignation(response, id),
            None => response,
        }
    }
}

/// A GraphQL-shaped error body for a request refused as a whole. `UNAUTHENTICATED` answers also carry
/// `WWW-Authenticate: Bearer`.
pub(crate) fn refuse(status: StatusCode, error: &AppError) -> Response {
    let body = serde_json::json!({
        "data": null,
        "errors": [{"message": error.to_string(), "extensions": {"code": error.code()}}],
    });
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if matches!(error, AppError::Unauthenticated(_)) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// Echoes the request's assignation in `X-Assignation-Id`.
pub(crate) fn with_assignation(mut response: Response, assignation_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(assignation_id) {
        response.headers_mut().insert("x-assignation-id", value);
    }
    response
}
