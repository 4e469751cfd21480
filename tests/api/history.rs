//! History per object: versions newest first with field changes, no record for a no-op update, the
//! cascade of deleteProject, and time travel with `asOf`.

use serde_json::json;

use crate::helpers::{As, TestApp, assert_history_consistent};

crate::on_every_database!(
    each_change_of_a_project_is_a_version_with_its_field_changes,
    an_update_that_changes_nothing_writes_no_history_and_keeps_updated_at,
    deleting_a_project_records_a_delete_for_it_and_everything_under_it,
    as_of_returns_an_object_as_it_was_at_that_instant,
    a_label_link_is_historized_with_a_composite_object_id,
);

const HISTORY: &str = "query($id: ID!) { project(id: $id) { history { totalCount edges { node { version kind user app assignationId step reason snapshot changes { field old new } hash } } } } }";

async fn each_change_of_a_project_is_a_version_with_its_field_changes(app: TestApp) {
    let created = app
        .send(
            &As::user("alice").in_assignation("kickoff"),
            "mutation { createProject(input: {name: \"Apollo\"}, reason: \"new mission\") { id } }",
            json!({}),
        )
        .await;
    let id = created.data()["createProject"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(created.assignation.as_deref(), Some("kickoff"));
    app.send(
        &As::user("bob"),
        "mutation($id: ID!) { updateProject(id: $id, input: {name: \"Apollo 11\", description: \"moon\"}) { id } }",
        json!({"id": id}),
    )
    .await
    .data();

    let reply = app.gql(HISTORY, json!({"id": id})).await;
    let history = &reply.data()["project"]["history"];
    assert_eq!(history["totalCount"], 2);
    let newest = &history["edges"][0]["node"];
    let oldest = &history["edges"][1]["node"];
    assert_eq!(newest["version"], 2);
    assert_eq!(newest["kind"], "UPDATE");
    assert_eq!(newest["user"], "bob");
    assert_eq!(newest["snapshot"]["name"], "Apollo 11");
    let changed: Vec<&str> = newest["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["field"].as_str().expect("field"))
        .collect();
    assert_eq!(changed, ["description", "name", "updatedAt"]);
    assert!(
        newest["changes"]
            .as_array()
            .expect("changes")
            .contains(&json!({"field": "name", "old": "Apollo", "new": "Apollo 11"}))
    );
    assert_eq!(oldest["version"], 1);
    assert_eq!(oldest["kind"], "CREATE");
    assert_eq!(oldest["user"], "alice");
    assert_eq!(oldest["app"], "tests");
    assert_eq!(oldest["assignationId"], "kickoff");
    assert_eq!(oldest["step"], 0);
    assert_eq!(oldest["reason"], "new mission");
    assert_eq!(oldest["hash"].as_str().expect("hash").len(), 64);

    let top_level = app
        .gql(
            "query($id: ID!) { history(entity: PROJECT, id: $id, first: 1) { totalCount edges { node { version } } pageInfo { hasNextPage } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        top_level.data()["history"]["edges"][0]["node"]["version"],
        2
    );
    assert_eq!(top_level.data()["history"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(app.count("project_history").await, 2);
    assert_history_consistent(&app).await;
}

async fn an_update_that_changes_nothing_writes_no_history_and_keeps_updated_at(app: TestApp) {
    let id = app.project("Apollo").await;
    let before = app
        .gql(
            "query($id: ID!) { project(id: $id) { updatedAt } }",
            json!({"id": id}),
        )
        .await;
    let reply = app
        .gql(
            "mutation($id: ID!) { updateProject(id: $id, input: {name: \"Apollo\", description: null}) { updatedAt } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        reply.data()["updateProject"]["updatedAt"],
        before.data()["project"]["updatedAt"]
    );
    assert_eq!(app.count("project_history").await, 1);
    assert_history_consistent(&app).await;
}

async fn deleting_a_project_records_a_delete_for_it_and_everything_under_it(app: TestApp) {
    let project = app.project("Apollo").await;
    let task = app.task(&project, "Launch").await;
    let label = app.label("urgent").await;
    app.gql(
        "mutation($t: ID!, $l: ID!) { addLabel(taskId: $t, labelId: $l) { id } createComment(input: {taskId: $t, body: \"go\"}) { id } }",
        json!({"t": task, "l": label}),
    )
    .await
    .data();

    let reply = app
        .send(
            &As::user("alice").in_assignation("teardown"),
            "mutation($id: ID!) { deleteProject(id: $id, reason: \"cancelled\") }",
            json!({"id": project}),
        )
        .await;
    assert_eq!(reply.data()["deleteProject"], project.as_str());

    let records = app
        .gql(
            "{ assignation(id: \"teardown\") { changeCount entities records { edges { node { entity kind step reason } } } } }",
            json!({}),
        )
        .await;
    let assignation = &records.data()["assignation"];
    assert_eq!(assignation["changeCount"], 4);
    let kinds: Vec<(String, String)> = assignation["records"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["node"]["entity"].as_str().expect("entity").to_owned(),
                e["node"]["kind"].as_str().expect("kind").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("COMMENT".to_owned(), "DELETE".to_owned()),
            ("TASK_LABEL".to_owned(), "DELETE".to_owned()),
            ("TASK".to_owned(), "DELETE".to_owned()),
            ("PROJECT".to_owned(), "DELETE".to_owned()),
        ]
    );
    assert_eq!(app.count("project").await, 0);
    assert_eq!(app.count("task").await, 0);
    assert_eq!(app.count("comment").await, 0);
    assert_eq!(app.count("task_label").await, 0);
    assert_eq!(app.count("label").await, 1);
    assert_history_consistent(&app).await;
}

async fn as_of_returns_an_object_as_it_was_at_that_instant(app: TestApp) {
    let before_creation = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let id = app.project("Apollo").await;
    let task = app.task(&id, "Launch").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let after_creation = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    app.gql(
        "mutation($id: ID!) { updateProject(id: $id, input: {name: \"Apollo 11\"}) { id } }",
        json!({"id": id}),
    )
    .await
    .data();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let after_update = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    app.gql(
        "mutation($id: ID!) { deleteProject(id: $id) }",
        json!({"id": id}),
    )
    .await
    .data();

    let reply = app
        .gql(
            "query($id: ID!, $t: ID!, $a: DateTime!, $b: DateTime!, $c: DateTime!) { a: project(id: $id, asOf: $a) { name } b: project(id: $id, asOf: $b) { name } c: project(id: $id, asOf: $c) { name } now: project(id: $id) { name } task: task(id: $t, asOf: $c) { title project { name } } }",
            json!({"id": id, "t": task, "a": before_creation, "b": after_creation, "c": after_update}),
        )
        .await;
    let data = reply.data();
    assert_eq!(data["a"], json!(null));
    assert_eq!(data["b"]["name"], "Apollo");
    assert_eq!(data["c"]["name"], "Apollo 11");
    assert_eq!(data["now"], json!(null));
    // The task is gone too; read as of then, its project is the project as of then.
    assert_eq!(data["task"]["title"], "Launch");
    assert_eq!(data["task"]["project"]["name"], "Apollo 11");
}

async fn a_label_link_is_historized_with_a_composite_object_id(app: TestApp) {
    let project = app.project("Apollo").await;
    let task = app.task(&project, "Launch").await;
    let label = app.label("urgent").await;
    let add =
        "mutation($t: ID!, $l: ID!) { addLabel(taskId: $t, labelId: $l) { labels { name } } }";
    let reply = app.gql(add, json!({"t": task, "l": label})).await;
    assert_eq!(
        reply.data()["addLabel"]["labels"],
        json!([{"name": "urgent"}])
    );
    app.gql(add, json!({"t": task, "l": label})).await.data();
    let reply = app
        .gql(
            "mutation($t: ID!, $l: ID!) { removeLabel(taskId: $t, labelId: $l) { labels { name } } }",
            json!({"t": task, "l": label}),
        )
        .await;
    assert_eq!(reply.data()["removeLabel"]["labels"], json!([]));
    let link = format!("{task}:{label}");
    let history = app
        .gql(
            "query($id: ID!) { history(entity: TASK_LABEL, id: $id) { edges { node { objectId kind version } } } }",
            json!({"id": link}),
        )
        .await;
    assert_eq!(
        history.data()["history"]["edges"],
        json!([
            {"node": {"objectId": link, "kind": "DELETE", "version": 2}},
            {"node": {"objectId": link, "kind": "CREATE", "version": 1}},
        ])
    );
    assert_history_consistent(&app).await;
}
