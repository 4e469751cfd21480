//! `/graphql` over HTTP, as the GraphQL-over-HTTP specification has it.
//!
//! - `POST` takes a JSON body (`Content-Type: application/json`, or
//!   `application/graphql-response+json`). Any other type — the `text/plain`, form and multipart bodies
//!   a web page can make a browser send to any address without asking first, or no type at all — is
//!   refused with 415 before anything runs, so no page can make a visitor's Chronicle write.
//! - `GET /graphql?query=…[&variables=…&operationName=…]` runs queries; a mutation over `GET` is refused
//!   with 405. `GET /graphql` without `query` serves GraphiQL.
//!
//! Before execution the handler refuses, each with a JSON body carrying `errors[].extensions.code` and
//! an audit event: a malformed `X-Assignation-Id` (400), refused credentials (401), an oversized body
//! (413), a body that is not a GraphQL request or a document that does not parse, fails validation or
//! exceeds a query limit (400). A request that executes answers 200, with an error for each field that
//! failed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use async_graphql::parser::types::OperationType;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};

use super::refusal::{Refusal, refuse, with_assignation};
use crate::audit::{AuditKind, NewEvent};
use crate::auth::Authenticator;
use crate::context::{self, RequestContext};
use crate::error::AppError;
use crate::graphql::extension::{RequestVariables, SelectedOperation, expanded_nodes, operation};
use crate::operations::access::AccessUser;
use crate::startup::AppState;

/// The body types `POST /graphql` takes.
const JSON_TYPES: [&str; 2] = ["application/json", "application/graphql-response+json"];

/// How the request arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Get,
    Post,
}

/// `POST /graphql`.
pub(crate) async fn post(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let refusal = refusal_of(&state, &parts);
    if let Err(e) = json_body(&parts.headers) {
        return refusal
            .answer(StatusCode::UNSUPPORTED_MEDIA_TYPE, &e, None)
            .await;
    }
    let max_body = state.limits.max_body_bytes;
    let too_large =
        || AppError::LimitExceeded(format!("the request body may not exceed {max_body} bytes"));
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return refusal
            .answer(StatusCode::PAYLOAD_TOO_LARGE, &too_large(), None)
            .await;
    }
    let body = match axum::body::to_bytes(body, max_body).await {
        Ok(body) => body,
        Err(e) => {
            tracing::debug!(error = %e, "request body refused");
            return refusal
                .answer(StatusCode::PAYLOAD_TOO_LARGE, &too_large(), None)
                .await;
        }
    };
    let request = graphql_request(&body);
    execute(&state, &parts.headers, refusal, request, Via::Post).await
}

/// `GET /graphql`: GraphiQL without `query`, else the query it names.
pub(crate) async fn get(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let params: HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| {
            url_params(q)
                .into_iter()
                .collect::<HashMap<String, String>>()
        })
        .unwrap_or_default();
    if !params.contains_key("query") {
        return graphiql();
    }
    let refusal = refusal_of(&state, &parts);
    let request = get_request(params);
    execute(&state, &parts.headers, refusal, request, Via::Get).await
}

fn graphiql() -> Response {
    crate::ui::graphiql::page()
}

fn refusal_of<'a>(state: &'a AppState, parts: &Parts) -> Refusal<'a> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    refusal_for(state, &parts.headers, peer)
}

/// The refusal of a request with `headers` from `peer` on `state`'s server.
pub(crate) fn refusal_for<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Refusal<'a> {
    Refusal::new(
        &state.db,
        headers,
        peer,
        &state.trusted_proxies,
        matches!(*state.authenticator, Authenticator::Header { .. }),
        state.limits.max_identity_chars,
    )
}

/// The media type of the body, when it is one `POST /graphql` takes.
///
/// # Errors
/// `BAD_INPUT` naming the type that is not taken.
fn json_body(headers: &HeaderMap) -> Result<(), AppError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let media = declared
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some(m) if JSON_TYPES.contains(&m) => Ok(()),
        Some(m) => Err(AppError::BadInput(format!(
            "POST /graphql takes a JSON body (Content-Type: application/json), not {m}"
        ))),
        None => Err(AppError::BadInput(
            "POST /graphql takes a JSON body: send Content-Type: application/json".into(),
        )),
    }
}

