//! What operators see: one combined-format access-log line per request (and JSON logs when asked),
//! read from the `chronicle` process's stdout, and the Prometheus metrics at `/metrics`, checked
//! against what the database holds.

use entity::HistoryEntity;
use sea_orm_history::EntitySet;
use serde_json::{Value, json};

use crate::helpers::{As, Backend, ServerProcess, TestApp, metrics, spawn_app_with, value};
use crate::on_every_database;

const UPDATE_TASK: &str =
    "mutation($t: ID!, $title: String!) { updateTask(id: $t, input: {title: $title}) { id } }";
const REVERT: &str = "mutation($id: String!) { revertAssignation(id: $id) { id } }";

async fn post(address: &str, headers: &[(&str, &str)], body: Value) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_writes_one_access_log_line_in_the_combined_format() {
    let mut server = ServerProcess::start(Backend::Sqlite, &[]).await;
    let reply = post(
        &server.address,
        &[
            ("X-User", "alice"),
            ("User-Agent", "chronicle-tests/1"),
            ("Referer", "https://ops.example/board"),
        ],
        json!({"query": "mutation { createProject(input: {name: \"Logged\"}) { id } }"}),
    )
    .await;
    assert_eq!(reply.status(), 200);
    let bytes = reply.bytes().await.expect("body").len();
    let line = server.wait_for_line(|l| l.contains("\"POST /graphql"));
    let (head, rest) = line.split_once(" [").expect("a [time] field");
    assert_eq!(head, "127.0.0.1 - alice");
    let (time, request) = rest.split_once("] ").expect("a closing ]");
    assert!(
        chrono::DateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S %z").is_ok(),
        "{time} is not a combined-log time"
    );
    assert_eq!(
        request,
        format!(
            "\"POST /graphql HTTP/1.1\" 200 {bytes} \"https://ops.example/board\" \"chronicle-tests/1\""
        )
    );

    // No user, a query string, and a user agent trying to forge a second line or break the quotes.
    let health = reqwest::Client::new()
        .get(format!("{}/health?probe=1", server.address))
        .header("User-Agent", "evil\" 200 0 \"-\" \"x")
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let line = server.wait_for_line(|l| l.contains("/health"));
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.ends_with(
            "\"GET /health?probe=1 HTTP/1.1\" 200 2 \"-\" \"evil\\\" 200 0 \\\"-\\\" \\\"x\""
        ),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_put_every_line_in_one_json_object_with_the_request_as_fields() {
    let mut server = ServerProcess::start(Backend::Sqlite, &["--log-format", "json"]).await;
    post(
        &server.address,
        &[("X-User", "bob")],
        json!({"query": "mutation { createProject(input: {name: \"Json\"}) { id } }"}),
    )
    .await;
    let line = server.wait_for_line(|l| l.contains("chronicle::access"));
    let event: Value = serde_json::from_str(&line).expect("the access line is JSON");
    assert_eq!(event["level"], "INFO");
    assert_eq!(event["target"], "chronicle::access");
    let fields = &event["fields"];
    assert_eq!(fields["method"], "POST");
    assert_eq!(fields["path"], "/graphql");
    assert_eq!(fields["status"], 200);
    assert_eq!(fields["user"], "bob");
    assert_eq!(fields["ip"], "127.0.0.1");
    assert!(
        fields["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("127.0.0.1 - bob [")),
        "{event}"
    );
}

async fn metrics_count_requests_mutations_history_records_and_reverts(app: TestApp) {
    let project = app.project("Metrics").await;
    let task = app.task(&project, "count me").await;
    app.send(
        &As::user("alice").in_assignation("first"),
        UPDATE_TASK,
        json!({"t": task, "title": "one"}),
    )
    .await
    .data();
    app.send(
        &As::user("alice").in_assignation("second"),
        UPDATE_TASK,
        json!({"t": task, "title": "two"}),
    )
    .await
    .data();
    // Refused: no history, a FAILURE.
    let refused = app.gql(UPDATE_TASK, json!({"t": task, "title": ""})).await;
    assert_eq!(refused.code(), "BAD_INPUT");
    // A conflict (one object), then an applied revert.
    assert_eq!(
        app.gql(REVERT, json!({"id": "first"})).await.code(),
        "REVERT_CONFLICT"
    );
    app.gql(REVERT, json!({"id": "second"})).await.data();

    let m = metrics(&app).await;
    let mut written = 0;
    for &entity in HistoryEntity::ALL {
        written += app.history_rows(entity).await.len();
    }
    assert_eq!(
        written, 5,
        "create project, create task, two updates, one revert"
    );
    assert_eq!(
        value(
            &m,
            "chronicle_history_records_written_total{entity=\"PROJECT\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "chronicle_history_records_written_total{entity=\"TASK\"}"
        ),
        4.0
    );
    assert_eq!(
        value(
            &m,
            "chronicle_mutations_total{field=\"updateTask\",status=\"SUCCESS\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            "chronicle_mutations_total{field=\"updateTask\",status=\"FAILURE\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "chronicle_reverts_total{kind=\"assignation\",outcome=\"conflict\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "chronicle_reverts_total{kind=\"assignation\",outcome=\"applied\"}"
        ),
        1.0
    );
    assert_eq!(value(&m, "chronicle_revert_conflicts_total"), 1.0);
    // Seven GraphQL requests so far, each answered 200 and timed.
    assert_eq!(
        value(
            &m,
            "chronicle_http_requests_total{method=\"POST\",route=\"/graphql\",status=\"200\"}"
        ),
        7.0
    );
    assert_eq!(
        value(
            &m,
            "chronicle_http_request_duration_seconds_count{route=\"/graphql\"}"
        ),
        7.0
    );
    assert_eq!(
        app.count("audit_event").await,
        7,
        "the metrics do not replace the audit trail"
    );
}

on_every_database!(metrics_count_requests_mutations_history_records_and_reverts);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_turned_off() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.operations.metrics = false).await;
    let response = reqwest::get(format!("{}/metrics", app.address))
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
}

/// The database file alone, without its write-ahead log: how many tasks a copy of it holds (`None`
/// while the copy cannot be read, e.g. before the first checkpoint made its tables).
async fn tasks_in_the_file_alone(url: &str) -> Option<i64> {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
    let path = url.strip_prefix("sqlite://")?.split('?').next()?;
    let copy = tempfile::Builder::new().suffix(".db").tempfile().ok()?;
    std::fs::copy(path, copy.path()).ok()?;
    let db = Database::connect(format!("sqlite://{}?mode=rw", copy.path().display()))
        .await
        .ok()?;
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT COUNT(*) AS n FROM task",
        ))
        .await
        .ok()??;
    let n = row.try_get("", "n").ok();
    db.close().await.ok();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_copies_its_write_ahead_log_into_the_database_file_in_the_background() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.database.sqlite_checkpoint_ms = 20;
    })
    .await;
    let project = app.project("checkpointed").await;
    for i in 0..5 {
        app.task(&project, &format!("task {i}")).await;
    }
    // A few hundred pages of log: far below the commits' own threshold (10,000 pages), so only
    // the background checkpointer can have put the tasks into the file.
    let mut seen = None;
    for _ in 0..200 {
        seen = tasks_in_the_file_alone(&app.url).await;
        if seen == Some(5) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(seen, Some(5), "the database file alone holds every task");
    assert_eq!(app.count("task").await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_without_the_background_checkpointer_leaves_a_short_log_to_the_commits() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.database.sqlite_checkpoint_ms = 0;
    })
    .await;
    let project = app.project("not checkpointed").await;
    for i in 0..5 {
        app.task(&project, &format!("task {i}")).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Nothing copied the log: the file alone holds no task yet (or not even the table).
    assert_ne!(tasks_in_the_file_alone(&app.url).await, Some(5));
    assert_eq!(app.count("task").await, 5);
}
