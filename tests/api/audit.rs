//! The audit trail: one MUTATION event per mutation field (also when it fails and rolls back), refused
//! logins and malformed requests, custom events, filters, the summary, log capture, and project
//! timelines.

use chronicle::config::{AuthMode, Settings};
use serde_json::{Value, json};

use crate::helpers::{As, Backend, FindAll, TestApp, spawn_app_with};

crate::on_every_database!(
    a_create_event_names_the_new_object_whatever_the_client_selected,
    every_mutation_field_writes_one_event_even_when_it_fails_and_rolls_back,
    custom_events_filters_and_the_summary_count_what_happened,
    a_project_timeline_holds_the_history_and_events_of_everything_under_it,
    a_forced_revert_keeps_its_warning_in_its_event,
    a_fast_request_writes_no_performance_event,
    a_failed_mutation_whose_arguments_hold_nul_still_writes_its_event,
    a_page_over_the_cap_is_refused_and_written_as_a_security_event,
);

crate::on_every_database!(
    settings = every_request_slow;
    a_slow_request_is_a_performance_event_with_its_operation_document_and_times,
);

/// Every request counts as slow.
fn every_request_slow(settings: &mut Settings) {
    settings.audit.slow_request_ms = 0;
}

const EVENTS: &str = "query($kind: AuditKind, $action: String, $status: AuditStatus, $user: String, $entity: HistoryEntity, $objectId: ID, $first: Int, $after: String) {
  auditEvents(kind: $kind, action: $action, status: $status, user: $user, entity: $entity, objectId: $objectId, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { kind action status user app assignationId ip userAgent input output error logs entity objectId details durationMs } }
  }
}";

async fn events(app: &TestApp, filter: Value) -> Value {
    app.gql(EVENTS, filter).await.data()["auditEvents"].clone()
}

fn nodes(list: &Value) -> Vec<Value> {
    list["edges"]
        .as_array()
        .map(|edges| edges.iter().map(|e| e["node"].clone()).collect())
        .unwrap_or_default()
}

