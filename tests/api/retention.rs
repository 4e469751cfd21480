//! Retention: `chronicle prune` (the real binary, against the test's database) removes audit events
//! older than the age, and with `--history` old history records but never an object's latest; it
//! writes what it removes to the archive first and says what it did; `--dry-run` counts the same and
//! removes nothing. Verification still holds
//! afterwards, a revert that needs pruned history is `NOT_FOUND` and writes nothing, and `serve`
//! prunes on a schedule when asked.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use entity::HistoryEntity;
use entity::audit_event;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{As, Backend, FindAll, TestApp, spawn_app_with};
use crate::on_every_database;

const UPDATE_PROJECT: &str =
    "mutation($p: ID!, $n: String!) { updateProject(id: $p, input: {name: $n}) { id } }";

/// Runs `chronicle prune` on the app's database; returns the exit code and stdout.
fn prune(app: &TestApp, args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args(["prune", "--quiet", "--database-url", &app.url])
        .args(args)
        .output()
        .expect("chronicle prune runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// A directory of its own for a test's archives, deleted with it.
fn archive_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("chronicle-test-archive-")
        .tempdir()
        .expect("temp dir")
}

/// Every line of a gzip'd NDJSON archive (all its gzip members).
fn archive_lines(path: &Path) -> Vec<Value> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).expect("archive exists"))
        .read_to_string(&mut text)
        .expect("the archive is gzip");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// A project renamed three times (four records) and another with a task created and deleted (one
/// record, and the task's two); returns the two projects' ids.
async fn edited_and_deleted(app: &TestApp) -> (String, String) {
    let edited = app.project("v1").await;
    for name in ["v2", "v3", "v4"] {
        app.gql(UPDATE_PROJECT, json!({"p": edited, "n": name}))
            .await
            .data();
    }
    let untouched = app.project("once").await;
    let task = app.task(&untouched, "gone").await;
    app.gql(
        "mutation($t: ID!) { deleteTask(id: $t) }",
        json!({"t": task}),
    )
    .await
    .data();
    (edited, untouched)
}

/// `rows` in (object, version) order.
fn sorted(mut rows: Vec<sea_orm_history::HistoryRow>) -> Vec<sea_orm_history::HistoryRow> {
    rows.sort_by(|a, b| (&a.object_id, a.version).cmp(&(&b.object_id, b.version)));
    rows
}

/// The line of `table` in prune's report.
fn reported(stdout: &str, table: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(table)).then(|| words.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no line for {table} in:\n{stdout}"))
}