/// The pairs of a URL query string, decoded.
fn url_params(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The GraphQL request a `GET` names: `query`, `operationName`, and `variables` as JSON text.
fn get_request(mut params: HashMap<String, String>) -> Result<async_graphql::Request, AppError> {
    let query = params.remove("query").unwrap_or_default();
    let mut request = async_graphql::Request::new(query);
    if let Some(name) = params.remove("operationName").filter(|n| !n.is_empty()) {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.remove("variables").filter(|v| !v.is_empty()) {
        let value: serde_json::Value = serde_json::from_str(&variables)
            .map_err(|e| AppError::BadInput(format!("`variables` is not JSON: {e}")))?;
        match value {
            serde_json::Value::Object(_) => {
                request = request.variables(async_graphql::Variables::from_json(value));
            }
            serde_json::Value::Null => {}
            _ => return Err(AppError::BadInput("`variables` must be an object".into())),
        }
    }
    Ok(request)
}

/// The body as a GraphQL request: a JSON object with a `query` string, optional `variables` (an
/// object) and `operationName`.
fn graphql_request(body: &[u8]) -> Result<async_graphql::Request, AppError> {
    let bad = |why: &str| AppError::BadInput(format!("the body is not a GraphQL request: {why}"));
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(bad("expected a JSON object"));
    };
    match object.get("query") {
        None => return Err(bad("`query` is missing")),
        Some(serde_json::Value::String(_)) => {}
        Some(_) => return Err(bad("`query` must be a string")),
    }
    if object
        .get("variables")
        .is_some_and(|v| !v.is_object() && !v.is_null())
    {
        return Err(bad("`variables` must be an object"));
    }
    serde_json::from_value(value).map_err(|e| bad(&e.to_string()))
}

/// The status of a request refused as a whole: 401 for refused credentials, else 400.
fn refused_status(error: &AppError) -> StatusCode {
    match error {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Authenticates, checks and runs a GraphQL request.
async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    refusal: Refusal<'_>,
    request: Result<async_graphql::Request, AppError>,
    via: Via,
) -> Response {
    let assignation_id = match context::assignation_id(headers) {
        Ok(id) => id,
        Err(e) => return refusal.answer(refused_status(&e), &e, None).await,
    };
    let refuse_with = |e: AppError| {
        let refusal = &refusal;
        let assignation_id = &assignation_id;
        async move {
            refusal
                .answer(refused_status(&e), &e, Some(assignation_id.as_str()))
                .await
        }
    };
    let mut context =
        match RequestContext::from_headers(&state.authenticator, headers, assignation_id.clone()) {
            Ok(context) => context,
            Err(e) => return refuse_with(e).await,
        };
    context.ip = refusal.ip.clone();
    context.user_agent = refusal.user_agent.clone();
    context.trace = crate::audit::current_trace();
    if let Err(e) = context.place(&state.provenance, &state.db, headers).await {
        return refuse_with(e).await;
    }
    // A provenance token names the assignation.
    let assignation_id = context.assignation_id.clone();
    let mut request = match request {
        Ok(request) => request,
        Err(e) => return refuse_with(e).await,
    };
    // Parsed once here (async-graphql reuses it), to refuse fragment blow-ups before its own checks
    // expand them, and mutations sent with GET; or parsed before, from the same text.
    let kept = state.documents.get(&request.query);
    let parsed_before = kept.is_some();
    if let Some(document) = kept {
        request.set_parsed_query(document);
    }
    let operation_name = request.operation_name.clone();
    let refused = match request.parsed_query() {
        Err(e) => Some((
            StatusCode::BAD_REQUEST,
            AppError::BadInput(format!("the query does not parse: {}", e.message)),
        )),
        Ok(document) if expanded_nodes(document) > state.limits.max_query_complexity => Some((
            StatusCode::BAD_REQUEST,
            AppError::LimitExceeded(format!(
                "the query expands to more than {} fields",
                state.limits.max_query_complexity
            )),
        )),
        Ok(document)
            if via == Via::Get
                && operation(document, operation_name.as_deref())
                    .is_some_and(|op| op.ty == OperationType::Mutation) =>
        {
            Some((
                StatusCode::METHOD_NOT_ALLOWED,
                AppError::BadInput("mutations are sent with POST, never GET".into()),
            ))
        }
        Ok(document)
            if state.provenance.require
                && context.provenance.is_none()
                && operation(document, operation_name.as_deref())
                    .is_some_and(|op| op.ty == OperationType::Mutation) =>
        {
            Some((
                StatusCode::UNAUTHORIZED,
                AppError::Unauthenticated(format!(
                    "mutations need a provenance token (in the {} header) on this server",
                    state.provenance.header
                )),
            ))
        }
        Ok(_) => None,
    };
    if let Some((status, e)) = refused {
        let mut response = refusal
            .answer(status, &e, Some(assignation_id.as_str()))
            .await;
        if status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        return response;
    }
    if !parsed_before
        && state.documents.keeps(&request.query)
        && let Ok(document) = request.parsed_query().cloned()
    {
        state.documents.put(&request.query, document);
    }
    if let Some(metrics) = &state.metrics {
        metrics.document(parsed_before);
    }
    let selected = SelectedOperation(request.operation_name.clone());
    let variables = RequestVariables(request.variables.clone());
    let (user, app) = (
        context.principal.user.clone(),
        context.principal.app.clone(),
    );
    let change = context.change_context(state.registry);
    let slow = SlowRequest::of(&mut request, &context);
    let started = std::time::Instant::now();
    let (mut response, database_time) = crate::database::timed(
        state.schema.execute(
            request
                .data(change)
                .data(context)
                .data(selected)
                .data(variables),
        ),
    )
    .await;
    let elapsed = started.elapsed();
    if elapsed > state.slow_request {
        slow.record(state, &refusal, &response, elapsed, database_time)
            .await;
    }
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", crate::error::code_of_unclassified(&error.message));
        }
    }
    // Refused before anything ran (parse, validation, limits): the request as a whole.
    let refused_whole = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    // Fields refused for going over a limit (a page larger than the cap, say) while the rest ran:
    // a refused limit, written as one `SECURITY` event like a refusal of the whole request.
    let over_limits: Vec<&str> = response
        .errors
        .iter()
        .filter(|e| has_code(e, "LIMIT_EXCEEDED"))
        .map(|e| e.message.as_str())
        .collect();
    if !refused_whole && !over_limits.is_empty() {
        let mut event =
            NewEvent::new(AuditKind::Security, "refused_query").failed(over_limits.join("; "));
        event.user = user.clone();
        event.app = app.clone();
        refusal.record(event, Some(assignation_id.as_str())).await;
    }
    let mut status = StatusCode::OK;
    if refused_whole {
        let message = response
            .errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let mut event = NewEvent::new(AuditKind::Security, "refused_query").failed(message);
        event.user = user.clone();
        event.app = app;
        refusal.record(event, Some(assignation_id.as_str())).await;
        let unauthenticated = response
            .errors
            .iter()
            .all(|e| has_code(e, "UNAUTHENTICATED"));
        status = if unauthenticated {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
    }
    let body = match serde_json::to_string(&response) {
        Ok(body) => body,
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                &AppError::internal(format!("serializing a response: {e}")),
            );
        }
    };
    let mut response = with_assignation(
        (
            status,
            [(header::CONTENT_TYPE, response_type(headers))],
            body,
        )
            .into_response(),
        assignation_id.as_str(),
    );
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(user) = user {
        response.extensions_mut().insert(AccessUser(user));
    }
    response
}

