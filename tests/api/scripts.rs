//! Code outside GraphQL: audited functions (`FUNCTION` events with arguments, result, logs, notes, a
//! panic's backtrace), data migrations run once under an assignation named after them and revertible
//! over the API, and `chronicle migrate` as one audited call whose schema migrations write nothing.

use std::future::Future;
use std::pin::Pin;
use std::process::Command;

use chronicle::audit::audited::{Audited, audited, note};
use chronicle::data_migrations::{Applied, DataMigration, apply};
use entity::{HistoryEntity, audit_event, task};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use sea_orm_history::{AssignationId, ChangeContext, EntitySet};
use serde_json::{Value, json};

use crate::helpers::{Backend, FindAll, TestApp, fresh_settings};

crate::on_every_database!(
    an_audited_function_records_its_context_masked_arguments_result_logs_and_notes,
    an_audited_function_that_fails_or_panics_is_a_failure_with_the_error_or_the_backtrace,
    a_data_migration_runs_once_under_its_own_assignation_and_can_be_reverted,
    the_audited_attribute_records_each_call_like_the_wrapper,
);

async fn function_events(app: &TestApp, action: &str) -> Vec<audit_event::Model> {
    audit_event::Entity::find()
        .filter(audit_event::Column::Kind.eq("FUNCTION"))
        .filter(audit_event::Column::Action.eq(action))
        .order_by_asc(audit_event::Column::At)
        .all(&app.db)
        .await
        .expect("events")
}

async fn an_audited_function_records_its_context_masked_arguments_result_logs_and_notes(
    app: TestApp,
) {
    let context = ChangeContext::new(
        HistoryEntity::registry().expect("registry"),
        AssignationId::parse("nightly-1").expect("id"),
    )
    .user("cron")
    .app("jobs");
    let result = context
        .scope(
            Audited::new("nightly_cleanup")
                .args(json!({"olderThanDays": 30, "password": "hunter2"}))
                .run(&app.db, async {
                    note("started by the scheduler");
                    tracing::warn!(kept = 3, "some rows were kept");
                    Ok::<_, std::io::Error>(json!({"removed": 2, "token": "abc"}))
                }),
        )
        .await
        .expect("it succeeds");
    assert_eq!(result["removed"], 2, "the result is returned as it was");
    assert_eq!(result["token"], "abc");

    let events = function_events(&app, "nightly_cleanup").await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.status, "SUCCESS");
    assert_eq!(event.actor.as_deref(), Some("cron"));
    assert_eq!(event.app.as_deref(), Some("jobs"));
    assert_eq!(event.assignation_id.as_deref(), Some("nightly-1"));
    assert!(event.duration_ms.is_some());
    let input = event.input.clone().expect("input");
    assert_eq!(input["olderThanDays"], 30);
    assert_eq!(input["password"], "***");
    let output = event.output.clone().expect("output");
    assert_eq!(output["removed"], 2);
    assert_eq!(output["token"], "***");
    let details = event.details.clone().expect("details");
    assert_eq!(details["notes"], json!(["started by the scheduler"]));
    let logs = event.logs.to_string();
    assert!(logs.contains("some rows were kept"), "{logs}");

    // It is listed like any event, by its kind.
    let listed = app
        .gql(
            "{ auditEvents(kind: FUNCTION) { totalCount edges { node { action user } } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed.data()["auditEvents"]["totalCount"], 1);
    assert_eq!(
        listed.data()["auditEvents"]["edges"][0]["node"]["action"],
        "nightly_cleanup"
    );
}

/// A function audited by the attribute: its database and client are not recorded, its token is
/// masked, `?` works in its body.
#[audited(action = "rename_everything", db = db, skip(client), app = "jobs")]
async fn rename_everything(
    db: &sea_orm::DatabaseConnection,
    client: &str,
    prefix: String,
    token: String,
    fail: bool,
) -> Result<u64, std::io::Error> {
    note(format!("renaming with {client}"));
    tracing::warn!(prefix = %prefix, "renaming everything");
    if fail {
        return Err(std::io::Error::other("refused by the client"));
    }
    let renamed: u64 = "3".parse().map_err(std::io::Error::other)?;
    let _ = (db, token);
    Ok(renamed)
}

