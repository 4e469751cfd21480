//! Revert: whole assignations (creates, updates, deletes, cascades), conflicts and force, redo,
//! preview, and one object back to a version.

use serde_json::{Value, json};

use crate::helpers::{As, TestApp, assert_history_consistent};

crate::on_every_database!(
    reverting_an_assignation_undoes_its_creates_updates_and_deletes,
    reverting_a_project_delete_brings_back_its_tasks_comments_and_label_links,
    reverting_twice_is_already_reverted_and_reverting_the_revert_is_a_redo,
    a_later_change_is_a_conflict_that_writes_nothing_unless_forced,
    a_label_name_taken_since_is_a_conflict_not_a_database_error,
    preview_shows_the_planned_changes_and_conflicts_without_writing,
    revert_object_restores_a_version_and_recreates_a_deleted_object,
    a_revert_sets_updated_at_to_its_own_time_and_restores_every_other_field,
);

const REVERT: &str = "mutation($id: String!, $force: Boolean) { revertAssignation(id: $id, force: $force, reason: \"undo\") { id user changeCount reverts { id revertedBy { id } } records { edges { node { entity kind reason } } } } }";

async fn revert(app: &TestApp, id: &str, force: bool) -> crate::helpers::Reply {
    app.send(
        &As::user("alice"),
        REVERT,
        json!({"id": id, "force": force}),
    )
    .await
}

async fn history_total(app: &TestApp) -> i64 {
    let mut total = 0;
    for table in [
        "project_history",
        "task_history",
        "label_history",
        "task_label_history",
        "comment_history",
    ] {
        total += app.count(table).await;
    }
    total
}

