//! The request observer: a middleware around every route that times each request, counts it in the
//! metrics and writes one access-log line in the combined log format (target [`ACCESS_TARGET`]):
//!
//! `127.0.0.1 - alice [23/Nov/2026:10:00:00 +0000] "POST /graphql HTTP/1.1" 200 92 "-" "curl/8.5"`
//!
//! With JSON logs the same line is the event's message, and its parts are fields too (with the
//! request's `trace_id` and `span_id`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::HttpBody;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Version, header};
use axum::middleware::Next;
use axum::response::Response;

use sea_orm_history::Trace;

use super::metrics::{self, Metrics};
use crate::context;

/// The `tracing` target of access-log lines.
pub const ACCESS_TARGET: &str = "chronicle::access";

/// What the observer needs.
#[derive(Clone)]
pub struct Observer {
    /// Where requests are counted, when metrics are on.
    pub metrics: Option<Arc<Metrics>>,
    /// Whether to write access-log lines.
    pub access_log: bool,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<Vec<IpAddr>>,
}

/// The user a request was served for; handlers put it in the response's extensions for the log.
#[derive(Clone, Debug)]
pub struct AccessUser(pub String);

/// Times, counts and logs one request.
pub async fn observe(State(observer): State<Observer>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let target = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let path = request.uri().path().to_owned();
    let version = request.version();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = context::client_ip(peer, request.headers(), &observer.trusted_proxies);
    let referer = header_text(request.headers(), header::REFERER);
    let agent = header_text(request.headers(), header::USER_AGENT);
    let trace = request.extensions().get::<Trace>().cloned();

    let response = next.run(request).await;

    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    if let Some(metrics) = &observer.metrics {
        metrics.request(
            metrics::method(&method),
            metrics::route(&path),
            status,
            elapsed.as_secs_f64(),
        );
    }
    if observer.access_log {
        let bytes = response.body().size_hint().exact();
        let user = response
            .extensions()
            .get::<AccessUser>()
            .map(|u| u.0.clone());
        let line = format!(
            "{} - {} [{}] \"{} {} {}\" {} {} \"{}\" \"{}\"",
            ip.as_deref().unwrap_or("-"),
            user.as_deref().map_or_else(|| "-".to_owned(), escape),
            chrono::Utc::now().format("%d/%b/%Y:%H:%M:%S %z"),
            method,
            escape(&target),
            http_version(version),
            status,
            bytes.map_or_else(|| "-".to_owned(), |b| b.to_string()),
            referer.as_deref().map_or_else(|| "-".to_owned(), escape),
            agent.as_deref().map_or_else(|| "-".to_owned(), escape),
        );
        tracing::info!(
            target: ACCESS_TARGET,
            ip = ip.as_deref(),
            user = user.as_deref(),
            method = %method,
            path = %path,
            status,
            bytes,
            duration_ms = elapsed.as_secs_f64() * 1_000.0,
            trace_id = trace.as_ref().map(Trace::trace_id),
            span_id = trace.as_ref().map(Trace::span_id),
            "{line}"
        );
    }
    response
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn http_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Escapes a field the way Apache does: `"` and `\` with a backslash, control and non-ASCII bytes as
/// `\xhh`, so a client cannot forge a log line or break the quoting.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn log_fields_cannot_break_out_of_their_quotes_or_line() {
        assert_eq!(escape("curl/8.5"), "curl/8.5");
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
        assert_eq!(escape("x\ny\u{e9}"), "x\\x0ay\\xc3\\xa9");
    }
}
