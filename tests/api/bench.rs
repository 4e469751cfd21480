//! The `bench` binary as the README runs it, in its quick form and on the write path only: it
//! measures each change historized and on the plain twin, prints the table and writes the same
//! figures as JSON, and leaves no scratch database behind. What it asserts is the shape of the
//! results, never a time: timed assertions do not belong in tests.

use std::process::Command;

use serde_json::Value;

use crate::helpers::{Backend, fresh_settings};

/// Runs `bench --quick --only write` on `server`, with `dir` as its temporary directory (where it
/// keeps a SQLite scratch file), and returns its JSON and its table.
async fn quick_write_bench(server: &str, dir: &std::path::Path) -> (Value, String) {
    let json = dir.join("bench.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_bench"));
    command
        .args([
            "--quick",
            "--only",
            "write",
            "--database-url",
            server,
            "--json",
        ])
        .arg(&json)
        .env("TMPDIR", dir);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the bench's thread")
        .expect("bench runs");
    let table = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "bench failed: {table}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results = serde_json::from_slice(&std::fs::read(&json).expect("the JSON file"))
        .expect("the JSON parses");
    (results, table)
}

/// The value of `metric` for `change`.
fn figure(results: &Value, metric: &str, change: &str) -> f64 {
    results["results"]
        .as_array()
        .expect("a list of results")
        .iter()
        .find(|r| r["metric"] == metric && r["params"]["change"] == change)
        .unwrap_or_else(|| panic!("no {metric} for {change}: {results}"))["value"]
        .as_f64()
        .expect("a number")
}

crate::on_every_database!(
    backend;
    the_quick_bench_reports_the_write_overhead_of_each_change_in_its_table_and_json,
);

async fn the_quick_bench_reports_the_write_overhead_of_each_change_in_its_table_and_json(
    backend: Backend,
) {
    let (settings, _database) = fresh_settings(backend).await;
    let server = match backend {
        Backend::Sqlite => "sqlite".to_owned(),
        _ => settings.database.url,
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let before = scratch_databases(backend, &server, dir.path()).await;
    let (results, table) = quick_write_bench(&server, dir.path()).await;
    assert_eq!(
        scratch_databases(backend, &server, dir.path()).await,
        before,
        "the bench removes its scratch database"
    );
    assert_eq!(results["quick"], true);
    for change in ["create", "update", "delete"] {
        for metric in ["historized_ms", "plain_ms", "write_overhead_ratio"] {
            let value = figure(&results, metric, change);
            assert!(
                value.is_finite() && value > 0.0,
                "{metric} of {change}: {value}"
            );
        }
        assert!(
            table.contains(&format!("write_overhead_ratio | change={change} ")),
            "the table lists {change}: {table}"
        );
    }
    assert!(figure(&results, "write_overhead_ratio", "create+update") > 0.0);
    assert!(
        results["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| r["backend"] == backend_name(backend)),
        "{results}"
    );
}

/// The bench's scratch databases on the server (its SQLite files in `dir`, its temporary directory).
/// Another bench run on the same server at the same time would show here too: the test suite runs
/// none.
async fn scratch_databases(backend: Backend, url: &str, dir: &std::path::Path) -> Vec<String> {
    use sea_orm::ConnectionTrait;
    if backend == Backend::Sqlite {
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("the temporary directory")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("chronicle_bench_"))
            .collect();
        files.sort();
        return files;
    }
    let db = sea_orm::Database::connect(url).await.expect("the server");
    let sql = match backend {
        Backend::Postgres => {
            "SELECT datname AS name FROM pg_database WHERE datname LIKE 'chronicle\\_bench\\_%' ORDER BY 1"
        }
        _ => {
            "SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE 'chronicle\\_bench\\_%' ORDER BY 1"
        }
    };
    db.query_all_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        sql,
    ))
    .await
    .expect("the databases")
    .iter()
    .map(|row| row.try_get::<String>("", "name").expect("a name"))
    .collect()
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
        Backend::MySql => "mysql",
    }
}