async fn reverting_an_assignation_undoes_its_creates_updates_and_deletes(app: TestApp) {
    let project = app.project("Apollo").await;
    let task = app.task(&project, "Launch").await;
    let label = app.label("bug").await;
    let comment = app
        .gql(
            "mutation($t: ID!) { createComment(input: {taskId: $t, body: \"hi\"}) { id } }",
            json!({"t": task}),
        )
        .await;
    let comment = comment.data()["createComment"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let work = As::user("alice").in_assignation("work");
    app.send(
        &work,
        "mutation($p: ID!, $t: ID!, $l: ID!, $c: ID!) { createTask(input: {projectId: $p, title: \"new\"}) { id } updateTask(id: $t, input: {title: \"Launch!\", priority: 5}) { id } updateLabel(id: $l, input: {color: \"#ff0000\"}) { id } deleteComment(id: $c) addLabel(taskId: $t, labelId: $l) { id } }",
        json!({"p": project, "t": task, "l": label, "c": comment}),
    )
    .await
    .data();
    assert_eq!(app.count("task").await, 2);

    let reply = revert(&app, "work", false).await;
    let undo = &reply.data()["revertAssignation"];
    assert_eq!(undo["reverts"]["id"], "work");
    assert_eq!(undo["reverts"]["revertedBy"]["id"], undo["id"]);
    assert_eq!(undo["user"], "alice");
    assert_eq!(undo["changeCount"], 5);
    assert!(
        undo["records"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .all(|e| e["node"]["reason"] == "undo")
    );

    let state = app
        .gql(
            "query($t: ID!, $l: ID!, $c: ID!, $p: ID!) { task(id: $t) { title priority labels { id } } label(id: $l) { color } comment(id: $c) { body } tasks(projectId: $p) { totalCount } }",
            json!({"t": task, "l": label, "c": comment, "p": project}),
        )
        .await;
    let data = state.data();
    assert_eq!(data["task"]["title"], "Launch");
    assert_eq!(data["task"]["priority"], 0);
    assert_eq!(data["task"]["labels"], json!([]));
    assert_eq!(data["label"]["color"], "#aabbcc");
    assert_eq!(data["comment"]["body"], "hi");
    assert_eq!(data["tasks"]["totalCount"], 1);
    assert_history_consistent(&app).await;
}

async fn reverting_a_project_delete_brings_back_its_tasks_comments_and_label_links(app: TestApp) {
    let project = app.project("Apollo").await;
    let label = app.label("urgent").await;
    for i in 0..3 {
        let task = app.task(&project, &format!("t{i}")).await;
        app.gql(
            "mutation($t: ID!, $l: ID!) { addLabel(taskId: $t, labelId: $l) { id } createComment(input: {taskId: $t, body: \"note\"}) { id } }",
            json!({"t": task, "l": label}),
        )
        .await
        .data();
    }
    let before = app
        .gql("query($p: ID!) { project(id: $p) { name tasks { edges { node { id title labels { name } comments { edges { node { body } } } } } } } }", json!({"p": project}))
        .await;
    let before = before.data().clone();
    app.send(
        &As::user("alice").in_assignation("oops"),
        "mutation($p: ID!) { deleteProject(id: $p) }",
        json!({"p": project}),
    )
    .await
    .data();
    assert_eq!(app.count("task").await, 0);

    revert(&app, "oops", false).await.data();
    let after = app
        .gql("query($p: ID!) { project(id: $p) { name tasks { edges { node { id title labels { name } comments { edges { node { body } } } } } } } }", json!({"p": project}))
        .await;
    assert_eq!(after.data(), &before);
    assert_eq!(app.count("comment").await, 3);
    assert_eq!(app.count("task_label").await, 3);
    assert_history_consistent(&app).await;
}

async fn reverting_twice_is_already_reverted_and_reverting_the_revert_is_a_redo(app: TestApp) {
    let project = app
        .send(
            &As::user("alice").in_assignation("make"),
            "mutation { createProject(input: {name: \"Apollo\"}) { id } }",
            json!({}),
        )
        .await;
    let project = project.data()["createProject"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let undo = revert(&app, "make", false).await;
    let undo_id = undo.data()["revertAssignation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(app.count("project").await, 0);

    let again = revert(&app, "make", false).await;
    assert_eq!(again.code(), "ALREADY_REVERTED");
    // The preview says so too, rather than show an empty plan.
    let preview = app
        .gql(
            "query($id: String!) { previewRevert(id: $id) { changes { kind } conflicts { objectId } } }",
            json!({"id": "make"}),
        )
        .await;
    assert_eq!(preview.code(), "ALREADY_REVERTED", "{}", preview.body);

    let redo = revert(&app, &undo_id, false).await;
    assert_eq!(
        redo.data()["revertAssignation"]["reverts"]["id"],
        undo_id.as_str()
    );
    let back = app
        .gql("query($p: ID!) { project(id: $p) { name history { edges { node { version kind } } } } }", json!({"p": project}))
        .await;
    assert_eq!(back.data()["project"]["name"], "Apollo");
    assert_eq!(
        back.data()["project"]["history"]["edges"],
        json!([{"node": {"version": 3, "kind": "CREATE"}}, {"node": {"version": 2, "kind": "DELETE"}}, {"node": {"version": 1, "kind": "CREATE"}}])
    );
    let reverted = app
        .gql(
            "{ assignations(reverted: true) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        reverted.data()["assignations"]["edges"]
            .as_array()
            .expect("edges")
            .len(),
        2
    );
    assert_history_consistent(&app).await;
}

async fn a_later_change_is_a_conflict_that_writes_nothing_unless_forced(app: TestApp) {
    let project = app.project("Apollo").await;
    let task = app.task(&project, "Launch").await;
    let update =
        "mutation($t: ID!, $title: String!) { updateTask(id: $t, input: {title: $title}) { id } }";
    app.send(
        &As::user("alice").in_assignation("first"),
        update,
        json!({"t": task, "title": "one"}),
    )
    .await
    .data();
    app.send(
        &As::user("bob").in_assignation("second"),
        update,
        json!({"t": task, "title": "two"}),
    )
    .await
    .data();
    let written = history_total(&app).await;

    let refused = revert(&app, "first", false).await;
    assert_eq!(refused.code(), "REVERT_CONFLICT");
    assert_eq!(
        refused.body["errors"][0]["extensions"]["conflicts"],
        json!([{"entity": "TASK", "objectId": task, "assignationId": "second"}])
    );
    assert_eq!(history_total(&app).await, written);
    let title = app
        .gql(
            "query($t: ID!) { task(id: $t) { title } }",
            json!({"t": task}),
        )
        .await;
    assert_eq!(title.data()["task"]["title"], "two");
    let first = app
        .gql(
            "{ assignation(id: \"first\") { revertedBy { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(first.data()["assignation"]["revertedBy"], Value::Null);

    revert(&app, "first", true).await.data();
    let title = app
        .gql(
            "query($t: ID!) { task(id: $t) { title } }",
            json!({"t": task}),
        )
        .await;
    assert_eq!(title.data()["task"]["title"], "Launch");
    assert_history_consistent(&app).await;
}

async fn a_label_name_taken_since_is_a_conflict_not_a_database_error(app: TestApp) {
    let label = app.label("bug").await;
    app.send(
        &As::user("alice").in_assignation("drop"),
        "mutation($l: ID!) { deleteLabel(id: $l) }",
        json!({"l": label}),
    )
    .await
    .data();
    let again = app.label("bug").await;
    let refused = revert(&app, "drop", true).await;
    assert_eq!(refused.code(), "REVERT_CONFLICT");
    let conflicts = &refused.body["errors"][0]["extensions"]["conflicts"];
    assert_eq!(conflicts[0]["entity"], "LABEL");
    assert_eq!(conflicts[0]["objectId"], again.as_str());
    assert_eq!(app.count("label").await, 1);
    assert_history_consistent(&app).await;
}

async fn preview_shows_the_planned_changes_and_conflicts_without_writing(app: TestApp) {
    let project = app.project("Apollo").await;
    let task = app.task(&project, "Launch").await;
    app.send(
        &As::user("alice").in_assignation("edit"),
        "mutation($t: ID!, $p: ID!) { updateTask(id: $t, input: {title: \"Go\"}) { id } updateProject(id: $p, input: {name: \"Apollo 11\"}) { id } }",
        json!({"t": task, "p": project}),
    )
    .await
    .data();
    app.send(
        &As::user("bob"),
        "mutation($p: ID!) { updateProject(id: $p, input: {archived: true}) { id } }",
        json!({"p": project}),
    )
    .await
    .data();
    let written = history_total(&app).await;
    let preview = app
        .gql(
            "{ previewRevert(id: \"edit\") { changes { entity objectId kind changes { field old new } } conflicts { entity objectId assignationId } } }",
            json!({}),
        )
        .await;
    let preview = &preview.data()["previewRevert"];
    let changes = preview["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 2);
    let task_change = changes
        .iter()
        .find(|c| c["entity"] == "TASK")
        .expect("task change");
    assert_eq!(task_change["kind"], "UPDATE");
    assert!(
        task_change["changes"]
            .as_array()
            .expect("diff")
            .contains(&json!({"field": "title", "old": "Go", "new": "Launch"}))
    );
    assert_eq!(preview["conflicts"][0]["entity"], "PROJECT");
    assert_eq!(preview["conflicts"][0]["objectId"], project.as_str());
    assert_eq!(history_total(&app).await, written);
    let missing = app
        .gql(
            "{ previewRevert(id: \"nope\") { changes { kind } } }",
            json!({}),
        )
        .await;
    assert_eq!(missing.code(), "NOT_FOUND");
}

async fn revert_object_restores_a_version_and_recreates_a_deleted_object(app: TestApp) {
    let project = app.project("Apollo").await;
    let rename =
        "mutation($p: ID!, $n: String!) { updateProject(id: $p, input: {name: $n}) { id } }";
    app.gql(rename, json!({"p": project, "n": "Apollo 11"}))
        .await
        .data();
    app.gql(rename, json!({"p": project, "n": "Apollo 13"}))
        .await
        .data();
    let object = "mutation($p: ID!, $v: Int!) { revertObject(entity: PROJECT, id: $p, toVersion: $v, reason: \"restore\") { version kind reason snapshot } }";
    let restored = app.gql(object, json!({"p": project, "v": 2})).await;
    let record = &restored.data()["revertObject"];
    assert_eq!(record["version"], 4);
    assert_eq!(record["kind"], "UPDATE");
    assert_eq!(record["reason"], "restore");
    assert_eq!(record["snapshot"]["name"], "Apollo 11");

    app.gql(
        "mutation($p: ID!) { deleteProject(id: $p) }",
        json!({"p": project}),
    )
    .await
    .data();
    let recreated = app.gql(object, json!({"p": project, "v": 1})).await;
    assert_eq!(recreated.data()["revertObject"]["kind"], "CREATE");
    assert_eq!(recreated.data()["revertObject"]["version"], 6);
    let now = app
        .gql(
            "query($p: ID!) { project(id: $p) { name } }",
            json!({"p": project}),
        )
        .await;
    assert_eq!(now.data()["project"]["name"], "Apollo");
    let missing = app.gql(object, json!({"p": project, "v": 99})).await;
    assert_eq!(missing.code(), "NOT_FOUND");
    // Restoring the state it is already in writes nothing and says so.
    let records = history_total(&app).await;
    let assignations = app.count("assignation").await;
    let same = app.gql(object, json!({"p": project, "v": 6})).await;
    assert_eq!(same.code(), "BAD_INPUT");
    assert_eq!(history_total(&app).await, records);
    assert_eq!(app.count("assignation").await, assignations);

    // A label's old name taken since: the restore is refused with the reason, and, as there is no
    // `force` here, the message does not offer one.
    let label = app.label("red").await;
    app.gql(
        "mutation($l: ID!) { updateLabel(id: $l, input: {name: \"blue\"}) { id } }",
        json!({"l": label}),
    )
    .await
    .data();
    let holder = app.label("red").await;
    let records = history_total(&app).await;
    let taken = app
        .gql(
            "mutation($l: ID!) { revertObject(entity: LABEL, id: $l, toVersion: 1) { version } }",
            json!({"l": label}),
        )
        .await;
    assert_eq!(taken.code(), "REVERT_CONFLICT");
    let error = &taken.body["errors"][0];
    assert!(
        !error["message"]
            .as_str()
            .unwrap_or("force")
            .contains("force"),
        "{error}"
    );
    assert_eq!(
        error["extensions"]["conflicts"][0]["objectId"],
        holder.as_str(),
        "the label in the way"
    );
    assert_eq!(history_total(&app).await, records);
    assert_history_consistent(&app).await;
}

async fn a_revert_sets_updated_at_to_its_own_time_and_restores_every_other_field(app: TestApp) {
    let project = app.project("Apollo").await;
    let task = app.task(&project, "Launch").await;
    let read = "query($t: ID!) { task(id: $t) { title priority createdAt updatedAt } }";
    let before = app.gql(read, json!({"t": task})).await.data()["task"].clone();
    app.send(
        &As::user("alice").in_assignation("edit"),
        "mutation($t: ID!) { updateTask(id: $t, input: {title: \"Lanch\", priority: 4}) { id } }",
        json!({"t": task}),
    )
    .await
    .data();
    let edited = app.gql(read, json!({"t": task})).await.data()["task"].clone();

    revert(&app, "edit", false).await.data();
    let after = app.gql(read, json!({"t": task})).await.data()["task"].clone();
    assert_eq!(after["title"], before["title"]);
    assert_eq!(after["priority"], before["priority"]);
    assert_eq!(after["createdAt"], before["createdAt"]);
    let stamp = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp")).expect("RFC 3339")
    };
    assert!(
        stamp(&after["updatedAt"]) > stamp(&edited["updatedAt"]),
        "updatedAt went back: {before} -> {edited} -> {after}"
    );

    // The same for one object brought back to a version.
    let restore = app
        .gql(
            "mutation($t: ID!) { revertObject(entity: TASK, id: $t, toVersion: 2) { version snapshot } }",
            json!({"t": task}),
        )
        .await;
    let record = &restore.data()["revertObject"];
    assert_eq!(record["snapshot"]["title"], "Lanch");
    assert!(stamp(&record["snapshot"]["updatedAt"]) > stamp(&after["updatedAt"]));
    assert_history_consistent(&app).await;
}
