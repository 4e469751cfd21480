//! The domain of API.md: validation, defaults, updates that keep or clear values, pagination caps, and
//! failed mutations that write nothing.

use serde_json::json;

use crate::helpers::{TestApp, assert_history_consistent};

crate::on_every_database!(
    a_new_task_defaults_to_todo_and_priority_zero,
    an_update_leaves_omitted_fields_and_clears_explicit_nulls,
    invalid_input_is_refused_with_bad_input_and_writes_nothing,
    a_label_name_can_be_used_only_once,
    lists_are_relay_connections_capped_at_one_hundred,
    a_mutation_on_a_missing_object_is_not_found,
);

async fn a_new_task_defaults_to_todo_and_priority_zero(app: TestApp) {
    let project = app.project("Apollo").await;
    let reply = app
        .gql(
            "mutation($p: ID!) { createTask(input: {projectId: $p, title: \"Launch\", dueDate: \"2026-12-24\"}) { title status priority dueDate project { name } labels { id } comments { totalCount } } }",
            json!({"p": project}),
        )
        .await;
    let task = &reply.data()["createTask"];
    assert_eq!(task["status"], "TODO");
    assert_eq!(task["priority"], 0);
    assert_eq!(task["dueDate"], "2026-12-24");
    assert_eq!(task["project"]["name"], "Apollo");
    assert_eq!(task["labels"], json!([]));
    assert_eq!(task["comments"]["totalCount"], 0);
    assert_eq!(app.count("task").await, 1);
    assert_history_consistent(&app).await;
}

async fn an_update_leaves_omitted_fields_and_clears_explicit_nulls(app: TestApp) {
    let project = app.project("Apollo").await;
    let task = app.task(&project, "Launch").await;
    app.gql(
        "mutation($id: ID!) { updateTask(id: $id, input: {description: \"go\", dueDate: \"2027-01-01\", priority: 3}) { id } }",
        json!({"id": task}),
    )
    .await
    .data();
    let reply = app
        .gql(
            "mutation($id: ID!) { updateTask(id: $id, input: {dueDate: null, status: DONE}) { title description status priority dueDate } }",
            json!({"id": task}),
        )
        .await;
    let updated = &reply.data()["updateTask"];
    assert_eq!(updated["title"], "Launch");
    assert_eq!(updated["description"], "go");
    assert_eq!(updated["priority"], 3);
    assert_eq!(updated["status"], "DONE");
    assert_eq!(updated["dueDate"], json!(null));
    assert_history_consistent(&app).await;
}

async fn invalid_input_is_refused_with_bad_input_and_writes_nothing(app: TestApp) {
    let project = app.project("Apollo").await;
    let long_name = "x".repeat(201);
    let cases = [
        (
            "mutation { createProject(input: {name: \"\"}) { id } }",
            json!({}),
        ),
        (
            "mutation($n: String!) { createProject(input: {name: $n}) { id } }",
            json!({"n": long_name}),
        ),
        (
            "mutation($p: ID!) { createTask(input: {projectId: $p, title: \"t\", priority: 6}) { id } }",
            json!({"p": project}),
        ),
        (
            "mutation($p: ID!) { createTask(input: {projectId: $p, title: \"t\", dueDate: \"tomorrow\"}) { id } }",
            json!({"p": project}),
        ),
        (
            "mutation { createLabel(input: {name: \"bug\", color: \"red\"}) { id } }",
            json!({}),
        ),
        (
            "mutation { createTask(input: {projectId: \"not-a-uuid\", title: \"t\"}) { id } }",
            json!({}),
        ),
        (
            "mutation($p: ID!) { updateProject(id: $p, input: {name: \"\"}) { id } }",
            json!({"p": project}),
        ),
        (
            "mutation($p: ID!) { updateProject(id: $p, input: {name: null}) { id } }",
            json!({"p": project}),
        ),
    ];
    for (query, variables) in cases {
        let reply = app.gql(query, variables).await;
        assert_eq!(reply.code(), "BAD_INPUT", "{query}: {}", reply.body);
    }
    assert_eq!(app.count("project").await, 1);
    assert_eq!(app.count("task").await, 0);
    assert_eq!(app.count("label").await, 0);
    assert_eq!(app.count("project_history").await, 1);
    assert_eq!(app.count("task_history").await, 0);
    assert_history_consistent(&app).await;
}