async fn every_mutation_field_writes_one_event_even_when_it_fails_and_rolls_back(app: TestApp) {
    let who = As::user("alice").in_assignation("audit-1");
    let created = app
        .send(
            &who,
            "mutation { createProject(input: {name: \"Apollo\"}, reason: \"kickoff\") { id } }",
            json!({}),
        )
        .await;
    let id = created.data()["createProject"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let refused = app
        .send(
            &who,
            "mutation { createProject(input: {name: \"\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(refused.code(), "BAD_INPUT");
    // A later field fails after an earlier one of the same request succeeded: two events.
    app.send(
        &who,
        "mutation($id: ID!) { a: updateProject(id: $id, input: {name: \"Apollo 11\"}) { id } b: deleteTask(id: $id) }",
        json!({"id": id}),
    )
    .await;

    let list = events(&app, json!({"kind": "MUTATION"})).await;
    assert_eq!(list["totalCount"], 4);
    let all = nodes(&list);
    let failed_create = &all[2];
    assert_eq!(failed_create["action"], "createProject");
    assert_eq!(failed_create["status"], "FAILURE");
    assert!(
        failed_create["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("BAD_INPUT"))
    );
    let ok_create = &all[3];
    assert_eq!(ok_create["status"], "SUCCESS");
    assert_eq!(ok_create["user"], "alice");
    assert_eq!(ok_create["app"], "tests");
    assert_eq!(ok_create["assignationId"], "audit-1");
    assert_eq!(ok_create["ip"], "127.0.0.1");
    assert_eq!(ok_create["entity"], "PROJECT");
    assert_eq!(ok_create["objectId"], id.as_str());
    assert_eq!(
        ok_create["input"],
        json!({"input": {"name": "Apollo"}, "reason": "kickoff"})
    );
    assert_eq!(ok_create["output"], json!({"id": id}));
    assert!(ok_create["durationMs"].as_i64().is_some());
    assert_eq!(all[0]["action"], "deleteTask");
    assert_eq!(all[0]["status"], "FAILURE");
    assert_eq!(all[1]["action"], "updateProject");
    assert_eq!(all[1]["status"], "SUCCESS");

    // The failed create wrote no data and no history, only its event.
    assert_eq!(app.count("project").await, 1);
    assert_eq!(app.count("project_history").await, 2);
    assert_eq!(app.count("audit_event").await, 4);

    // A field async-graphql refuses itself (its variable not given) is recorded with the code the
    // client saw.
    let unbound = app
        .send(
            &who,
            "mutation($id: ID!) { deleteTask(id: $id) }",
            json!({}),
        )
        .await;
    assert_eq!(unbound.code(), "BAD_INPUT");
    let list = events(&app, json!({"kind": "MUTATION", "first": 1})).await;
    let latest = &nodes(&list)[0];
    assert_eq!(latest["action"], "deleteTask");
    assert_eq!(latest["status"], "FAILURE");
    assert_eq!(
        latest["error"].as_str(),
        Some(
            format!(
                "BAD_INPUT: {}",
                unbound.body["errors"][0]["message"].as_str().unwrap_or("?")
            )
            .as_str()
        )
    );
}

async fn a_failed_mutation_whose_arguments_hold_nul_still_writes_its_event(app: TestApp) {
    let refused = app
        .gql(
            "mutation($name: String!) { createProject(input: {name: $name}) { id } }",
            json!({"name": "Apollo\u{0}11"}),
        )
        .await;
    assert_eq!(refused.code(), "BAD_INPUT");
    // A custom event's details are refused whole, as any other text holding NUL.
    let details = app
        .gql(
            "mutation($d: JSON) { recordEvent(action: \"note\", details: $d) { id } }",
            json!({"d": {"k\u{0}": "v", "w": ["a\u{0}b"]}}),
        )
        .await;
    assert_eq!(details.code(), "BAD_INPUT");

    assert_eq!(app.count("project").await, 0);
    assert_eq!(app.count("audit_event").await, 1);
    let list = events(&app, json!({"kind": "MUTATION"})).await;
    let event = &nodes(&list)[0];
    assert_eq!(event["action"], "createProject");
    assert_eq!(event["status"], "FAILURE");
    // Stored as U+FFFD: PostgreSQL keeps no NUL, and every database keeps the same event.
    assert_eq!(
        event["input"],
        json!({"input": {"name": "Apollo\u{FFFD}11"}})
    );
}

async fn a_page_over_the_cap_is_refused_and_written_as_a_security_event(app: TestApp) {
    app.project("Apollo").await;
    let reply = app
        .send(
            &As::user("mallory").in_assignation("paging-1"),
            "{ projects(first: 101) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.code(), "LIMIT_EXCEEDED");
    assert_eq!(reply.body["errors"][0]["path"], json!(["projects"]));

    let rows = entity::audit_event::Entity::find_all(&app.db).await;
    let security: Vec<_> = rows.iter().filter(|e| e.kind == "SECURITY").collect();
    assert_eq!(security.len(), 1, "{rows:?}");
    assert_eq!(security[0].action, "refused_query");
    assert_eq!(security[0].actor.as_deref(), Some("mallory"));
    assert_eq!(security[0].assignation_id.as_deref(), Some("paging-1"));
    assert!(
        security[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("100")),
        "{:?}",
        security[0].error
    );
}

async fn custom_events_filters_and_the_summary_count_what_happened(app: TestApp) {
    let project = app.project("Apollo").await;
    let recorded = app
        .send(
            &As::user("bob"),
            "mutation($p: ID!) { recordEvent(action: \"export\", entity: PROJECT, objectId: $p, details: {format: \"csv\", password: \"hunter2\"}) { kind action user details } }",
            json!({"p": project}),
        )
        .await;
    assert_eq!(
        recorded.data()["recordEvent"],
        json!({"kind": "CUSTOM", "action": "export", "user": "bob", "details": {"format": "csv", "password": "***"}})
    );
    let half = app
        .send(
            &As::user("bob"),
            "mutation { recordEvent(action: \"x\", entity: TASK) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(half.code(), "BAD_INPUT");

    let bobs = events(&app, json!({"user": "bob"})).await;
    assert_eq!(
        bobs["totalCount"], 1,
        "recordEvent is not also a MUTATION event"
    );
    let about = events(&app, json!({"entity": "PROJECT", "objectId": project})).await;
    assert_eq!(about["totalCount"], 2, "the create and the export");
    let paged = events(&app, json!({"first": 1})).await;
    assert_eq!(paged["pageInfo"]["hasNextPage"], true);
    let rest = events(
        &app,
        json!({"first": 5, "after": paged["pageInfo"]["endCursor"]}),
    )
    .await;
    assert_eq!(nodes(&paged).len() + nodes(&rest).len(), 2);

    let summary = app
        .gql("{ auditSummary { byKind { key count } byUser { key count } byStatus { key count } byDay { key count } } }", json!({}))
        .await;
    let summary = &summary.data()["auditSummary"];
    let mut kinds = summary["byKind"].as_array().expect("list").clone();
    kinds.sort_by_key(|c| c["key"].as_str().map(str::to_owned));
    assert_eq!(
        kinds,
        vec![
            json!({"key": "CUSTOM", "count": 1}),
            json!({"key": "MUTATION", "count": 1})
        ]
    );
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(summary["byDay"], json!([{"key": today, "count": 2}]));
}

async fn a_project_timeline_holds_the_history_and_events_of_everything_under_it(app: TestApp) {
    let project = app.project("Apollo").await;
    let other = app.project("Gemini").await;
    let task = app.task(&project, "Launch").await;
    app.task(&other, "Elsewhere").await;
    app.gql(
        "mutation($t: ID!) { createComment(input: {taskId: $t, body: \"go\"}) { id } }",
        json!({"t": task}),
    )
    .await
    .data();
    app.gql(
        "mutation($t: ID!) { recordEvent(action: \"viewed\", entity: TASK, objectId: $t) { id } }",
        json!({"t": task}),
    )
    .await
    .data();

    let reply = app
        .gql(
            "query($p: ID!) { project(id: $p) { timeline(first: 50) { totalCount edges { node { __typename ... on HistoryRecord { entity kind } ... on AuditEvent { kind action } } } } } }",
            json!({"p": project}),
        )
        .await;
    let timeline = &reply.data()["project"]["timeline"];
    let entries: Vec<Value> = nodes(timeline);
    assert_eq!(
        entries,
        vec![
            json!({"__typename": "AuditEvent", "kind": "CUSTOM", "action": "viewed"}),
            // A mutation's event is dated when it started, just before the records it wrote.
            json!({"__typename": "HistoryRecord", "entity": "COMMENT", "kind": "CREATE"}),
            json!({"__typename": "AuditEvent", "kind": "MUTATION", "action": "createComment"}),
            json!({"__typename": "HistoryRecord", "entity": "TASK", "kind": "CREATE"}),
            json!({"__typename": "AuditEvent", "kind": "MUTATION", "action": "createTask"}),
            json!({"__typename": "HistoryRecord", "entity": "PROJECT", "kind": "CREATE"}),
            json!({"__typename": "AuditEvent", "kind": "MUTATION", "action": "createProject"}),
        ]
    );
    assert_eq!(timeline["totalCount"], 7);
}

async fn a_forced_revert_keeps_its_warning_in_its_event(app: TestApp) {
    let project = app.project("Apollo").await;
    let rename =
        "mutation($id: ID!, $n: String!) { updateProject(id: $id, input: {name: $n}) { id } }";
    app.send(
        &As::user("alice").in_assignation("first"),
        rename,
        json!({"id": project, "n": "A"}),
    )
    .await
    .data();
    app.send(
        &As::user("bob").in_assignation("second"),
        rename,
        json!({"id": project, "n": "B"}),
    )
    .await
    .data();
    app.gql(
        "mutation { revertAssignation(id: \"first\", force: true) { id } }",
        json!({}),
    )
    .await
    .data();
    let list = events(&app, json!({"action": "revertAssignation"})).await;
    let logs = &nodes(&list)[0]["logs"];
    assert!(
        logs.as_array()
            .is_some_and(|l| l
                .iter()
                .any(|line| line.as_str().is_some_and(|s| s.starts_with("WARN")
                    && s.contains("forced revert overrides later changes")))),
        "{logs}"
    );
}

fn hs256(settings: &mut Settings) {
    settings.auth.mode = AuthMode::Jwt;
    settings.auth.jwt_secret = Some("a-test-secret-of-at-least-32-bytes!".into());
}

#[tokio::test]
async fn refused_credentials_and_malformed_requests_are_recorded_without_the_token() {
    let app = spawn_app_with(Backend::Sqlite, hs256).await;
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.forged-signature";
    let reply = app
        .send(&As::token(token), "{ projects { totalCount } }", json!({}))
        .await;
    assert_eq!(reply.code(), "UNAUTHENTICATED");
    app.send_raw(&[("authorization", b"Bearer x")], "{not json")
        .await;

    let rows = entity::audit_event::Entity::find_all(&app.db).await;
    let failed: Vec<_> = rows.iter().filter(|e| e.kind == "LOGIN_FAILED").collect();
    assert_eq!(failed.len(), 2, "{rows:?}");
    assert!(failed.iter().all(|e| e.ip.as_deref() == Some("127.0.0.1")));
    assert!(failed.iter().any(|e| {
        e.details
            .as_ref()
            .is_some_and(|d| d["reason"].as_str().is_some())
    }));
    assert!(
        !format!("{rows:?}").contains("forged-signature"),
        "the token must never be stored"
    );

    let header = spawn_app_with(Backend::Sqlite, |_| {}).await;
    header.send_raw(&[], "{not json").await;
    header
        .send_raw(&[("x-assignation-id", b"bad id")], "{}")
        .await;
    header
        .gql("{ projects(first: 1000) { totalCount } nope }", json!({}))
        .await;
    let kinds: Vec<String> = entity::audit_event::Entity::find_all(&header.db)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec!["SECURITY", "SECURITY", "SECURITY"]);
}

async fn a_create_event_names_the_new_object_whatever_the_client_selected(app: TestApp) {
    let project = app.project("Apollo").await;
    // Only the title selected, or only the type name: the event still names the new task.
    for selection in ["title", "__typename"] {
        app.gql(
            &format!("mutation($p: ID!) {{ createTask(input: {{projectId: $p, title: \"{selection}\"}}) {{ {selection} }} }}"),
            json!({"p": project}),
        )
        .await
        .data();
    }
    let tasks = entity::task::Entity::find_all(&app.db).await;
    let listed = nodes(&events(&app, json!({"action": "createTask"})).await);
    let mut named: Vec<String> = listed
        .iter()
        .map(|e| {
            assert_eq!(e["entity"], "TASK");
            e["objectId"].as_str().expect("objectId").to_owned()
        })
        .collect();
    let mut ids: Vec<String> = tasks.iter().map(|t| t.id.to_string()).collect();
    named.sort();
    ids.sort();
    assert_eq!(named, ids);
    // And so it is on its project's timeline.
    let timeline = app
        .gql(
            "query($p: ID!) { project(id: $p) { timeline { edges { node { ... on AuditEvent { action } } } } } }",
            json!({"p": project}),
        )
        .await;
    let actions: Vec<&Value> = timeline.data()["project"]["timeline"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"]["action"])
        .filter(|a| *a == "createTask")
        .collect();
    assert_eq!(actions.len(), 2);
}

async fn a_slow_request_is_a_performance_event_with_its_operation_document_and_times(app: TestApp) {
    let query = "query Projects { projects { totalCount } }";
    app.send(&As::user("carol"), query, json!({})).await.data();
    let found = events(&app, json!({"kind": "PERFORMANCE", "user": "carol"})).await;
    assert_eq!(found["totalCount"], 1, "{found}");
    let event = &nodes(&found)[0];
    assert_eq!(event["action"], "Projects");
    assert_eq!(event["status"], "SUCCESS");
    assert_eq!(event["details"]["operation"], "Projects");
    assert_eq!(event["details"]["type"], "query");
    use sha2::Digest;
    assert_eq!(
        event["details"]["documentHash"],
        hex::encode(sha2::Sha256::digest(query.as_bytes()))
    );
    assert!(event["details"]["durationMs"].as_i64().is_some());
    let database = event["details"]["databaseMs"].as_i64().unwrap();
    assert!(database >= 0 && database <= event["details"]["durationMs"].as_i64().unwrap());
    // Counted in the summary and the metrics.
    let summary = app
        .gql("{ auditSummary { byKind { key count } } }", json!({}))
        .await;
    let by_kind = summary.data()["auditSummary"]["byKind"].to_string();
    assert!(by_kind.contains("PERFORMANCE"), "{by_kind}");
    let metrics = app
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("chronicle_slow_requests_total{operation=\"query\"}")),
        "{metrics}"
    );
}

async fn a_fast_request_writes_no_performance_event(app: TestApp) {
    app.gql("{ projects { totalCount } }", json!({}))
        .await
        .data();
    let found = events(&app, json!({"kind": "PERFORMANCE"})).await;
    assert_eq!(found["totalCount"], 0);
}