/// Whether `error` carries `extensions.code` `code`.
fn has_code(error: &async_graphql::ServerError, code: &str) -> bool {
    error
        .extensions
        .as_ref()
        .and_then(|x| x.get("code"))
        .is_some_and(|c| *c == async_graphql::Value::from(code))
}

/// What a slow request's `PERFORMANCE` event says about it, taken before it runs.
struct SlowRequest {
    operation: Option<String>,
    kind: &'static str,
    document_hash: String,
    user: Option<String>,
    app: Option<String>,
    assignation: String,
}

impl SlowRequest {
    fn of(request: &mut async_graphql::Request, context: &RequestContext) -> Self {
        use sha2::{Digest, Sha256};
        let wanted = request.operation_name.clone();
        let wanted = wanted.as_deref();
        let (operation, kind) = match request.parsed_query() {
            Ok(document) => {
                // The name the client selected, or that of the document's only operation.
                let name = document
                    .operations
                    .iter()
                    .filter_map(|(name, _)| name)
                    .find(|name| wanted.is_none_or(|w| name.as_str() == w))
                    .map(|name| name.to_string())
                    .or_else(|| wanted.map(str::to_owned));
                (name, operation_of(document, wanted).unwrap_or("query"))
            }
            Err(_) => (wanted.map(str::to_owned), "query"),
        };
        Self {
            operation,
            kind,
            document_hash: hex::encode(Sha256::digest(request.query.as_bytes())),
            user: context.principal.user.clone(),
            app: context.principal.app.clone(),
            assignation: context.assignation_id.to_string(),
        }
    }

