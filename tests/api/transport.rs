//! GraphQL over HTTP: which bodies, methods, origins and hosts are served, what a refusal answers and
//! records, and the shape of answers (field order, timestamps).

use entity::audit_event;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{As, Backend, FindAll, TestApp, spawn_app, spawn_app_with};

const CREATE: &str = r#"{"query":"mutation { createProject(input: {name: \"csrf\"}) { id } }"}"#;

/// The `SECURITY` events recorded so far.
async fn security_events(app: &TestApp) -> Vec<audit_event::Model> {
    audit_event::Entity::find_all(&app.db)
        .await
        .into_iter()
        .filter(|e| e.kind == "SECURITY")
        .collect()
}

/// Nothing was written: no project, no history record, no assignation.
async fn nothing_written(app: &TestApp) {
    assert_eq!(app.count("project").await, 0);
    assert_eq!(app.count("project_history").await, 0);
    assert_eq!(app.count("assignation").await, 0);
}

#[tokio::test]
async fn a_page_of_another_site_cannot_write_with_a_simple_request() {
    let app = spawn_app(Backend::Sqlite).await;
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=----x",
    ] {
        for origin in [None, Some("https://evil.example")] {
            let mut request = app
                .request(Method::POST, "/graphql")
                .header("content-type", content_type)
                .body(CREATE);
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            let reply = TestApp::reply_to(request).await;
            let expected = if origin.is_some() { 403 } else { 415 };
            assert_eq!(reply.status, expected, "{content_type}: {}", reply.body);
            assert!(reply.body["errors"][0]["message"].is_string());
        }
    }
    let reply = TestApp::reply_to(app.request(Method::POST, "/graphql").body(CREATE)).await;
    assert_eq!(reply.status, 415, "no content type: {}", reply.body);
    assert_eq!(reply.code(), "BAD_INPUT");
    nothing_written(&app).await;
    let refused = security_events(&app).await;
    assert_eq!(refused.len(), 9);
    assert!(refused.iter().all(|e| e.status == "FAILURE"));
}

#[tokio::test]
async fn json_bodies_of_both_graphql_over_http_types_are_taken() {
    let app = spawn_app(Backend::Sqlite).await;
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "application/graphql-response+json",
    ] {
        let reply = TestApp::reply_to(
            app.request(Method::POST, "/graphql")
                .header("content-type", content_type)
                .body(CREATE),
        )
        .await;
        assert_eq!(reply.status, 200, "{content_type}: {}", reply.body);
        reply.data();
    }
    assert_eq!(app.count("project").await, 3);
}

#[tokio::test]
async fn a_raw_graphql_body_is_an_unsupported_type_not_a_parse_error() {
    let app = spawn_app(Backend::Sqlite).await;
    let reply = TestApp::reply_to(
        app.request(Method::POST, "/graphql")
            .header("content-type", "application/graphql")
            .body("{ projects { totalCount } }"),
    )
    .await;
    assert_eq!(reply.status, 415);
    let message = reply.body["errors"][0]["message"]
        .as_str()
        .expect("message");
    assert!(message.contains("application/graphql"), "{message}");
    assert!(message.contains("application/json"), "{message}");
}

#[tokio::test]
async fn a_body_without_query_says_that_it_is_missing() {
    let app = spawn_app(Backend::Sqlite).await;
    let reply = app.send_raw(&[], r#"{"variables": {}}"#).await;
    assert_eq!(reply.status, 400);
    let message = reply.body["errors"][0]["message"]
        .as_str()
        .expect("message");
    assert!(message.contains("`query` is missing"), "{message}");
}

#[tokio::test]
async fn a_request_from_a_page_of_another_origin_is_refused_and_recorded() {
    let app = spawn_app(Backend::Sqlite).await;
    let own = app.address.replace("http://", "");
    let reply = app
        .send_raw(
            &[
                ("origin", b"https://evil.example"),
                ("x-user", b"mallory"),
                ("x-app", b"evil-page"),
            ],
            CREATE,
        )
        .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.code(), "FORBIDDEN");
    nothing_written(&app).await;
    let refused = security_events(&app).await;
    assert_eq!(refused.len(), 1);
    // The event keeps the identity the request claimed.
    assert_eq!(refused[0].actor.as_deref(), Some("mallory"));
    assert_eq!(refused[0].app.as_deref(), Some("evil-page"));
    assert!(
        refused[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("evil.example"))
    );

    // The server's own pages are served, with or without an Origin.
    let origin = format!("http://{own}");
    let reply = app.send_raw(&[("origin", origin.as_bytes())], CREATE).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.data();
    let reply = app.send_raw(&[], CREATE).await;
    reply.data();
}

#[tokio::test]
async fn listed_origins_get_cors_answers_and_others_are_refused_before_preflight_succeeds() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.http.cors_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let preflight = app
        .request(Method::OPTIONS, "/graphql")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, x-assignation-id",
        )
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed_headers = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    assert!(allowed_headers.contains("x-assignation-id"));

    let response = app
        .request(Method::POST, "/graphql")
        .header("origin", "https://app.example.com")
        .header("content-type", "application/json")
        .body(CREATE)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    assert!(exposed.contains("x-assignation-id"));
    assert!(
        exposed.contains("traceresponse"),
        "a web app may read its span"
    );

    let refused = app
        .request(Method::OPTIONS, "/graphql")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("preflight");
    assert_eq!(refused.status(), 403);
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );
    assert_eq!(app.count("project").await, 1);
}

