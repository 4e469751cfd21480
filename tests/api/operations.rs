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
    // An export names its user too.
    let export = reqwest::Client::new()
        .get(format!(
            "{}/export/history?entity=PROJECT&format=ndjson",
            server.address
        ))
        .header("X-User", "alice")
        .send()
        .await
        .expect("export");
    assert_eq!(export.status(), 200);
    export.bytes().await.expect("the export's body");
    let line = server.wait_for_line(|l| l.contains("/export/history"));
    assert!(line.starts_with("127.0.0.1 - alice ["), "{line}");
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

/// A transaction dropped without a commit (a request cancelled mid-mutation) releases its locks as
/// its connection goes back to the pool, although the server's pool does not ping every connection
/// coming back on PostgreSQL and MySQL (`ping_on_release` off, the default; SQLite keeps the ping):
/// the queued `ROLLBACK` is sent all the same, another connection then writes the row, and the
/// first connection serves its next request.
async fn a_dropped_transaction_releases_its_locks_without_the_pools_release_ping(backend: Backend) {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    use std::time::Duration;

    let (settings, _scratch) = crate::helpers::fresh_settings(backend).await;
    assert!(!settings.database.ping_on_release, "the default");
    let one = chronicle::config::DatabaseSettings {
        max_connections: 1,
        ..settings.database.clone()
    };
    let first = chronicle::database::connect(&one).await.unwrap();
    let second = chronicle::database::connect(&one).await.unwrap();
    let pings_on_release = match backend {
        Backend::Postgres => first
            .get_postgres_connection_pool()
            .options()
            .get_test_on_release(),
        Backend::MySql => first
            .get_mysql_connection_pool()
            .options()
            .get_test_on_release(),
        Backend::Sqlite => first
            .get_sqlite_connection_pool()
            .options()
            .get_test_on_release(),
    };
    assert_eq!(
        pings_on_release,
        backend == Backend::Sqlite,
        "the pool skips sqlx's release ping except on SQLite"
    );
    first
        .execute_unprepared("CREATE TABLE lock_probe (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        .await
        .unwrap();
    first
        .execute_unprepared("INSERT INTO lock_probe (id, n) VALUES (1, 1)")
        .await
        .unwrap();

    let cancelled = first.begin().await.unwrap();
    cancelled
        .execute_unprepared("UPDATE lock_probe SET n = 2 WHERE id = 1")
        .await
        .unwrap();
    drop(cancelled);

    // The other connection needs the row's lock (SQLite: the database's write lock); it waits for
    // it at most ten seconds here rather than the database's own timeout.
    let write = second.execute_unprepared("UPDATE lock_probe SET n = n + 10 WHERE id = 1");
    let written = tokio::time::timeout(Duration::from_secs(10), write)
        .await
        .expect("the dropped transaction's lock was released")
        .unwrap();
    assert_eq!(written.rows_affected(), 1);

    let n = |db: sea_orm::DatabaseConnection| async move {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT n FROM lock_probe WHERE id = 1",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n")
            .or_else(|_| row.try_get::<i32>("", "n").map(i64::from))
            .unwrap()
    };
    assert_eq!(
        n(second.clone()).await,
        11,
        "the dropped update was rolled back"
    );
    assert_eq!(
        n(first.clone()).await,
        11,
        "the first connection serves its next request"
    );
}

on_every_database!(backend; a_dropped_transaction_releases_its_locks_without_the_pools_release_ping);

/// A connection whose server end died (killed by the database's administrator, or a restart) fails
/// at most the one request that uses it and leaves the pool on its way back, without the pool's
/// release ping (`ping_on_release` off) and without a ping at checkout (a connection in steady use
/// is not pinged): the next request gets a new connection.
async fn a_killed_connection_fails_at_most_one_request_and_leaves_the_pool(backend: Backend) {
    use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
    use std::time::Duration;

    let (settings, _scratch) = crate::helpers::fresh_settings(backend).await;
    let admin = chronicle::database::connect(&settings.database)
        .await
        .unwrap();
    let pool = chronicle::database::connect(&chronicle::config::DatabaseSettings {
        max_connections: 1,
        ping_after_idle_ms: 3_600_000,
        ..settings.database.clone()
    })
    .await
    .unwrap();
    let whoami = match backend {
        Backend::Postgres => "SELECT CAST(pg_backend_pid() AS BIGINT) AS pid",
        _ => "SELECT CAST(CONNECTION_ID() AS SIGNED) AS pid",
    };
    let pid_of = |db: &DatabaseConnection| {
        let statement = Statement::from_string(db.get_database_backend(), whoami);
        let db = db.clone();
        async move {
            // Every row read: a read that stops before the end of its result leaves the
            // connection to be pinged on its way back whatever happens next.
            let rows = db.query_all_raw(statement).await?;
            rows[0].try_get::<i64>("", "pid")
        }
    };

    let pid = pid_of(&pool).await.unwrap();
    let kill = match backend {
        Backend::Postgres => format!("SELECT pg_terminate_backend({pid})"),
        _ => format!("KILL {pid}"),
    };
    admin.execute_unprepared(&kill).await.unwrap();
    // The kill reaches the connection a moment later: the requests up to it are served by it. The
    // pool may also notice it first (MySQL: a connection whose last read stopped before the end
    // of its result is pinged on its way back), and no request fails.
    let (mut failures, mut next) = (0, None);
    for _ in 0..250 {
        match pid_of(&pool).await {
            Err(_) => failures += 1,
            Ok(other) if other != pid => {
                next = Some(other);
                break;
            }
            Ok(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        failures <= 1,
        "only the request on the killed connection fails, not {failures}"
    );
    let next = next.expect("a new connection serves the requests after it");
    assert_eq!(
        pid_of(&pool).await.unwrap(),
        next,
        "which then stays in the pool"
    );
}

on_every_database!(servers; a_killed_connection_fails_at_most_one_request_and_leaves_the_pool);
