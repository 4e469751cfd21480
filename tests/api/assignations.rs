//! Assignations: the context headers, steps across tables and requests, the echo header, filters,
//! ownership, and concurrency within one assignation.

use serde_json::json;

use crate::helpers::{As, TestApp, assert_history_consistent};

crate::on_every_database!(
    changes_sent_with_one_assignation_id_are_one_assignation_in_step_order,
    a_request_without_an_assignation_id_gets_a_fresh_one_echoed,
    a_malformed_assignation_id_is_refused_and_nothing_is_written,
    assignations_are_listed_newest_first_and_filtered,
    joining_another_users_assignation_is_forbidden,
    concurrent_requests_in_one_assignation_never_share_a_step_or_version,
);

async fn changes_sent_with_one_assignation_id_are_one_assignation_in_step_order(app: TestApp) {
    let who = As::user("alice").in_assignation("release-42");
    let project = app
        .send(
            &who,
            "mutation { createProject(input: {name: \"Apollo\"}) { id } }",
            json!({}),
        )
        .await;
    let project = project.data()["createProject"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let second = app
        .send(
            &who,
            "mutation($p: ID!) { createTask(input: {projectId: $p, title: \"Launch\"}) { id } updateProject(id: $p, input: {archived: true}) { id } }",
            json!({"p": project}),
        )
        .await;
    second.data();
    assert_eq!(second.assignation.as_deref(), Some("release-42"));

    let reply = app
        .gql(
            "{ assignation(id: \"release-42\") { id user app changeCount entities startedAt reverts { id } revertedBy { id } records { totalCount edges { node { entity kind step assignationId } } } } }",
            json!({}),
        )
        .await;
    let assignation = &reply.data()["assignation"];
    assert_eq!(assignation["user"], "alice");
    assert_eq!(assignation["app"], "tests");
    assert_eq!(assignation["changeCount"], 3);
    assert_eq!(assignation["entities"], json!(["PROJECT", "TASK"]));
    assert_eq!(assignation["reverts"], json!(null));
    let records: Vec<(i64, String)> = assignation["records"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["node"]["step"].as_i64().expect("step"),
                e["node"]["entity"].as_str().expect("entity").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        records,
        [
            (0, "PROJECT".into()),
            (1, "TASK".into()),
            (2, "PROJECT".into())
        ]
    );
    let stored: i64 = app.count("assignation").await;
    assert_eq!(stored, 1);
    assert_history_consistent(&app).await;
}

async fn a_request_without_an_assignation_id_gets_a_fresh_one_echoed(app: TestApp) {
    let first = app
        .gql(
            "mutation { createProject(input: {name: \"a\"}) { id } }",
            json!({}),
        )
        .await;
    let second = app
        .gql(
            "mutation { createProject(input: {name: \"b\"}) { id } }",
            json!({}),
        )
        .await;
    let a = first.assignation.expect("echoed");
    let b = second.assignation.expect("echoed");
    assert_ne!(a, b);
    assert_eq!(
        uuid::Uuid::parse_str(&a).expect("a UUID").get_version_num(),
        7
    );
    let reply = app
        .gql(
            "query($id: String!) { assignation(id: $id) { changeCount } }",
            json!({"id": a}),
        )
        .await;
    assert_eq!(reply.data()["assignation"]["changeCount"], 1);
}

async fn a_malformed_assignation_id_is_refused_and_nothing_is_written(app: TestApp) {
    let long = "a".repeat(129);
    for bad in ["has space", "semi;colon", "ümlaut", long.as_str()] {
        let reply = app
            .send(
                &As::user("alice").in_assignation(bad),
                "mutation { createProject(input: {name: \"x\"}) { id } }",
                json!({}),
            )
            .await;
        assert_eq!(reply.code(), "BAD_ASSIGNATION_ID", "{bad:?}");
    }
    let twice = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .header("X-User", "alice")
        .header("X-Assignation-Id", "one")
        .header("X-Assignation-Id", "two")
        .json(&json!({"query": "mutation { createProject(input: {name: \"x\"}) { id } }"}))
        .send()
        .await
        .expect("sent");
    let body: serde_json::Value = twice.json().await.expect("JSON");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "BAD_ASSIGNATION_ID"
    );
    let max = "A-z.0_9:".repeat(16);
    let ok = app
        .send(
            &As::user("alice").in_assignation(&max),
            "mutation { createProject(input: {name: \"x\"}) { id } }",
            json!({}),
        )
        .await;
    ok.data();
    assert_eq!(app.count("project").await, 1);
    assert_eq!(app.count("project_history").await, 1);
    assert_eq!(app.count("assignation").await, 1);
}