async fn a_label_name_can_be_used_only_once(app: TestApp) {
    app.label("bug").await;
    let reply = app
        .gql(
            "mutation { createLabel(input: {name: \"bug\", color: \"#000000\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.code(), "BAD_INPUT");
    assert_eq!(app.count("label").await, 1);
    assert_eq!(app.count("label_history").await, 1);
    // Names compare exactly on every backend (MySQL included): "Bug" is another label.
    app.label("Bug").await;
    assert_eq!(app.count("label").await, 2);
}

async fn lists_are_relay_connections_capped_at_one_hundred(app: TestApp) {
    for name in ["a", "b", "c"] {
        app.project(name).await;
    }
    let page = "query($after: String) { projects(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { name } } } }";
    let first = app.gql(page, json!({})).await;
    let first = &first.data()["projects"];
    assert_eq!(first["totalCount"], 3);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    assert_eq!(first["edges"][0]["node"]["name"], "a");
    let second = app
        .gql(page, json!({"after": first["pageInfo"]["endCursor"]}))
        .await;
    let second = &second.data()["projects"];
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
    assert_eq!(second["edges"][0]["node"]["name"], "c");

    let too_many = app
        .gql("{ projects(first: 101) { totalCount } }", json!({}))
        .await;
    assert_eq!(too_many.code(), "LIMIT_EXCEEDED");
    let bad_cursor = app
        .gql("{ projects(after: \"???\") { totalCount } }", json!({}))
        .await;
    assert_eq!(bad_cursor.code(), "BAD_INPUT");

    // A cursor is one list's: a project's cursor is no label's or task's position, and a version
    // of one object's history is no position in another's, although both are keyed alike.
    let project_cursor = first["pageInfo"]["endCursor"].clone();
    for other in [
        "query($after: String) { labels(after: $after) { totalCount } }",
        "query($after: String) { tasks(after: $after) { totalCount } }",
    ] {
        let reply = app.gql(other, json!({"after": project_cursor})).await;
        assert_eq!(reply.code(), "BAD_INPUT", "{other}");
    }
    let projects = app
        .gql(
            "{ projects(first: 2) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let [a, b] = [0, 1].map(|i| projects.data()["projects"]["edges"][i]["node"]["id"].clone());
    app.gql(
        "mutation($id: ID!) { updateProject(id: $id, input: {name: \"a2\"}) { id } }",
        json!({"id": a}),
    )
    .await
    .data();
    let history = "query($id: ID!, $after: String) { history(entity: PROJECT, id: $id, first: 1, after: $after) { edges { node { version } } pageInfo { endCursor } } }";
    let newest = app.gql(history, json!({"id": a})).await;
    let cursor = newest.data()["history"]["pageInfo"]["endCursor"].clone();
    let older = app.gql(history, json!({"id": a, "after": cursor})).await;
    assert_eq!(older.data()["history"]["edges"][0]["node"]["version"], 1);
    let elsewhere = app.gql(history, json!({"id": b, "after": cursor})).await;
    assert_eq!(elsewhere.code(), "BAD_INPUT");
}

async fn a_mutation_on_a_missing_object_is_not_found(app: TestApp) {
    let missing = uuid::Uuid::now_v7().to_string();
    for query in [
        "mutation($id: ID!) { updateProject(id: $id, input: {name: \"x\"}) { id } }",
        "mutation($id: ID!) { deleteTask(id: $id) }",
        "mutation($id: ID!) { createTask(input: {projectId: $id, title: \"t\"}) { id } }",
        "mutation($id: ID!) { createComment(input: {taskId: $id, body: \"b\"}) { id } }",
    ] {
        let reply = app.gql(query, json!({"id": missing})).await;
        assert_eq!(reply.code(), "NOT_FOUND", "{query}");
    }
    let none = app
        .gql(
            "query($id: ID!) { project(id: $id) { id } }",
            json!({"id": missing}),
        )
        .await;
    assert_eq!(none.data()["project"], json!(null));
}
