//! Exports: `GET /export/history|events` and `chronicle export`, NDJSON and CSV, each recorded as an
//! `EXPORT` event whose hash is the output's; bad filters refused; a million records exported in
//! flat memory.

use std::process::Command;
use std::time::Duration;

use entity::audit_event;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, TestApp, spawn_app_with};

crate::on_every_database!(
    a_history_download_holds_every_record_and_its_event_holds_the_download_s_hash,
    an_events_export_from_the_cli_is_csv_with_a_header_and_one_line_per_event,
    an_export_with_a_bad_filter_is_refused_and_records_nothing,
    a_csv_download_of_many_chunks_has_one_header_and_every_record_once,
);

/// The `EXPORT` events, oldest first, waiting up to 5 s for `n` of them (an HTTP export's event is
/// written once its body has been sent).
async fn export_events(app: &TestApp, n: usize) -> Vec<audit_event::Model> {
    for _ in 0..50 {
        let events = audit_event::Entity::find()
            .filter(audit_event::Column::Kind.eq("EXPORT"))
            .order_by_asc(audit_event::Column::At)
            .all(&app.db)
            .await
            .expect("events");
        if events.len() >= n {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} EXPORT events");
}

/// The projects' history as CSV, downloaded by "auditor".
async fn projects_csv(app: &TestApp) -> reqwest::Response {
    app.request(
        reqwest::Method::GET,
        "/export/history?format=csv&entity=PROJECT",
    )
    .header("X-User", "auditor")
    .send()
    .await
    .expect("download")
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn a_history_download_holds_every_record_and_its_event_holds_the_download_s_hash(
    app: TestApp,
) {
    let project = app.project("Apollo").await;
    app.task(&project, "one").await;
    app.task(&project, "two").await;
    let response = app
        .request(reqwest::Method::GET, "/export/history?format=ndjson")
        .header("X-User", "auditor")
        .header("X-App", "tests")
        .send()
        .await
        .expect("download");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some("application/x-ndjson")
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .is_ok_and(|v| v.starts_with("attachment; filename=\"chronicle-history-"))
    );
    let body = response.bytes().await.expect("body");
    let lines: Vec<Value> = std::str::from_utf8(&body)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 3, "one project and two tasks were created");
    let entities: Vec<&str> = lines.iter().filter_map(|l| l["entity"].as_str()).collect();
    assert_eq!(entities, ["PROJECT", "TASK", "TASK"]);
    assert!(
        lines
            .iter()
            .all(|l| l["kind"] == "CREATE" && l["user"] == "alice")
    );
    assert_eq!(lines[0]["objectId"], project.as_str());
    assert!(
        lines[0]["at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "times are RFC 3339 in UTC"
    );

    let event = export_events(&app, 1).await.remove(0);
    assert_eq!(event.action, "history");
    assert_eq!(event.status, "SUCCESS");
    assert_eq!(event.actor.as_deref(), Some("auditor"));
    assert_eq!(event.app.as_deref(), Some("tests"));
    assert!(event.duration_ms.is_some_and(|ms| ms >= 0));
    let details = event.details.expect("details");
    assert_eq!(details["rows"], 3);
    assert_eq!(details["bytes"], body.len());
    assert_eq!(details["sha256"], sha256(&body));
    assert_eq!(details["via"], "http");
    assert_eq!(details["format"], "ndjson");

    // Filtered, as CSV: the header and the project's one record.
    let filtered = projects_csv(&app).await;
    assert_eq!(filtered.status(), 200);
    let csv = filtered.text().await.expect("body");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[0].starts_with("entity,id,objectId,version,kind,at,"));
    assert!(rows[1].starts_with("PROJECT,"));
    let event = export_events(&app, 2).await.remove(1);
    assert_eq!(
        event.details.expect("details")["filters"]["entity"],
        "PROJECT"
    );
}

