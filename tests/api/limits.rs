//! Limits and malformed requests: every refusal is a JSON answer with a code, and writes nothing.

use serde_json::{Value, json};

use crate::helpers::{As, Backend, TestApp, metrics, spawn_app_with, value};

crate::on_every_database!(
    too_many_mutation_fields_in_one_request_are_refused_before_any_runs,
    nul_characters_and_impossible_keys_are_bad_input_on_every_backend,
);

const CREATE: &str = "createProject(input: {name: \"P\"}) { id }";
const KEPT: &str = "chronicle_graphql_documents_total{source=\"kept\"}";
const PARSED: &str = "chronicle_graphql_documents_total{source=\"parsed\"}";

async fn sqlite_app() -> TestApp {
    spawn_app_with(Backend::Sqlite, |_| {}).await
}

async fn too_many_mutation_fields_in_one_request_are_refused_before_any_runs(app: TestApp) {
    let fields: String = (0..26).map(|i| format!("p{i}: {CREATE} ")).collect();
    let reply = app
        .gql(&format!("mutation {{ {fields} }}"), json!({}))
        .await;
    assert_eq!(reply.code(), "LIMIT_EXCEEDED", "{}", reply.body);
    // A refusal of the whole operation points at no place in the document (locations are 1-based).
    assert!(
        reply.body["errors"][0].get("locations").is_none(),
        "{}",
        reply.body
    );
    assert_eq!(app.count("project").await, 0);
    assert_eq!(app.count("project_history").await, 0);

    // Fragments do not hide fields from the count.
    let fragment: String = (0..13).map(|i| format!("f{i}: {CREATE} ")).collect();
    let query = format!(
        "mutation {{ ...A ...A2 }} fragment A on MutationRoot {{ {fragment} }} fragment A2 on MutationRoot {{ {} }}",
        fragment.replace("f", "g")
    );
    let reply = app.gql(&query, json!({})).await;
    assert_eq!(reply.code(), "LIMIT_EXCEEDED", "{}", reply.body);
    assert_eq!(app.count("project").await, 0);

    // At the limit, all run.
    let fields: String = (0..25).map(|i| format!("p{i}: {CREATE} ")).collect();
    app.gql(&format!("mutation {{ {fields} }}"), json!({}))
        .await
        .data();
    assert_eq!(app.count("project").await, 25);
}

#[tokio::test]
async fn an_oversized_body_gets_413_with_a_json_error_and_writes_nothing() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.limits.max_body_bytes = 4096).await;
    let name = "x".repeat(5000);
    let body = json!({"query": format!("mutation {{ createProject(input: {{name: \"{name}\"}}) {{ id }} }}")});
    let reply = app.send_raw(&[], body.to_string()).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.code(), "LIMIT_EXCEEDED");
    assert_eq!(app.count("project").await, 0);
}

#[tokio::test]
async fn malformed_json_and_graphql_get_json_errors_with_codes() {
    let app = sqlite_app().await;
    for body in [
        "",
        "{",
        "[]",
        "null",
        "{\"query\": 5}",
        "{\"variables\": {}}",
    ] {
        let reply = app.send_raw(&[], body).await;
        assert_eq!(reply.status, 400, "{body:?}");
        assert_eq!(reply.code(), "BAD_INPUT", "{body:?}");
    }
    for query in [
        "{",
        "mutation { createProject }",
        "{ nope }",
        "query($x: Int) { projects(first: $x) { totalCount } }",
    ] {
        let reply = app
            .send_raw(
                &[],
                json!({"query": query, "variables": {"x": "ten"}}).to_string(),
            )
            .await;
        assert_eq!(reply.code(), "BAD_INPUT", "{query}: {}", reply.body);
    }
}

#[tokio::test]
async fn deep_complex_and_oversized_page_queries_are_limit_exceeded() {
    let app = sqlite_app().await;
    // Task -> project -> tasks -> edges -> node -> ..., 30 levels deep.
    let mut deep = "id".to_owned();
    for _ in 0..6 {
        deep = format!("project {{ tasks {{ edges {{ node {{ {deep} }} }} }} }}");
    }
    let deep = format!("{{ tasks {{ edges {{ node {{ {deep} }} }} }} }}");
    let reply = app.gql(&deep, json!({})).await;
    assert_eq!(reply.code(), "LIMIT_EXCEEDED", "{}", reply.body);
    let complex = "{ projects(first: 100) { edges { node { tasks(first: 100) { edges { node { id title } } } } } } }";
    let reply = app.gql(complex, json!({})).await;
    assert_eq!(reply.code(), "LIMIT_EXCEEDED", "{}", reply.body);
    let page = app
        .gql("{ projects(first: 101) { totalCount } }", json!({}))
        .await;
    assert_eq!(page.code(), "LIMIT_EXCEEDED");
}

#[tokio::test]
async fn overlong_or_repeated_identity_headers_are_refused_and_write_nothing() {
    let app = sqlite_app().await;
    let create = json!({"query": format!("mutation {{ {CREATE} }}")}).to_string();
    let long = "u".repeat(201);
    let reply = app
        .send_raw(&[("x-user", long.as_bytes())], create.clone())
        .await;
    assert_eq!(reply.code(), "BAD_INPUT");
    let reply = app
        .send_raw(&[("x-user", b"alice"), ("x-user", b"bob")], create.clone())
        .await;
    assert_eq!(reply.code(), "BAD_INPUT");
    let reply = app
        .send_raw(&[("x-app", b"\xff\xfe")], create.clone())
        .await;
    assert_eq!(reply.code(), "BAD_INPUT");
    let reply = app
        .send_raw(
            &[("x-assignation-id", "a".repeat(129).as_bytes())],
            create.clone(),
        )
        .await;
    assert_eq!(reply.code(), "BAD_ASSIGNATION_ID");
    assert_eq!(app.count("project").await, 0);
    // 200 characters is still fine.
    let at_limit = "u".repeat(200);
    let reply = app
        .send(
            &As::user(&at_limit),
            &format!("mutation {{ {CREATE} }}"),
            json!({}),
        )
        .await;
    reply.data();
}

