//! Tamper evidence: the database refuses edits of history, `verifyHistory` and `chronicle verify`
//! recompute the hash chains and name the first broken link after a record is edited or removed
//! behind the server's back.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, chronicle_verify};

crate::on_every_database!(
    the_database_refuses_to_update_or_delete_history_records,
    verify_names_the_first_version_edited_behind_the_servers_back,
    verify_notices_a_removed_record,
);

const VERIFY: &str =
    "query($id: ID!) { verifyHistory(entity: TASK, id: $id) { ok checked brokenAt reason } }";

/// A task with three versions.
async fn task_with_three_versions(app: &TestApp) -> String {
    let project = app.project("Apollo").await;
    let task = app.task(&project, "Launch").await;
    for title in ["Launch!", "Launch!!"] {
        app.gql(
            "mutation($id: ID!, $t: String!) { updateTask(id: $id, input: {title: $t}) { id } }",
            json!({"id": task, "t": title}),
        )
        .await
        .data();
    }
    task
}

async fn verify(app: &TestApp, task: &str) -> Value {
    app.gql(VERIFY, json!({"id": task})).await.data()["verifyHistory"].clone()
}

async fn sql(app: &TestApp, statement: &str) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared(statement)
        .await
        .map(|r| r.rows_affected())
}

/// What an attacker with DDL rights does first: switch the append-only triggers off.
async fn disable_protection(app: &TestApp) {
    let statements: &[&str] = match app.backend {
        Backend::Postgres => &["ALTER TABLE task_history DISABLE TRIGGER USER"],
        Backend::MySql | Backend::Sqlite => &[
            "DROP TRIGGER task_history_no_update",
            "DROP TRIGGER task_history_no_delete",
        ],
    };
    for statement in statements {
        sql(app, statement).await.expect("drop the protection");
    }
}

async fn the_database_refuses_to_update_or_delete_history_records(app: TestApp) {
    let task = task_with_three_versions(&app).await;
    assert!(
        sql(&app, "UPDATE task_history SET actor = 'mallory'")
            .await
            .is_err()
    );
    assert!(sql(&app, "DELETE FROM task_history").await.is_err());
    if app.backend == Backend::Postgres {
        assert!(sql(&app, "TRUNCATE task_history").await.is_err());
    }
    assert_eq!(app.count("task_history").await, 3);
    assert_eq!(
        verify(&app, &task).await,
        json!({"ok": true, "checked": 3, "brokenAt": null, "reason": null})
    );
    let (status, report) = chronicle_verify(&app.url);
    assert_eq!(status, 0, "{report}");
    assert!(report.contains("every hash chain holds"), "{report}");
    // The run itself is an audited call.
    let event = verify_event(&app).await;
    assert_eq!(event.status, "SUCCESS");
    assert_eq!(event.app.as_deref(), Some("chronicle"));
    assert_eq!(event.actor.as_deref(), Some("auditor"));
    assert_eq!(event.output.expect("output")["brokenObjects"], 0);
}

/// The `FUNCTION` event of the latest `chronicle verify`.
async fn verify_event(app: &TestApp) -> entity::audit_event::Model {
    use entity::audit_event;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    audit_event::Entity::find()
        .filter(audit_event::Column::Kind.eq("FUNCTION"))
        .filter(audit_event::Column::Action.eq("verify"))
        .order_by_desc(audit_event::Column::At)
        .one(&app.db)
        .await
        .expect("events")
        .expect("chronicle verify recorded its event")
}

async fn verify_names_the_first_version_edited_behind_the_servers_back(app: TestApp) {
    let task = task_with_three_versions(&app).await;
    disable_protection(&app).await;
    let edited = sql(
        &app,
        &format!(
            "UPDATE task_history SET actor = 'mallory' WHERE object_id = '{task}' AND version = 2"
        ),
    )
    .await
    .expect("tamper");
    assert_eq!(edited, 1);

    let verification = verify(&app, &task).await;
    assert_eq!(verification["ok"], false);
    assert_eq!(verification["brokenAt"], 2);
    assert_eq!(verification["checked"], 2);

    let (status, report) = chronicle_verify(&app.url);
    assert_eq!(status, 1, "{report}");
    assert!(
        report.contains(&format!("BROKEN TASK {task} at version 2")),
        "{report}"
    );
    let event = verify_event(&app).await;
    assert_eq!(event.status, "FAILURE");
    assert!(
        event
            .error
            .as_deref()
            .is_some_and(|e| e.contains("1 object(s) with a broken hash chain")),
        "{:?}",
        event.error
    );
}

async fn verify_notices_a_removed_record(app: TestApp) {
    let task = task_with_three_versions(&app).await;
    disable_protection(&app).await;
    sql(
        &app,
        &format!("DELETE FROM task_history WHERE object_id = '{task}' AND version = 2"),
    )
    .await
    .expect("tamper");
    let verification = verify(&app, &task).await;
    assert_eq!(verification["ok"], false);
    assert_eq!(verification["brokenAt"], 2);
    assert!(
        verification["reason"]
            .as_str()
            .is_some_and(|r| r.contains("missing")),
        "{verification}"
    );
}
