//! W3C trace context: a client's `traceparent` (or a trace the server starts) kept on every history
//! record and audit event of the request, queryable by trace id, answered in `traceresponse`, written
//! on the request's log line, and exported over OTLP with the same ids.

use std::time::Duration;

use entity::{HistoryEntity, audit_event};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{Backend, ServerProcess, TestApp};

crate::on_every_database!(
    a_client_s_trace_is_kept_on_every_record_and_event_of_its_requests,
    without_a_valid_traceparent_the_server_starts_a_trace_and_names_it,
);

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Sends `query` as alice with `traceparent` (when given); the reply's body and its `traceresponse`.
async fn traced(app: &TestApp, traceparent: Option<&str>, query: &str) -> (Value, String) {
    let mut request = app
        .request(reqwest::Method::POST, "/graphql")
        .header("content-type", "application/json")
        .header("X-User", "alice")
        .json(&json!({ "query": query }));
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().await.expect("request sent");
    let traceresponse = response
        .headers()
        .get("traceresponse")
        .and_then(|v| v.to_str().ok())
        .expect("a traceresponse header")
        .to_owned();
    let body: Value = response.json().await.expect("JSON body");
    assert!(body.get("errors").is_none(), "{body}");
    (body, traceresponse)
}

/// The trace and span ids of a `traceresponse` value, checked to be version 00.
fn ids(traceresponse: &str) -> (String, String) {
    let parts: Vec<&str> = traceresponse.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceresponse}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1].len(), 32);
    assert_eq!(parts[2].len(), 16);
    assert!(
        parts[1..3].iter().all(|p| p
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())),
        "{traceresponse}"
    );
    (parts[1].to_owned(), parts[2].to_owned())
}