#[tokio::test]
async fn an_overlong_authorization_header_is_limit_exceeded() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.auth.mode = chronicle::config::AuthMode::Jwt;
        s.auth.jwt_secret = Some("a-test-secret-of-at-least-32-bytes!".into());
    })
    .await;
    let header = format!("Bearer {}", "a".repeat(9000));
    let reply = app
        .send_raw(
            &[("authorization", header.as_bytes())],
            json!({"query": "{ projects { totalCount } }"}).to_string(),
        )
        .await;
    assert_eq!(reply.code(), "LIMIT_EXCEEDED");
}

async fn nul_characters_and_impossible_keys_are_bad_input_on_every_backend(app: TestApp) {
    let reply = app
        .gql(
            "mutation($n: String!) { createProject(input: {name: $n}) { id } }",
            json!({"n": "a\0b"}),
        )
        .await;
    assert_eq!(reply.code(), "BAD_INPUT");
    let reply = app
        .gql(
            "query($u: String) { assignations(user: $u) { totalCount } }",
            json!({"u": "a\0"}),
        )
        .await;
    assert_eq!(reply.code(), "BAD_INPUT");
    let reply = app
        .gql(
            "query($id: ID!) { history(entity: TASK, id: $id) { totalCount } }",
            json!({"id": "\0"}),
        )
        .await;
    assert_eq!(reply.code(), "BAD_INPUT");
    // An assignation id no client could send names nothing.
    let reply = app
        .gql(
            "query($id: String!) { assignation(id: $id) { id } }",
            json!({"id": "a\0"}),
        )
        .await;
    assert_eq!(reply.data()["assignation"], Value::Null);
    let reply = app
        .gql(
            "mutation($id: String!) { revertAssignation(id: $id) { id } }",
            json!({"id": "a b"}),
        )
        .await;
    assert_eq!(reply.code(), "NOT_FOUND");
    assert_eq!(app.count("project").await, 0);
    assert_eq!(app.count("assignation").await, 0);
}

#[tokio::test]
async fn a_document_whose_fragments_multiply_is_refused_before_it_is_expanded() {
    let app = sqlite_app().await;
    // F0 spreads F1 twice, F1 spreads F2 twice, …: 2^30 fields once expanded, 1.5 KB as text.
    let mut query = String::from("{ ...F0 }");
    for i in 0..30 {
        query.push_str(&format!(
            " fragment F{i} on QueryRoot {{ ...F{} ...F{} }}",
            i + 1,
            i + 1
        ));
    }
    query.push_str(" fragment F30 on QueryRoot { projects { totalCount } }");
    let started = std::time::Instant::now();
    let reply = app.gql(&query, json!({})).await;
    assert_eq!(reply.code(), "LIMIT_EXCEEDED", "{}", reply.body);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_document_sent_again_runs_with_its_new_variables_and_is_checked_again() {
    let app = sqlite_app().await;
    let create = "mutation($n: String!) { createProject(input: {name: $n}) { id name } }";
    let first = app.gql(create, json!({"n": "first"})).await;
    let second = app.gql(create, json!({"n": "second"})).await;
    assert_eq!(first.data()["createProject"]["name"], "first");
    assert_eq!(second.data()["createProject"]["name"], "second");
    assert_ne!(
        first.data()["createProject"]["id"],
        second.data()["createProject"]["id"]
    );
    let bad = app.gql(create, json!({"n": 5})).await;
    assert_eq!(bad.code(), "BAD_INPUT", "{}", bad.body);
    assert_eq!(app.count("project").await, 2);
    // The same text parsed before is still a mutation refused over GET, and a document that does
    // not validate is refused each time it is sent.
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", create)
        .finish();
    let get =
        TestApp::reply_to(app.request(reqwest::Method::GET, &format!("/graphql?{query}"))).await;
    assert_eq!(get.status, 405, "{}", get.body);
    for _ in 0..2 {
        let unknown = app
            .gql("{ projects { nodes { nosuchfield } } }", json!({}))
            .await;
        assert!(
            unknown.body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("nosuchfield")),
            "{}",
            unknown.body
        );
    }
    assert_eq!(app.count("project").await, 2);
    // Two of the three mutations and the second unknown field took a document parsed before.
    let m = metrics(&app).await;
    assert_eq!(value(&m, KEPT), 3.0);
    assert_eq!(value(&m, PARSED), 2.0);
}

#[tokio::test]
async fn with_no_budget_for_parsed_documents_every_request_is_parsed() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.parsed_document_cache_bytes = 0
    })
    .await;
    let create = "mutation($n: String!) { createProject(input: {name: $n}) { id } }";
    for name in ["a", "b", "c"] {
        app.gql(create, json!({"n": name})).await.data();
    }
    let m = metrics(&app).await;
    assert_eq!(value(&m, KEPT), 0.0);
    assert_eq!(value(&m, PARSED), 3.0);
    assert_eq!(app.count("project").await, 3);
}
