//! W3C Trace Context: the middleware that gives every request a span of a trace — the client's, from
//! its `traceparent` header, or one the server starts — before anything else runs.
//!
//! The request runs inside a `tracing` span named `request` whose `trace_id` and `span_id` fields are
//! that trace and the server's own span in it (a child of the client's span), so every log line of
//! the request carries them. The same [`Trace`] goes into the request's extensions, from where the
//! handlers put it on every history record and audit event the request writes, and back to the client
//! in a `traceresponse` header. With `--otlp-endpoint` the span is an OpenTelemetry span, exported with
//! those very ids (see `crate::telemetry`).

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use sea_orm_history::Trace;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header the trace comes in.
pub const TRACEPARENT: &str = "traceparent";
/// The header the server's span goes back in (W3C Trace Context Level 2).
pub const TRACERESPONSE: &str = "traceresponse";

/// The parts of a valid `traceparent`: trace id, parent span id, and whether the caller sampled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// The caller's span: 16 lowercase hex digits.
    pub parent_id: String,
    /// The `sampled` flag.
    pub sampled: bool,
}

/// Parses a `traceparent` value as W3C Trace Context says: `00-<trace id>-<parent id>-<flags>`,
/// lowercase hex, neither id all zeros; a later version may append fields after the flags, version
/// `ff` is invalid. `None` for anything else (the server then starts a trace of its own).
pub fn parse_traceparent(value: &str) -> Option<TraceParent> {
    let mut parts = value.trim().splitn(5, '-');
    let (version, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let rest = parts.next();
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !hex(version, 2) || version == "ff" || !hex(flags, 2) {
        return None;
    }
    // Version 00 has exactly four fields.
    if version == "00" && rest.is_some() {
        return None;
    }
    Trace::new(trace_id, parent_id)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(TraceParent {
        trace_id: trace_id.to_owned(),
        parent_id: parent_id.to_owned(),
        sampled: flags & 1 == 1,
    })
}

/// The request's `traceparent`, when it carries exactly one valid one.
fn traceparent(headers: &HeaderMap) -> Option<TraceParent> {
    let mut values = headers.get_all(TRACEPARENT).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_traceparent(first.to_str().ok()?)
}

/// A fresh random id of `len` hex digits (16 or 32), never all zeros.
fn random_id(len: usize) -> String {
    loop {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let id = &id[..len];
        if id.bytes().any(|b| b != b'0') {
            return id.to_owned();
        }
    }
}

/// Runs the request inside its span of a trace (see the module docs).
pub async fn trace(mut request: Request, next: Next) -> Response {
    let parent = traceparent(request.headers());
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("{} {}", request.method(), request.uri().path()),
        otel.kind = "server",
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    // With the OpenTelemetry layer installed the span takes its ids from it (the client's trace, a
    // span id of its own); without it, they are made here the same way.
    if parent.is_some() {
        let carrier = TraceCarrier(request.headers());
        let _ = span.set_parent(TraceContextPropagator::new().extract(&carrier));
    }
    let otel = span.context().span().span_context().clone();
    let (trace, sampled) = match (otel.is_valid(), &parent) {
        (true, _) => (
            Trace::new(&otel.trace_id().to_string(), &otel.span_id().to_string()),
            otel.is_sampled(),
        ),
        (false, Some(parent)) => (Trace::new(&parent.trace_id, &random_id(16)), parent.sampled),
        (false, None) => (Trace::new(&random_id(32), &random_id(16)), true),
    };
    let Some(trace) = trace else {
        // Unreachable: every id above is valid hex of the right length.
        return next.run(request).instrument(span).await;
    };
    span.record("trace_id", trace.trace_id());
    span.record("span_id", trace.span_id());
    request.extensions_mut().insert(trace.clone());
    let mut response = crate::audit::in_trace(trace.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    span.record("http.response.status_code", response.status().as_u16());
    let value = format!(
        "00-{}-{}-{}",
        trace.trace_id(),
        trace.span_id(),
        if sampled { "01" } else { "00" }
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(TRACERESPONSE, value);
    }
    response
}

/// Request headers as OpenTelemetry's propagators read them.
struct TraceCarrier<'a>(&'a HeaderMap);

impl opentelemetry::propagation::Extractor for TraceCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_00_traceparent_gives_its_trace_parent_and_sampled_flag() {
        let parsed = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(
            parsed,
            Some(TraceParent {
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                parent_id: "00f067aa0ba902b7".into(),
                sampled: true,
            })
        );
        let unsampled =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
        assert_eq!(unsampled.map(|p| p.sampled), Some(false));
    }

    #[test]
    fn a_later_version_may_append_fields_but_00_and_ff_may_not() {
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what")
                .is_some()
        );
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn fresh_ids_are_hex_of_the_right_length() {
        assert!(Trace::new(&random_id(32), &random_id(16)).is_some());
    }
}