async fn an_events_export_from_the_cli_is_csv_with_a_header_and_one_line_per_event(app: TestApp) {
    let project = app.project("Apollo").await;
    app.task(&project, "one").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.csv");
    let output = Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args(["export", "events", "--kind", "MUTATION", "--format", "csv"])
        .args(["--quiet", "--actor", "ops", "--database-url", &app.url])
        .arg("--output")
        .arg(&path)
        .output()
        .expect("chronicle export runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&path).expect("the export was written");
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(&header[..4], ["id", "kind", "action", "status"]);
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let actions: Vec<&str> = records.iter().map(|r| &r[2]).collect();
    assert_eq!(actions, ["createProject", "createTask"]);

    let event = export_events(&app, 1).await.remove(0);
    assert_eq!(event.actor.as_deref(), Some("ops"));
    assert_eq!(event.app.as_deref(), Some("chronicle"));
    assert!(event.duration_ms.is_some());
    let details = event.details.expect("details");
    assert_eq!(details["via"], "cli");
    assert_eq!(details["rows"], 2);
    assert_eq!(details["sha256"], sha256(&bytes));
    assert_eq!(details["filters"]["kind"], "MUTATION");

    // The file is never overwritten.
    let again = Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args(["export", "events", "--quiet", "--database-url", &app.url])
        .arg("--output")
        .arg(&path)
        .output()
        .expect("chronicle export runs");
    assert!(!again.status.success());
    assert_eq!(std::fs::read(&path).expect("still there"), bytes);
}

async fn a_csv_download_of_many_chunks_has_one_header_and_every_record_once(app: TestApp) {
    // Each record's line is a few hundred bytes, so 300 of them span several 64 KiB chunks.
    let mut projects = Vec::new();
    for i in 0..300 {
        projects.push(app.project(&format!("Project {i}, with \"quotes\"")).await);
    }
    let response = projects_csv(&app).await;
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.expect("body");
    assert!(body.len() > 2 * 64 * 1024, "{} bytes", body.len());
    let mut reader = csv::Reader::from_reader(&body[..]);
    let header = reader.headers().expect("header").clone();
    assert_eq!(&header[0], "entity");
    let object = header
        .iter()
        .position(|h| h == "objectId")
        .expect("objectId");
    let snapshot = header
        .iter()
        .position(|h| h == "snapshot")
        .expect("snapshot");
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let exported: Vec<&str> = records.iter().map(|r| &r[object]).collect();
    assert_eq!(exported, projects, "every record once, oldest first");
    let names: Vec<Value> = records
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r[snapshot]).expect("the snapshot is JSON")["name"]
                .clone()
        })
        .collect();
    assert_eq!(names[299], "Project 299, with \"quotes\"");
    assert_eq!(
        body.windows(b"entity,id,".len())
            .filter(|w| *w == b"entity,id,")
            .count(),
        1,
        "one header"
    );

    let details = export_events(&app, 1)
        .await
        .remove(0)
        .details
        .expect("details");
    assert_eq!(details["rows"], 300);
    assert_eq!(details["bytes"], body.len());
    assert_eq!(details["sha256"], sha256(&body));
}

async fn an_export_with_a_bad_filter_is_refused_and_records_nothing(app: TestApp) {
    app.project("Apollo").await;
    for (path, wanted) in [
        ("/export/history?entity=PLANET", "PLANET"),
        ("/export/history?format=xml", "format"),
        ("/export/history?since=yesterday", "since"),
        ("/export/history?colour=red", "colour"),
        ("/export/events?kind=NOPE", "kind"),
    ] {
        let response = app
            .request(reqwest::Method::GET, path)
            .header("X-User", "auditor")
            .send()
            .await
            .expect("sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let reply = crate::helpers::Reply {
            status,
            assignation: None,
            body: serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text}")),
        };
        assert_eq!(reply.status, 400, "{path}: {}", reply.body);
        assert_eq!(reply.code(), "BAD_INPUT", "{path}");
        let message = reply.body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(message.contains(wanted), "{path}: {message}");
    }
    let exports = audit_event::Entity::find()
        .filter(audit_event::Column::Kind.eq("EXPORT"))
        .all(&app.db)
        .await
        .expect("events");
    assert!(exports.is_empty());
}

/// Samples a process's peak resident memory (`VmHWM`, in KiB) until it exits.
fn run_measuring_peak_memory(mut command: Command) -> (std::process::ExitStatus, u64) {
    let mut child = command.spawn().expect("spawns");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak = peak.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().expect("waits") {
            return (status, peak);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A million history records (written straight into a history table: the export reads, it does not
/// care how they came) exported by `chronicle export`, which stays under 64 MiB the whole time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporting_a_million_history_records_stays_within_64_mib_of_memory() {
    const RECORDS: u64 = 1_000_000;
    // No sequencer in the server: it would be busy integrating the million records meanwhile.
    let app = spawn_app_with(Backend::Sqlite, |s| s.log.sequence_every_ms = 0).await;
    let project = app.project("Apollo").await;
    let copy = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {})
         INSERT INTO project_history (id, object_id, version, kind, at, actor, app, assignation_id,
             step, reason, snapshot, hash, scope_id)
         SELECT CASE typeof(p.id) WHEN 'blob' THEN randomblob(16)
                    ELSE lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-7' ||
                         substr(hex(randomblob(2)), 2) || '-8' || substr(hex(randomblob(2)), 2) ||
                         '-' || hex(randomblob(6))) END,
                'bulk-' || n.i, 1, p.kind, p.at, p.actor, p.app, 'bulk', n.i, p.reason, p.snapshot,
                p.hash, p.scope_id
         FROM n, project_history p WHERE p.object_id = '{project}'",
        RECORDS - 1
    );
    let started = std::time::Instant::now();
    app.db
        .execute_unprepared(&copy)
        .await
        .expect("a million records");
    eprintln!("inserted in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history.ndjson");
    let mut command = Command::new(env!("CARGO_BIN_EXE_chronicle"));
    command
        .args(["export", "history", "--quiet", "--database-url", &app.url])
        .arg("--output")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr")).expect("stderr file"));
    let (status, peak_kib) = run_measuring_peak_memory(command);
    eprintln!("exported in {:?}, peak {peak_kib} KiB", started.elapsed());
    assert!(
        status.success(),
        "the export failed: {}",
        std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
    );
    let lines = std::io::BufRead::lines(std::io::BufReader::new(
        std::fs::File::open(&path).expect("written"),
    ))
    .count() as u64;
    assert_eq!(lines, RECORDS);
    assert!(
        peak_kib > 0 && peak_kib < 64 * 1024,
        "peak resident memory was {peak_kib} KiB"
    );
    let event = export_events(&app, 1).await.remove(0);
    assert_eq!(event.details.expect("details")["rows"], json!(RECORDS));
}
