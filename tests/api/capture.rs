//! Capture under a mixed workload: after creates, updates, deletes, label links and cascades from
//! several users, every live row equals its latest snapshot and every deleted one ends in a DELETE;
//! tasks created while their project is deleted.

use serde_json::json;

use entity::HistoryEntity;
use sea_orm_history::HistoryKind;

use crate::helpers::{As, TestApp, assert_history_consistent};

crate::on_every_database!(
    after_a_mixed_workload_every_live_row_equals_its_latest_snapshot,
    tasks_created_while_their_project_is_deleted_are_either_deleted_with_it_or_refused,
);

async fn after_a_mixed_workload_every_live_row_equals_its_latest_snapshot(app: TestApp) {
    let labels = [app.label("red").await, app.label("blue").await];
    for round in 0..4 {
        let user = ["alice", "bob"][round % 2];
        let who = As::user(user);
        let project = app
            .send(
                &who,
                "mutation($n: String!) { createProject(input: {name: $n}) { id } }",
                json!({"n": format!("p{round}")}),
            )
            .await;
        let project = project.data()["createProject"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let mut tasks = Vec::new();
        for t in 0..3 {
            tasks.push(app.task(&project, &format!("t{round}.{t}")).await);
        }
        for (i, task) in tasks.iter().enumerate() {
            app.send(
                &who,
                "mutation($id: ID!, $l: ID!, $p: Int!) { updateTask(id: $id, input: {status: DOING, priority: $p}) { id } addLabel(taskId: $id, labelId: $l) { id } createComment(input: {taskId: $id, body: \"note\"}) { id } }",
                json!({"id": task, "l": labels[i % 2], "p": i}),
            )
            .await
            .data();
        }
        app.send(
            &who,
            "mutation($id: ID!) { deleteTask(id: $id) }",
            json!({"id": tasks[0]}),
        )
        .await
        .data();
        if round % 2 == 1 {
            app.send(
                &who,
                "mutation($id: ID!) { deleteProject(id: $id) }",
                json!({"id": project}),
            )
            .await
            .data();
        }
    }
    app.gql(
        "mutation($id: ID!) { updateLabel(id: $id, input: {color: \"#123456\"}) { id } deleteLabel(id: $id) }",
        json!({"id": labels[1]}),
    )
    .await
    .data();
    assert_eq!(app.count("project").await, 2);
    assert_eq!(app.count("task").await, 4);
    assert_eq!(app.count("label").await, 1);
    assert_history_consistent(&app).await;
}

async fn tasks_created_while_their_project_is_deleted_are_either_deleted_with_it_or_refused(
    app: TestApp,
) {
    // Tasks are written without reading their project first: its foreign key locks the project, so
    // a deleteProject racing them either waits for a task and deletes it with a record, or goes
    // first and the task is refused as NOT_FOUND with nothing written.
    let app = std::sync::Arc::new(app);
    let mut created = Vec::new();
    for round in 0..3 {
        let project = app.project(&format!("doomed {round}")).await;
        let mut creates = Vec::new();
        for i in 0..12 {
            let (client, id) = (app.clone(), project.clone());
            creates.push(tokio::spawn(async move {
                client.gql(
                    "mutation($p: ID!, $t: String!) { createTask(input: {projectId: $p, title: $t}) { id } }",
                    json!({"p": id, "t": format!("task {i}")}),
                )
                .await
            }));
            if i == 5 {
                let (app, project) = (app.clone(), project.clone());
                creates.push(tokio::spawn(async move {
                    app.gql(
                        "mutation($id: ID!) { deleteProject(id: $id) }",
                        json!({"id": project}),
                    )
                    .await
                }));
            }
        }
        for handle in creates {
            let reply = handle.await.expect("the request ran");
            if reply.body["errors"].is_null() {
                if let Some(id) = reply.data()["createTask"]["id"].as_str() {
                    created.push(id.to_owned());
                }
            } else {
                assert_eq!(reply.code(), "NOT_FOUND", "{}", reply.body);
            }
        }
        let tasks = app.history_rows(HistoryEntity::Task).await;
        for id in &created {
            let mut records: Vec<_> = tasks.iter().filter(|r| &r.object_id == id).collect();
            records.sort_by_key(|r| r.version);
            let kinds: Vec<HistoryKind> = records.iter().map(|r| r.kind).collect();
            assert_eq!(
                kinds,
                [HistoryKind::Create, HistoryKind::Delete],
                "task {id} was created and deleted with its project"
            );
        }
        assert_eq!(
            tasks.len(),
            2 * created.len(),
            "a refused task wrote no record"
        );
    }
    assert_eq!(app.count("project").await, 0);
    assert_eq!(app.count("task").await, 0, "no task outlived its project");
    assert_history_consistent(&app).await;
}