async fn a_client_s_trace_is_kept_on_every_record_and_event_of_its_requests(app: TestApp) {
    // Two requests of one client trace, from two spans of the client.
    let (created, first) = traced(
        &app,
        Some(&format!("00-{TRACE}-00f067aa0ba902b7-01")),
        "mutation { createProject(input: {name: \"Traced\"}) { id } }",
    )
    .await;
    let (trace, first_span) = ids(&first);
    assert_eq!(trace, TRACE, "the client's trace goes on");
    assert_ne!(
        first_span, "00f067aa0ba902b7",
        "the server's span is a child of the client's, not the client's own"
    );
    let project = created["data"]["createProject"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (_, second) = traced(
        &app,
        Some(&format!("00-{TRACE}-b7ad6b7169203331-01")),
        &format!("mutation {{ updateProject(id: \"{project}\", input: {{name: \"Traced 2\"}}) {{ id }} }}"),
    )
    .await;
    let (_, second_span) = ids(&second);
    assert_ne!(first_span, second_span);

    // The database holds the trace and each request's span on its record and its event.
    let mut rows = app.history_rows(HistoryEntity::Project).await;
    rows.sort_by_key(|r| r.version);
    let kept: Vec<(Option<String>, Option<String>)> = rows
        .iter()
        .map(|r| (r.trace_id.clone(), r.span_id.clone()))
        .collect();
    assert_eq!(
        kept,
        [
            (Some(TRACE.to_owned()), Some(first_span.clone())),
            (Some(TRACE.to_owned()), Some(second_span.clone())),
        ]
    );
    let events = audit_event::Entity::find()
        .filter(audit_event::Column::TraceId.eq(TRACE))
        .all(&app.db)
        .await
        .expect("events");
    let mut spans: Vec<(String, Option<String>)> =
        events.into_iter().map(|e| (e.action, e.span_id)).collect();
    spans.sort();
    assert_eq!(
        spans,
        [
            ("createProject".to_owned(), Some(first_span.clone())),
            ("updateProject".to_owned(), Some(second_span.clone())),
        ]
    );

    // The API finds both by trace, and each says its trace and span.
    let found = app
        .gql(
            "query($t: String!) {
               traceHistory(traceId: $t) { totalCount edges { node { kind objectId traceId spanId } } }
               auditEvents(traceId: $t) { totalCount edges { node { action traceId spanId } } }
             }",
            json!({ "t": TRACE }),
        )
        .await;
    let data = found.data();
    assert_eq!(
        data["traceHistory"],
        json!({"totalCount": 2, "edges": [
            {"node": {"kind": "CREATE", "objectId": project, "traceId": TRACE, "spanId": first_span}},
            {"node": {"kind": "UPDATE", "objectId": project, "traceId": TRACE, "spanId": second_span}},
        ]})
    );
    assert_eq!(
        data["auditEvents"],
        json!({"totalCount": 2, "edges": [
            {"node": {"action": "updateProject", "traceId": TRACE, "spanId": second_span}},
            {"node": {"action": "createProject", "traceId": TRACE, "spanId": first_span}},
        ]})
    );
    let other = app
        .gql(
            "{ traceHistory(traceId: \"0af7651916cd43dd8448eb211c80319c\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(other.data()["traceHistory"]["totalCount"], 0);
    let bad = app
        .gql(
            "{ traceHistory(traceId: \"not-a-trace\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(bad.code(), "BAD_INPUT");
    let bad_events = app
        .gql(
            "{ auditEvents(traceId: \"XYZ\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(bad_events.code(), "BAD_INPUT");
    // An id copied from a tool that shows it in uppercase finds the same.
    let upper = app
        .gql(
            "query($t: String!) { traceHistory(traceId: $t) { totalCount } auditEvents(traceId: $t) { totalCount } }",
            json!({ "t": TRACE.to_ascii_uppercase() }),
        )
        .await;
    assert_eq!(
        upper.data(),
        &json!({"traceHistory": {"totalCount": 2}, "auditEvents": {"totalCount": 2}})
    );

    // Exports filter by trace too, and their event says so; a malformed id exports nothing.
    let exported = app
        .request(
            reqwest::Method::GET,
            &format!(
                "/export/history?format=ndjson&traceId={}",
                TRACE.to_ascii_uppercase()
            ),
        )
        .header("X-User", "auditor")
        .send()
        .await
        .expect("export");
    assert_eq!(exported.status(), 200);
    let lines: Vec<Value> = exported
        .text()
        .await
        .expect("body")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["traceId"] == TRACE), "{lines:?}");
    let refused = app
        .request(reqwest::Method::GET, "/export/events?traceId=XYZ")
        .header("X-User", "auditor")
        .send()
        .await
        .expect("export");
    assert_eq!(refused.status(), 400);
    let mut export_event = None;
    for _ in 0..50 {
        export_event = audit_event::Entity::find()
            .filter(audit_event::Column::Kind.eq("EXPORT"))
            .one(&app.db)
            .await
            .expect("events");
        if export_event.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let details = export_event
        .expect("the EXPORT event")
        .details
        .expect("details");
    assert_eq!(details["filters"]["traceId"], TRACE);
    assert_eq!(details["rows"], 2);
}

async fn without_a_valid_traceparent_the_server_starts_a_trace_and_names_it(app: TestApp) {
    let (_, started) = traced(
        &app,
        None,
        "mutation { createProject(input: {name: \"Untraced\"}) { id } }",
    )
    .await;
    let (trace, span) = ids(&started);
    // A malformed header (uppercase hex) is not the client's trace: the server starts another.
    let (_, restarted) = traced(
        &app,
        Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"),
        "mutation { createProject(input: {name: \"Malformed\"}) { id } }",
    )
    .await;
    let (other_trace, _) = ids(&restarted);
    assert_ne!(other_trace, trace);
    assert_ne!(other_trace, "4bf92f3577b34da6a3ce929d0e0e4736");

    let rows = app.history_rows(HistoryEntity::Project).await;
    let first = rows
        .iter()
        .find(|r| r.snapshot["name"] == "Untraced")
        .expect("the record");
    assert_eq!(first.trace_id.as_deref(), Some(trace.as_str()));
    assert_eq!(first.span_id.as_deref(), Some(span.as_str()));
    let second = rows
        .iter()
        .find(|r| r.snapshot["name"] == "Malformed")
        .expect("the record");
    assert_eq!(second.trace_id.as_deref(), Some(other_trace.as_str()));

    // A request refused before it runs keeps its trace on its SECURITY event.
    let refused = app
        .request(reqwest::Method::POST, "/graphql")
        .header("content-type", "text/plain")
        .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
        .body(r#"{"query":"mutation { createProject(input: {name: \"csrf\"}) { id } }"}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 415);
    let (_, refused_span) = ids(refused
        .headers()
        .get("traceresponse")
        .and_then(|v| v.to_str().ok())
        .expect("traceresponse"));
    let events = audit_event::Entity::find()
        .filter(audit_event::Column::TraceId.eq(TRACE))
        .all(&app.db)
        .await
        .expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "SECURITY");
    assert_eq!(events[0].span_id.as_deref(), Some(refused_span.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_s_log_line_names_its_trace_and_span() {
    let mut server = ServerProcess::start(Backend::Sqlite, &["--log-format", "json"]).await;
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", server.address))
        .header("X-User", "bob")
        .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .expect("sent");
    let (_, span) = ids(response
        .headers()
        .get("traceresponse")
        .and_then(|v| v.to_str().ok())
        .expect("traceresponse"));
    let line = server.wait_for_line(|l| l.contains("chronicle::access"));
    let event: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(event["fields"]["trace_id"], TRACE, "{event}");
    assert_eq!(event["fields"]["span_id"], span.as_str(), "{event}");
}

/// The bodies an OTLP collector at the returned address receives on `/v1/traces`.
async fn collector() -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let (sender, bodies) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sender = sender.clone();
            async move {
                let _ = sender.send(body.to_vec());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, bodies)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_otlp_endpoint_the_request_s_span_is_exported_with_the_ids_its_record_keeps() {
    let (endpoint, mut bodies) = collector().await;
    let server = ServerProcess::start(Backend::Sqlite, &["--otlp-endpoint", &endpoint]).await;
    let app = TestApp::attach(server.address.clone(), server.url.clone(), Backend::Sqlite).await;
    let (_, answered) = traced(
        &app,
        Some(&format!("00-{TRACE}-00f067aa0ba902b7-01")),
        "mutation { createProject(input: {name: \"Exported\"}) { id } }",
    )
    .await;
    let (trace, span) = ids(&answered);
    assert_eq!(trace, TRACE);
    let rows = app.history_rows(HistoryEntity::Project).await;
    assert_eq!(rows[0].span_id.as_deref(), Some(span.as_str()));

    // The batch exporter sends within its schedule (5 s by default).
    let (trace_bytes, span_bytes, parent_bytes) = (
        hex::decode(TRACE).expect("hex"),
        hex::decode(&span).expect("hex"),
        hex::decode("00f067aa0ba902b7").expect("hex"),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let body = tokio::time::timeout_at(deadline, bodies.recv())
            .await
            .expect("a span export within 20 s")
            .expect("the collector runs");
        // OTLP protobuf: ids as raw bytes; the resource names the service.
        if contains(&body, &span_bytes) {
            assert!(
                contains(&body, &trace_bytes),
                "the span is in the client's trace"
            );
            assert!(
                contains(&body, &parent_bytes),
                "its parent is the client's span"
            );
            assert!(contains(&body, b"chronicle"), "the service is named");
            assert!(contains(&body, b"POST /graphql"), "the span is named");
            break;
        }
    }
}