async fn the_audited_attribute_records_each_call_like_the_wrapper(app: TestApp) {
    let context = ChangeContext::new(
        HistoryEntity::registry().expect("registry"),
        AssignationId::parse("rename-1").expect("id"),
    )
    .user("cron");
    let renamed = context
        .clone()
        .scope(rename_everything(
            &app.db,
            "client-1",
            "v2-".into(),
            "s3cret".into(),
            false,
        ))
        .await
        .expect("it succeeds");
    assert_eq!(renamed, 3, "the function's own result");
    let failed = context
        .scope(rename_everything(
            &app.db,
            "client-1",
            "v3-".into(),
            "s3cret".into(),
            true,
        ))
        .await;
    assert_eq!(
        failed.map_err(|e| e.to_string()),
        Err("refused by the client".to_owned())
    );

    let events = function_events(&app, "rename_everything").await;
    assert_eq!(events.len(), 2);
    let (ok, refused) = (&events[0], &events[1]);
    assert_eq!(ok.status, "SUCCESS");
    assert_eq!(ok.actor.as_deref(), Some("cron"));
    assert_eq!(ok.app.as_deref(), Some("jobs"));
    assert_eq!(ok.assignation_id.as_deref(), Some("rename-1"));
    assert_eq!(
        ok.input,
        Some(json!({"prefix": "v2-", "token": "***", "fail": false})),
        "recorded by name, the token masked, neither the database nor the client"
    );
    assert_eq!(ok.output, Some(json!(3)));
    assert_eq!(
        ok.details.clone().expect("details")["notes"],
        json!(["renaming with client-1"])
    );
    assert!(
        ok.logs.to_string().contains("renaming everything"),
        "{}",
        ok.logs
    );
    assert_eq!(refused.status, "FAILURE");
    assert_eq!(refused.error.as_deref(), Some("refused by the client"));
    assert_eq!(
        refused.input.as_ref().map(|i| &i["fail"]),
        Some(&json!(true))
    );
}

async fn an_audited_function_that_fails_or_panics_is_a_failure_with_the_error_or_the_backtrace(
    app: TestApp,
) {
    let failed = Audited::new("import")
        .user("ops")
        .run(&app.db, async {
            Err::<(), _>(std::io::Error::other("the file is truncated"))
        })
        .await;
    assert!(failed.is_err());
    let event = function_events(&app, "import").await.remove(0);
    assert_eq!(event.status, "FAILURE");
    assert_eq!(event.error.as_deref(), Some("the file is truncated"));
    assert_eq!(event.actor.as_deref(), Some("ops"));

    let db = app.db.clone();
    let panicked = tokio::spawn(async move {
        Audited::new("resize")
            .run(&db, async {
                note("before the panic");
                if std::hint::black_box(true) {
                    panic!("the buffer is gone");
                }
                Ok::<(), std::io::Error>(())
            })
            .await
    })
    .await;
    assert!(
        panicked.is_err_and(|e| e.is_panic()),
        "the panic is resumed"
    );
    let event = function_events(&app, "resize").await.remove(0);
    assert_eq!(event.status, "FAILURE");
    assert!(
        event
            .error
            .as_deref()
            .is_some_and(|e| e.contains("the buffer is gone"))
    );
    let details = event.details.expect("details");
    assert_eq!(details["notes"], json!(["before the panic"]));
    assert!(
        details["panic"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the buffer is gone") && m.contains("scripts.rs")),
        "{details}"
    );
    assert!(
        details["panic"]["backtrace"]
            .as_str()
            .is_some_and(|b| !b.is_empty())
    );
}

const UPPER: &str = "m20261130_000001_upper_case_task_titles";

/// A data migration: every task's title in capitals, through the task's active model (so through
/// its history hooks).
fn upper_case_titles(
    txn: &DatabaseTransaction,
) -> Pin<Box<dyn Future<Output = Result<(), DbErr>> + Send + '_>> {
    Box::pin(async move {
        for found in task::Entity::find().all(txn).await? {
            let title = found.title.to_uppercase();
            let mut row: task::ActiveModel = found.into();
            row.title = Set(title);
            row.update(txn).await?;
        }
        Ok(())
    })
}

const MIGRATIONS: [DataMigration; 1] = [DataMigration {
    name: UPPER,
    description: "task titles in capitals",
    run: upper_case_titles,
}];

async fn titles(app: &TestApp) -> Vec<String> {
    let mut titles: Vec<String> = task::Entity::find_all(&app.db)
        .await
        .into_iter()
        .map(|t| t.title)
        .collect();
    titles.sort();
    titles
}

