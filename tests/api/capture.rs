//! Capture under a mixed workload: after creates, updates, deletes, label links and cascades from
//! several users, every live row equals its latest snapshot and every deleted one ends in a DELETE.

use serde_json::json;

use crate::helpers::{As, TestApp, assert_history_consistent};

crate::on_every_database!(after_a_mixed_workload_every_live_row_equals_its_latest_snapshot);

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