async fn assignations_are_listed_newest_first_and_filtered(app: TestApp) {
    let alice = As::user("alice").in_assignation("a-1");
    let project = app
        .send(
            &alice,
            "mutation { createProject(input: {name: \"Apollo\"}) { id } }",
            json!({}),
        )
        .await;
    let project = project.data()["createProject"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut bob = As::user("bob").in_assignation("b-1");
    bob.app = Some("web");
    app.send(
        &bob,
        "mutation { createLabel(input: {name: \"x\", color: \"#000000\"}) { id } }",
        json!({}),
    )
    .await
    .data();
    let alice2 = As::user("alice").in_assignation("a-2");
    app.send(
        &alice2,
        "mutation($p: ID!) { createTask(input: {projectId: $p, title: \"t\"}) { id } }",
        json!({"p": project}),
    )
    .await
    .data();

    let ids = |reply: &crate::helpers::Reply| -> Vec<String> {
        reply.data()["assignations"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let list = "query($user: String, $app: String, $entity: HistoryEntity, $object: ID, $reverted: Boolean) { assignations(user: $user, app: $app, entity: $entity, objectId: $object, reverted: $reverted) { totalCount edges { node { id } } } }";
    assert_eq!(ids(&app.gql(list, json!({})).await), ["a-2", "b-1", "a-1"]);
    assert_eq!(
        ids(&app.gql(list, json!({"user": "alice"})).await),
        ["a-2", "a-1"]
    );
    assert_eq!(ids(&app.gql(list, json!({"app": "web"})).await), ["b-1"]);
    assert_eq!(
        ids(&app.gql(list, json!({"entity": "TASK"})).await),
        ["a-2"]
    );
    assert_eq!(
        ids(&app.gql(list, json!({"object": project})).await),
        ["a-1"]
    );
    assert_eq!(
        ids(&app.gql(list, json!({"reverted": true})).await),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&app.gql(list, json!({"reverted": false})).await).len(),
        3
    );

    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    let since = app
        .gql(
            "query($s: DateTime) { assignations(since: $s) { totalCount } }",
            json!({"s": future}),
        )
        .await;
    assert_eq!(since.data()["assignations"]["totalCount"], 0);
    let paged = app
        .gql(
            "{ assignations(first: 2) { pageInfo { hasNextPage endCursor } } }",
            json!({}),
        )
        .await;
    let cursor = paged.data()["assignations"]["pageInfo"]["endCursor"].clone();
    let rest = app
        .gql(
            "query($c: String) { assignations(first: 2, after: $c) { edges { node { id } } } }",
            json!({"c": cursor}),
        )
        .await;
    assert_eq!(
        rest.data()["assignations"]["edges"],
        json!([{"node": {"id": "a-1"}}])
    );
}

async fn joining_another_users_assignation_is_forbidden(app: TestApp) {
    app.send(
        &As::user("alice").in_assignation("mine"),
        "mutation { createProject(input: {name: \"a\"}) { id } }",
        json!({}),
    )
    .await
    .data();
    let reply = app
        .send(
            &As::user("mallory").in_assignation("mine"),
            "mutation { createProject(input: {name: \"b\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.code(), "FORBIDDEN");
    assert_eq!(app.count("project").await, 1);
    assert_eq!(app.count("project_history").await, 1);
}

async fn concurrent_requests_in_one_assignation_never_share_a_step_or_version(app: TestApp) {
    let project = app.project("Apollo").await;
    let task = app.task(&project, "Launch").await;
    let app = std::sync::Arc::new(app);
    let mut handles = Vec::new();
    for i in 0..16 {
        let app = app.clone();
        let task = task.clone();
        let project = project.clone();
        handles.push(tokio::spawn(async move {
            let who = As::user("alice").in_assignation("burst");
            let reply = app
                .send(
                    &who,
                    "mutation($id: ID!, $t: String!, $p: ID!) { updateTask(id: $id, input: {title: $t}) { id } createTask(input: {projectId: $p, title: $t}) { id } }",
                    json!({"id": task, "t": format!("title {i}"), "p": project}),
                )
                .await;
            reply.data();
        }));
    }
    for handle in handles {
        handle.await.expect("request task");
    }
    let reply = app
        .gql("{ assignation(id: \"burst\") { changeCount } }", json!({}))
        .await;
    assert_eq!(reply.data()["assignation"]["changeCount"], 32);
    let versions = app
        .gql(
            "query($id: ID!) { history(entity: TASK, id: $id, first: 100) { totalCount } }",
            json!({"id": task}),
        )
        .await;
    assert_eq!(versions.data()["history"]["totalCount"], 17);
    assert_history_consistent(&app).await;
}