    /// Records the event and counts it.
    async fn record(
        self,
        state: &AppState,
        refusal: &Refusal<'_>,
        response: &async_graphql::Response,
        elapsed: std::time::Duration,
        database: std::time::Duration,
    ) {
        let millis = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let name = self.operation.clone().unwrap_or_else(|| "anonymous".into());
        let mut event = NewEvent::new(AuditKind::Performance, name).details(serde_json::json!({
            "operation": self.operation,
            "type": self.kind,
            "documentHash": self.document_hash,
            "durationMs": millis(elapsed),
            "databaseMs": millis(database),
            "thresholdMs": millis(state.slow_request),
        }));
        event.duration_ms = Some(i32::try_from(elapsed.as_millis()).unwrap_or(i32::MAX));
        event.user = self.user;
        event.app = self.app;
        if !response.errors.is_empty() {
            let messages: Vec<&str> = response.errors.iter().map(|e| e.message.as_str()).collect();
            event = event.failed(messages.join("; "));
        }
        tracing::warn!(
            operation = self.operation.as_deref().unwrap_or("anonymous"),
            duration_ms = millis(elapsed),
            database_ms = millis(database),
            "slow request"
        );
        refusal.record(event, Some(&self.assignation)).await;
        if let Some(metrics) = &state.metrics {
            metrics.slow_request(self.kind);
        }
    }
}

/// `query` or `mutation`: the type of the operation that will run.
fn operation_of(
    document: &async_graphql::parser::types::ExecutableDocument,
    name: Option<&str>,
) -> Option<&'static str> {
    operation(document, name).map(|op| match op.ty {
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
        OperationType::Query => "query",
    })
}

/// `application/graphql-response+json` when the client accepts it, else `application/json`.
fn response_type(headers: &HeaderMap) -> &'static str {
    let accepts = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            m.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(JSON_TYPES[1]))
        });
    if accepts {
        JSON_TYPES[1]
    } else {
        JSON_TYPES[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn only_json_bodies_are_taken() {
        assert!(json_body(&with_type("application/json")).is_ok());
        assert!(json_body(&with_type("Application/JSON; charset=utf-8")).is_ok());
        assert!(json_body(&with_type("application/graphql-response+json")).is_ok());
        for refused in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/graphql",
        ] {
            assert!(json_body(&with_type(refused)).is_err(), "{refused}");
        }
        assert!(json_body(&HeaderMap::new()).is_err());
    }

    #[test]
    fn a_body_without_query_says_it_is_missing() {
        let Err(e) = graphql_request(br#"{"variables": {}}"#) else {
            panic!("accepted");
        };
        assert!(e.to_string().contains("`query` is missing"), "{e}");
        let Err(e) = graphql_request(br#"{"query": 1}"#) else {
            panic!("accepted");
        };
        assert!(e.to_string().contains("must be a string"), "{e}");
    }
}