#[tokio::test]
async fn a_request_for_a_host_a_loopback_server_does_not_answer_to_is_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let reply = app
        .send_raw(&[("host", b"rebound.evil.example")], CREATE)
        .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    nothing_written(&app).await;
    let port = app.address.rsplit(':').next().expect("port");
    let localhost = format!("localhost:{port}");
    let reply = app
        .send_raw(&[("host", localhost.as_bytes())], CREATE)
        .await;
    reply.data();
}

#[tokio::test]
async fn get_runs_queries_and_refuses_mutations() {
    let app = spawn_app(Backend::Sqlite).await;
    app.project("Apollo").await;
    let query = app.request(Method::GET, "/graphql").query(&[
        (
            "query",
            "query Count($first: Int) { projects(first: $first) { totalCount } }",
        ),
        ("variables", r#"{"first": 5}"#),
        ("operationName", "Count"),
    ]);
    let reply = TestApp::reply_to(query).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.data()["projects"]["totalCount"], 1);

    let mutation = app.request(Method::GET, "/graphql").query(&[(
        "query",
        r#"mutation { createProject(input: {name: "via get"}) { id } }"#,
    )]);
    let response = mutation.send().await.expect("get");
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_INPUT");
    assert_eq!(app.count("project").await, 1);

    // Without `query`, GET serves GraphiQL.
    let page = app
        .request(Method::GET, "/graphql")
        .send()
        .await
        .expect("graphiql");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("graphiql"));
}

#[tokio::test]
async fn the_root_leads_to_the_history_browser() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.request(Method::GET, "/").send().await.expect("get /");
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(response.headers()["location"], "/ui");
}

#[tokio::test]
async fn validation_and_limit_refusals_share_one_status() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.limits.max_query_depth = 3).await;
    let invalid = app.gql("{ projects { nope } }", json!({})).await;
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    assert_eq!(invalid.code(), "BAD_INPUT");
    let deep = app
        .gql(
            "{ projects { edges { node { tasks { edges { node { id } } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(deep.status, 400, "{}", deep.body);
    assert_eq!(deep.code(), "LIMIT_EXCEEDED");
    let bad_id = app
        .send(
            &As::user("alice").in_assignation("has space"),
            "{ labels { id } }",
            json!({}),
        )
        .await;
    assert_eq!(bad_id.status, 400);
    assert_eq!(bad_id.code(), "BAD_ASSIGNATION_ID");
    let message = bad_id.body["errors"][0]["message"]
        .as_str()
        .expect("message");
    assert!(!message.contains("A-Z a-z"), "{message}");
    // A field that fails while the rest executes is an answer, not a refusal.
    let partial = app
        .gql(
            "{ projects(first: 1000) { totalCount } labels { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(partial.status, 200, "{}", partial.body);
    assert_eq!(partial.code(), "LIMIT_EXCEEDED");
    assert_eq!(partial.body["data"]["labels"]["totalCount"], 0);
}

#[tokio::test]
async fn fields_come_back_in_the_order_the_query_asked_for_them() {
    let app = spawn_app(Backend::Sqlite).await;
    let project = app.project("Apollo").await;
    app.task(&project, "Launch").await;
    let response = app
        .request(Method::POST, "/graphql")
        .header("content-type", "application/json")
        .header("x-user", "alice")
        .json(&json!({
            "query": "query($id: ID!) { project(id: $id) { tasks { totalCount edges { node { title id } } } history { totalCount } id name } }",
            "variables": {"id": project},
        }))
        .send()
        .await
        .expect("post");
    let text = response.text().await.expect("body");
    assert!(
        text.starts_with(
            r#"{"data":{"project":{"tasks":{"totalCount":1,"edges":[{"node":{"title":"Launch","id":""#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#""history":{"totalCount":1},"id":""#),
        "{text}"
    );
    assert!(text.ends_with(r#","name":"Apollo"}}}"#), "{text}");
}

#[tokio::test]
async fn every_timestamp_is_rfc_3339_in_utc_with_z_and_equals_the_snapshot() {
    let app = spawn_app(Backend::Sqlite).await;
    let reply = app
        .gql(
            "mutation { createProject(input: {name: \"Apollo\"}) { id createdAt updatedAt history { edges { node { at snapshot changes { field new } } } } } }",
            json!({}),
        )
        .await;
    let project = &reply.data()["createProject"];
    let created = project["createdAt"].as_str().expect("createdAt");
    assert!(
        created.ends_with('Z') && !created.contains("+00:00"),
        "{created}"
    );
    let record = &project["history"]["edges"][0]["node"];
    assert!(record["at"].as_str().expect("at").ends_with('Z'));
    assert_eq!(record["snapshot"]["createdAt"], created);
    let changed = record["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["field"] == "updatedAt")
        .expect("updatedAt change");
    assert_eq!(changed["new"], project["updatedAt"]);
    // Any offset is read as the same instant.
    let reply = app
        .gql(
            "query($id: ID!) { project(id: $id, asOf: \"2999-01-01T01:00:00+01:00\") { name } }",
            json!({"id": project["id"]}),
        )
        .await;
    assert_eq!(reply.data()["project"]["name"], "Apollo");
}
