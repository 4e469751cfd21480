//! The HTTP surface besides the history browser (`crate::ui`): each endpoint's handler, the origin
//! and host rules every request passes first, and the JSON refusals.
//!
//! - [`graphql`]: `POST /graphql` (JSON bodies only) and `GET /graphql` (queries, or GraphiQL).
//! - [`documents`]: the parsed GraphQL documents kept for the next request with the same text.
//! - [`origin`]: refuses other sites' pages and unknown hosts; CORS for `--cors-origins`.
//! - [`refusal`]: requests refused before anything runs, answered and recorded in the audit trail.
//! - here: `/` (to the history browser), `/health`, `/metrics`, `/log/checkpoint`, and the answer to
//!   a panic.

pub(crate) mod documents;
pub(crate) mod graphql;
pub(crate) mod origin;
pub(crate) mod refusal;

use std::any::Any;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::AppError;
use crate::startup::AppState;

/// `/`: the history browser.
pub(crate) async fn root() -> Redirect {
    Redirect::temporary("/ui")
}

/// `/health`: `200 ok` when the database answers.
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// `/log/checkpoint`: the latest signed checkpoint of the verifiable log, as plain text (the C2SP
/// signed note), for anyone to copy elsewhere; 404 before the first one.
pub(crate) async fn checkpoint(State(state): State<AppState>) -> Response {
    match sea_orm_history::log::latest_checkpoint(&state.db).await {
        Ok(Some(checkpoint)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            checkpoint.note,
        )
            .into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no checkpoint has been signed yet\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading the latest checkpoint");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

/// `/metrics`: the Prometheus text exposition of the server's metrics.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let body = state
        .metrics
        .as_ref()
        .map(|m| m.render())
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// A panic anywhere in a handler: logged, answered with `INTERNAL`; the server keeps serving.
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = crate::audit::panic_message(panic.as_ref());
    tracing::error!(panic = message, "a request panicked");
    refusal::refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        &AppError::internal(message),
    )
}

/// Refuses, before any handler runs, requests from other sites' pages and for hosts the server does
/// not answer to (see [`origin`]).
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Err(error) = state.origins.check(request.headers()) {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        return graphql::refusal_for(&state, request.headers(), peer)
            .answer(StatusCode::FORBIDDEN, &error, None)
            .await;
    }
    next.run(request).await
}
