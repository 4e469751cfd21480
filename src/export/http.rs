//! `GET /export/history` and `GET /export/events`: the same exports as `chronicle export`, streamed
//! as the HTTP body (NDJSON or CSV, `?format=`), with the same authentication as GraphQL — in jwt
//! mode a bearer token (anonymous readers, where allowed, may export history but not the audit
//! trail). The `EXPORT` event is written when the export ends, with its row count and hash; an export that
//! fails midway aborts the body (the client sees a broken transfer, never a short file that looks
//! complete).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::{Export, Format, HistoryFilter};
use crate::audit::query::EventFilter;
use crate::audit::{AuditKind, AuditStatus};
use crate::auth::Source;
use crate::error::AppError;
use crate::http::graphql::refusal_for;
use crate::operations::access::AccessUser;
use crate::startup::AppState;

/// `GET /export/history`.
pub(crate) async fn history(state: State<AppState>, request: Request) -> Response {
    export(state, request, "history").await
}

/// `GET /export/events`.
pub(crate) async fn events(state: State<AppState>, request: Request) -> Response {
    export(state, request, "events").await
}

fn time(name: &str, value: &str) -> Result<DateTime<Utc>, AppError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| AppError::BadInput(format!("{name} must be an RFC 3339 time")))
}

/// The export and format the query string asks for.
fn parse(what: &str, query: &str) -> Result<(Export, Format), AppError> {
    let mut params: HashMap<String, String> = HashMap::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()).into_owned() {
        if params.insert(name.clone(), value).is_some() {
            return Err(AppError::BadInput(format!("{name} is given twice")));
        }
    }
    let format = match params.remove("format") {
        None => Format::Ndjson,
        Some(f) => {
            Format::parse(&f).ok_or_else(|| AppError::BadInput("format is ndjson or csv".into()))?
        }
    };
    let mut take = |name: &str| params.remove(name).filter(|v| !v.is_empty());
    let since = take("since").map(|v| time("since", &v)).transpose()?;
    let until = take("until").map(|v| time("until", &v)).transpose()?;
    let export = if what == "history" {
        Export::History(HistoryFilter {
            entity: take("entity")
                .map(|v| super::entity_named(&v))
                .transpose()?,
            object_id: take("objectId"),
            assignation_id: take("assignationId"),
            user: take("user"),
            since,
            until,
            trace_id: take("traceId").map(|v| super::trace_id(&v)).transpose()?,
        })
    } else {
        Export::Events(EventFilter {
            kind: take("kind")
                .map(|v| {
                    AuditKind::parse(&v).ok_or_else(|| {
                        AppError::BadInput(format!("kind {v:?} is not an audit kind"))
                    })
                })
                .transpose()?,
            action: take("action"),
            status: take("status")
                .map(|v| match v.as_str() {
                    "SUCCESS" => Ok(AuditStatus::Success),
                    "FAILURE" => Ok(AuditStatus::Failure),
                    _ => Err(AppError::BadInput("status is SUCCESS or FAILURE".into())),
                })
                .transpose()?,
            user: take("user"),
            app: take("app"),
            assignation_id: take("assignationId"),
            entity: take("entity")
                .map(|v| super::entity_named(&v))
                .transpose()?,
            object_id: take("objectId"),
            since,
            until,
            trace_id: take("traceId").map(|v| super::trace_id(&v)).transpose()?,
        })
    };
    if let Some(unknown) = params.keys().next() {
        return Err(AppError::BadInput(format!(
            "{unknown} is not a filter of this export"
        )));
    }
    Ok((export, format))
}

async fn export(State(state): State<AppState>, request: Request, what: &'static str) -> Response {
    let (parts, _) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let refusal = refusal_for(&state, &parts.headers, peer);
    let principal = match state.authenticator.authenticate(&parts.headers) {
        Ok(principal) => principal,
        Err(e) => {
            let status = match e {
                AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                _ => StatusCode::BAD_REQUEST,
            };
            return refusal.answer(status, &e, None).await;
        }
    };
    if what == "events" && principal.source == Source::Anonymous {
        let e = AppError::Unauthenticated("exporting the audit trail needs a bearer token".into());
        return refusal.answer(StatusCode::UNAUTHORIZED, &e, None).await;
    }
    let (export, format) = match parse(what, parts.uri.query().unwrap_or("")) {
        Ok(parsed) => parsed,
        Err(e) => return refusal.answer(StatusCode::BAD_REQUEST, &e, None).await,
    };
    // The access log's user: the principal, as for `/graphql`.
    let access_user = principal.user.clone().map(AccessUser);
    let (tx, mut rx) = mpsc::channel::<super::Chunk>(8);
    let db = state.db.clone();
    let (ip, user_agent) = (refusal.ip.clone(), refusal.user_agent.clone());
    // The export runs in a task of its own, outside the request's trace scope: it takes the trace along.
    let trace = crate::audit::current_trace();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let outcome = super::write(&db, &export, format, tx, |_| {}).await;
        let mut event = super::event(&export, format, "http", &outcome);
        event.duration_ms = Some(i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX));
        event.user = principal.user;
        event.app = principal.app;
        event.ip = ip;
        event.user_agent = user_agent;
        event.trace = trace;
        if let Err(e) = crate::audit::record(&db, event).await {
            tracing::error!(error = %e, "cannot write the export's audit event");
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let file = format!(
        "chronicle-{what}-{}.{}",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        format.extension()
    );
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Some(user) = access_user {
        response.extensions_mut().insert(user);
    }
    response
}