async fn a_data_migration_runs_once_under_its_own_assignation_and_can_be_reverted(app: TestApp) {
    let project = app.project("Apollo").await;
    app.task(&project, "write the plan").await;
    app.task(&project, "review it").await;

    let applied = apply(&app.db, &MIGRATIONS, Some("ops"))
        .await
        .expect("it runs");
    let assignation = format!("migration:{UPPER}");
    assert_eq!(
        applied,
        [Applied {
            name: UPPER.into(),
            assignation_id: assignation.clone(),
            records: 2
        }]
    );
    assert_eq!(titles(&app).await, ["REVIEW IT", "WRITE THE PLAN"]);
    // Once only.
    assert!(
        apply(&app.db, &MIGRATIONS, Some("ops"))
            .await
            .expect("it runs")
            .is_empty()
    );
    assert_eq!(app.count("task_history").await, 4);

    // Listed like any assignation, with its reason on each record.
    let listed = app
        .gql(
            "query($id: String!) { assignation(id: $id) { user app changeCount records { edges { node { kind reason } } } } }",
            json!({"id": assignation}),
        )
        .await;
    let found = &listed.data()["assignation"];
    assert_eq!(found["user"], "ops");
    assert_eq!(found["app"], "chronicle migrate");
    assert_eq!(found["changeCount"], 2);
    let records: Vec<&Value> = found["records"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert!(
        records
            .iter()
            .all(|r| r["kind"] == "UPDATE" && r["reason"] == "task titles in capitals")
    );
    let events = function_events(&app, "data_migration").await;
    assert_eq!(events.len(), 1, "the run is audited, the skip is not");
    assert_eq!(events[0].output, Some(json!(2)));
    assert_eq!(events[0].actor.as_deref(), Some("ops"));
    assert_eq!(
        events[0].assignation_id.as_deref(),
        Some(assignation.as_str())
    );
    // A malformed name is refused before anything runs.
    let bad = [DataMigration {
        name: "drop table; --",
        ..MIGRATIONS[0]
    }];
    assert!(apply(&app.db, &bad, None).await.is_err());

    // And undone like any assignation.
    let reverted = app
        .gql(
            "mutation($id: String!) { revertAssignation(id: $id) { id } }",
            json!({"id": assignation}),
        )
        .await;
    reverted.data();
    assert_eq!(titles(&app).await, ["review it", "write the plan"]);
}

/// `chronicle migrate` on a fresh database: the schema migrations write no history and no events;
/// the command itself is one `FUNCTION` event listing them. Run again, it applies nothing.
async fn chronicle_migrate_is_one_audited_call_and_its_schema_migrations_write_nothing(
    backend: Backend,
) {
    {
        let (settings, _scratch) = fresh_settings(backend).await;
        let url = settings.database.url.clone();
        let migrate = || {
            Command::new(env!("CARGO_BIN_EXE_chronicle"))
                .args(["migrate", "--actor", "ops", "--database-url", &url])
                .output()
                .expect("chronicle migrate runs")
        };
        let first = migrate();
        assert!(
            first.status.success(),
            "{backend:?}: {}",
            String::from_utf8_lossy(&first.stderr)
        );
        let second = migrate();
        assert!(second.status.success());

        let app = TestApp::attach(String::new(), url.clone(), backend).await;
        for entity in HistoryEntity::registry().expect("registry").entities() {
            assert_eq!(app.count(&entity.history_table).await, 0, "{backend:?}");
        }
        let events = audit_event::Entity::find()
            .order_by_asc(audit_event::Column::At)
            .all(&app.db)
            .await
            .expect("events");
        let seen: Vec<(&str, &str, Option<&str>)> = events
            .iter()
            .map(|e| (e.kind.as_str(), e.action.as_str(), e.actor.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                ("FUNCTION", "migrate", Some("ops")),
                ("FUNCTION", "migrate", Some("ops"))
            ],
            "{backend:?}"
        );
        let applied = &events[0].output.as_ref().expect("output")["schema"];
        let names: Vec<&str> = applied
            .as_array()
            .expect("names")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(names.contains(&"m20261123_000001_create_domain_tables"));
        assert!(names.contains(&"m20261130_000008_data_migrations"));
        assert_eq!(
            events[1].output.as_ref().expect("output")["schema"],
            json!([])
        );
    }
}

crate::on_every_database!(
    backend;
    chronicle_migrate_is_one_audited_call_and_its_schema_migrations_write_nothing,
);

/// A script (a change context outside any request) and the server writing one SQLite file at once:
/// the script's change transaction takes the write lock before it reads, so the server's mutation
/// waits for it; before, the script's write failed with "database is locked" once the server had
/// committed after the script's first read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_and_the_server_writing_one_sqlite_file_at_once_both_succeed() {
    use entity::project;
    use sea_orm::IntoActiveModel;

    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    let id: uuid::Uuid = app.project("Shared").await.parse().expect("a uuid");
    // A fresh assignation: no statement reserves it up front, so the script's first statement is its
    // read.
    let context = ChangeContext::fresh(HistoryEntity::registry().expect("registry")).user("script");
    let assignation = context.assignation.to_string();
    let answer = context
        .scope(async {
            let txn = sea_orm_history::begin(&app.db).await.expect("begin");
            let row = project::Entity::find_by_id(id)
                .one(&txn)
                .await
                .expect("read")
                .expect("the project");
            // The server takes a mutation while the script holds its transaction.
            let (address, client) = (app.address.clone(), reqwest::Client::new());
            let server = tokio::spawn(async move {
                client
                    .post(format!("{address}/graphql"))
                    .header("X-User", "alice")
                    .json(&json!({"query": "mutation { createProject(input: {name: \"Meanwhile\"}) { id } }"}))
                    .send()
                    .await
                    .expect("sent")
                    .json::<Value>()
                    .await
                    .expect("JSON")
            });
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let mut renamed = row.into_active_model();
            renamed.name = Set("Renamed by the script".into());
            renamed.update(&txn).await.expect("the script's write");
            txn.commit().await.expect("the script commits");
            server.await.expect("the request ran")
        })
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");

    let mut names: Vec<String> = project::Entity::find_all(&app.db)
        .await
        .into_iter()
        .map(|p| p.name)
        .collect();
    names.sort();
    assert_eq!(names, ["Meanwhile", "Renamed by the script"]);
    let rows = app.history_rows(HistoryEntity::Project).await;
    assert!(
        rows.iter()
            .any(|r| r.actor.as_deref() == Some("script") && r.assignation_id == assignation),
        "the script's change is history"
    );
}