async fn prune_removes_audit_events_older_than_the_age_and_archives_them_first(app: TestApp) {
    for name in ["a", "b", "c", "d", "e"] {
        app.project(name).await;
    }
    let events = audit_event::Entity::find_all(&app.db).await;
    assert_eq!(events.len(), 5);
    // Three of them 100 days old.
    let old: BTreeSet<String> = events.iter().take(3).map(|e| e.id.to_string()).collect();
    audit_event::Entity::update_many()
        .col_expr(
            audit_event::Column::At,
            Expr::value(chrono::Utc::now() - chrono::Duration::days(100)),
        )
        .filter(audit_event::Column::Id.is_in(events.iter().take(3).map(|e| e.id)))
        .exec(&app.db)
        .await
        .expect("backdate");
    let history_before = app.history_rows(HistoryEntity::Project).await;
    let dir = archive_dir();
    let archive = dir.path().join("prune.ndjson.gz");

    let (code, stdout) = prune(
        &app,
        &[
            "--older-than",
            "90d",
            "--archive",
            archive.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(reported(&stdout, "audit_event"), 3);
    assert!(stdout.contains(&format!("archived to {}", archive.display())));

    let archived: BTreeSet<String> = archive_lines(&archive)
        .iter()
        .map(|line| {
            assert_eq!(line["table"], "audit_event");
            line["row"]["id"].as_str().expect("id").to_owned()
        })
        .collect();
    assert_eq!(archived, old);
    let left = audit_event::Entity::find_all(&app.db).await;
    assert!(left.iter().all(|e| !old.contains(&e.id.to_string())));
    assert_eq!(
        left.iter().filter(|e| e.kind == "MUTATION").count(),
        2,
        "the recent events stay"
    );
    let system: Vec<_> = left.iter().filter(|e| e.kind == "SYSTEM").collect();
    assert_eq!(system.len(), 1, "the prune says what it did");
    assert_eq!(system[0].action, "prune");
    let details = system[0].details.as_ref().expect("details");
    assert_eq!(details["trigger"], "command");
    assert_eq!(details["report"]["auditEvents"], 3);
    assert_eq!(
        app.history_rows(HistoryEntity::Project).await.len(),
        history_before.len(),
        "history stays without --history"
    );

    // The archive is never overwritten; nothing is removed when it exists.
    let (code, _) = prune(
        &app,
        &[
            "--older-than",
            "0s",
            "--archive",
            archive.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 2);
    let after = audit_event::Entity::find_all(&app.db).await;
    assert_eq!(
        after.iter().filter(|e| e.kind != "FUNCTION").count(),
        3,
        "nothing was removed"
    );
    // Each run of the command is an audited call: what it was asked, and what came of it.
    let mut runs: Vec<_> = after.iter().filter(|e| e.kind == "FUNCTION").collect();
    runs.sort_by_key(|e| e.at);
    let outcomes: Vec<(&str, &str)> = runs
        .iter()
        .map(|e| (e.action.as_str(), e.status.as_str()))
        .collect();
    assert_eq!(outcomes, [("prune", "SUCCESS"), ("prune", "FAILURE")]);
    assert_eq!(runs[0].output.as_ref().expect("output")["auditEvents"], 3);
    assert_eq!(
        runs[1].input.as_ref().expect("input")["olderThanSecs"],
        0,
        "the arguments are kept"
    );
    std::fs::remove_file(&archive).ok();
}

async fn prune_with_history_keeps_the_latest_record_of_every_object_and_chains_still_verify(
    app: TestApp,
) {
    let (edited, untouched) = edited_and_deleted(&app).await;
    let dir = archive_dir();
    let archive = dir.path().join("prune.ndjson.gz");

    let (code, stdout) = prune(
        &app,
        &[
            "--older-than",
            "0s",
            "--history",
            "--archive",
            archive.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(reported(&stdout, "project_history"), 3);
    assert_eq!(reported(&stdout, "task_history"), 1);
    assert!(
        stdout.contains("4 history records of 2 objects removed"),
        "{stdout}"
    );

    let projects = app.history_rows(HistoryEntity::Project).await;
    let kept: Vec<(String, i32)> = {
        let mut kept: Vec<_> = projects
            .iter()
            .map(|r| (r.object_id.clone(), r.version))
            .collect();
        kept.sort();
        kept
    };
    let mut expected = vec![(edited.clone(), 4), (untouched.clone(), 1)];
    expected.sort();
    assert_eq!(kept, expected, "each project keeps its latest record only");
    let tasks = app.history_rows(HistoryEntity::Task).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!((tasks[0].version, tasks[0].kind.as_str()), (2, "DELETE"));

    let archived = archive_lines(&archive);
    let history: Vec<_> = archived
        .iter()
        .filter(|l| l["table"] != "audit_event")
        .collect();
    assert_eq!(history.len(), 4);
    assert!(history.iter().all(|l| l["row"]["hash"].is_string()));

    // The remaining chains verify, through the API and the command, and keep growing.
    app.gql(UPDATE_PROJECT, json!({"p": edited, "n": "v5"}))
        .await
        .data();
    let verification = app
        .gql(
            "query($p: ID!) { verifyHistory(entity: PROJECT, id: $p) { ok checked brokenAt } }",
            json!({"p": edited}),
        )
        .await;
    assert_eq!(
        verification.data()["verifyHistory"],
        json!({"ok": true, "checked": 2, "brokenAt": null})
    );
    let verify = Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args(["verify", "--quiet", "--database-url", &app.url])
        .output()
        .expect("chronicle verify runs");
    assert_eq!(verify.status.code(), Some(0));
    let history = app
        .gql(
            "query($p: ID!) { history(entity: PROJECT, id: $p) { totalCount edges { node { version } } } }",
            json!({"p": edited}),
        )
        .await;
    assert_eq!(
        history.data()["history"],
        json!({"totalCount": 2, "edges": [{"node": {"version": 5}}, {"node": {"version": 4}}]}),
        "versions 1 to 3 pruned: two records left, and counted so"
    );
    std::fs::remove_file(&archive).ok();
}

async fn a_revert_that_needs_pruned_history_is_not_found_and_writes_nothing(app: TestApp) {
    let project = app.project("before").await;
    for (assignation, name) in [("rename-1", "one"), ("rename-2", "two")] {
        app.send(
            &As::user("alice").in_assignation(assignation),
            UPDATE_PROJECT,
            json!({"p": project, "n": name}),
        )
        .await
        .data();
    }
    let (code, stdout) = prune(&app, &["--older-than", "0s", "--history"]);
    assert_eq!(code, 0, "{stdout}");
    let records = app.history_rows(HistoryEntity::Project).await.len();
    assert_eq!(records, 1);

    for assignation in ["rename-1", "rename-2"] {
        let refused = app
            .gql(
                "mutation($id: String!) { revertAssignation(id: $id, force: true) { id } }",
                json!({"id": assignation}),
            )
            .await;
        assert_eq!(refused.code(), "NOT_FOUND", "{assignation}");
        let preview = app
            .gql(
                "query($id: String!) { previewRevert(id: $id) { conflicts { objectId } } }",
                json!({"id": assignation}),
            )
            .await;
        assert_eq!(preview.code(), "NOT_FOUND", "{assignation}");
    }
    assert_eq!(
        app.history_rows(HistoryEntity::Project).await.len(),
        records
    );
    let name = app
        .gql(
            "query($p: ID!) { project(id: $p) { name } }",
            json!({"p": project}),
        )
        .await;
    assert_eq!(name.data()["project"]["name"], "two");
}

async fn pruning_again_removes_only_what_is_new_and_anchors_move_forward(app: TestApp) {
    let project = app.project("v1").await;
    app.gql(UPDATE_PROJECT, json!({"p": project, "n": "v2"}))
        .await
        .data();
    let (code, stdout) = prune(&app, &["--older-than", "0s", "--history"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(reported(&stdout, "project_history"), 1);

    // Nothing new: nothing removed, no object counted.
    let (code, stdout) = prune(&app, &["--older-than", "0s", "--history"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(reported(&stdout, "project_history"), 0);
    assert!(
        stdout.contains("0 history records of 0 objects removed"),
        "{stdout}"
    );

    // Two more versions: a dry run counts the two past the anchor and moves nothing, then the
    // next prune moves the anchor from version 1 to 3.
    for name in ["v3", "v4"] {
        app.gql(UPDATE_PROJECT, json!({"p": project, "n": name}))
            .await
            .data();
    }
    let (code, stdout) = prune(&app, &["--older-than", "0s", "--history", "--dry-run"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(reported(&stdout, "project_history"), 2);
    let anchors = sea_orm_history::tables::prune_anchor::Entity::find_all(&app.db).await;
    assert_eq!(
        (anchors.len(), anchors[0].version),
        (1, 1),
        "a dry run leaves the anchor"
    );
    let (code, stdout) = prune(&app, &["--older-than", "0s", "--history"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(reported(&stdout, "project_history"), 2);
    let anchors = sea_orm_history::tables::prune_anchor::Entity::find_all(&app.db).await;
    assert_eq!(anchors.len(), 1);
    assert_eq!(
        (anchors[0].object_id.as_str(), anchors[0].version),
        (project.as_str(), 3)
    );
    let verification = app
        .gql(
            "query($p: ID!) { verifyHistory(entity: PROJECT, id: $p) { ok checked } }",
            json!({"p": project}),
        )
        .await;
    assert_eq!(
        verification.data()["verifyHistory"],
        json!({"ok": true, "checked": 1})
    );
    // Every run said what it did.
    let prunes = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq("prune"))
        .all(&app.db)
        .await
        .expect("events");
    let kinds: Vec<&str> = prunes.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.len(), 2, "older prune events were pruned in turn");
    assert!(
        kinds.contains(&"SYSTEM") && kinds.contains(&"FUNCTION"),
        "the last run's report, and its audited call: {kinds:?}"
    );
}

async fn a_dry_run_counts_what_prune_would_remove_and_removes_nothing(app: TestApp) {
    edited_and_deleted(&app).await;
    let events_before: BTreeSet<String> = audit_event::Entity::find_all(&app.db)
        .await
        .iter()
        .map(|e| e.id.to_string())
        .collect();
    let projects_before = sorted(app.history_rows(HistoryEntity::Project).await);
    let tasks_before = sorted(app.history_rows(HistoryEntity::Task).await);

    let (code, dry) = prune(&app, &["--older-than", "0s", "--history", "--dry-run"]);
    assert_eq!(code, 0, "{dry}");
    assert!(
        dry.starts_with("a dry run: would prune everything older than"),
        "{dry}"
    );
    assert_eq!(reported(&dry, "project_history"), 3);
    assert_eq!(reported(&dry, "task_history"), 1);
    assert_eq!(reported(&dry, "audit_event"), events_before.len() as u64);
    assert!(
        dry.contains("4 history records of 2 objects would be removed"),
        "{dry}"
    );
    assert!(dry.contains("nothing removed"), "{dry}");

    // Nothing is gone, no anchor is written: every record and every event is still there, and
    // the one event added is the command's own, saying it was a dry run.
    assert_eq!(
        sorted(app.history_rows(HistoryEntity::Project).await),
        projects_before
    );
    assert_eq!(
        sorted(app.history_rows(HistoryEntity::Task).await),
        tasks_before
    );
    assert_eq!(app.count("history_prune_anchor").await, 0);
    let events_after = audit_event::Entity::find_all(&app.db).await;
    let added: Vec<_> = events_after
        .iter()
        .filter(|e| !events_before.contains(&e.id.to_string()))
        .collect();
    assert_eq!(events_after.len(), events_before.len() + 1);
    assert_eq!(
        (added[0].kind.as_str(), added[0].action.as_str()),
        ("FUNCTION", "prune")
    );
    assert_eq!(
        added[0].input.as_ref().map(|i| &i["dryRun"]),
        Some(&json!(true))
    );
    assert_eq!(
        added[0].output.as_ref().map(|o| &o["dryRun"]),
        Some(&json!(true))
    );

    // A dry run cannot archive (there is nothing to archive): refused before it starts.
    let dir = archive_dir();
    let archive = dir.path().join("dry.ndjson.gz");
    let (code, _) = prune(
        &app,
        &[
            "--older-than",
            "0s",
            "--dry-run",
            "--archive",
            archive.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 2);
    assert!(!archive.exists());

    // The prune then removes what the dry run counted (and the dry run's own `FUNCTION` event,
    // written after it counted).
    let (code, stdout) = prune(&app, &["--older-than", "0s", "--history"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(reported(&stdout, "project_history"), 3);
    assert_eq!(reported(&stdout, "task_history"), 1);
    assert_eq!(
        reported(&stdout, "audit_event"),
        events_before.len() as u64 + 1
    );
    assert!(
        stdout.contains("4 history records of 2 objects removed"),
        "{stdout}"
    );
}

on_every_database!(
    a_dry_run_counts_what_prune_would_remove_and_removes_nothing,
    pruning_again_removes_only_what_is_new_and_anchors_move_forward,
    prune_removes_audit_events_older_than_the_age_and_archives_them_first,
    prune_with_history_keeps_the_latest_record_of_every_object_and_chains_still_verify,
    a_revert_that_needs_pruned_history_is_not_found_and_writes_nothing,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prunes_on_a_schedule_when_asked() {
    let scratch = archive_dir();
    let dir = scratch.path().to_path_buf();
    let archive_dir = dir.clone();
    let app = spawn_app_with(Backend::Sqlite, move |s| {
        s.retention.prune_older_than = Some(Duration::ZERO);
        s.retention.prune_every = Duration::from_secs(1);
        s.retention.prune_archive_dir = Some(archive_dir);
    })
    .await;
    app.project("short-lived events").await;

    // Within a few runs the MUTATION event is gone, archived, and the history is not.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = audit_event::Entity::find()
            .filter(audit_event::Column::Kind.eq("MUTATION"))
            .all(&app.db)
            .await
            .expect("events");
        // Files being written may not read yet: only complete ones count.
        let archived = std::fs::read_dir(&dir)
            .expect("archive dir")
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let mut text = String::new();
                flate2::read::MultiGzDecoder::new(std::fs::File::open(path).ok()?)
                    .read_to_string(&mut text)
                    .ok()?;
                Some(text)
            })
            .any(|text| {
                text.lines().any(|l| {
                    serde_json::from_str::<Value>(l).is_ok_and(|v| {
                        v["table"] == "audit_event" && v["row"]["action"] == "createProject"
                    })
                })
            });
        if left.is_empty() && archived {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "scheduled pruning never removed and archived the event"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let prunes = audit_event::Entity::find()
        .filter(audit_event::Column::Kind.eq("SYSTEM"))
        .all(&app.db)
        .await
        .expect("events");
    assert!(
        prunes.iter().all(|e| e
            .details
            .as_ref()
            .is_some_and(|d| d["trigger"] == "schedule")),
        "{prunes:?}"
    );
    assert_eq!(app.history_rows(HistoryEntity::Project).await.len(), 1);
}
