//! A server killed (SIGKILL) in the middle of writes: every change it was making is there whole or not
//! at all, every change a client saw succeed is there with its `MUTATION` event, and a server started
//! again on the same database sequences the history into the verifiable log (the dead one sequenced
//! none), passes `chronicle verify`, and takes writes as before.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use entity::{HistoryEntity, audit_event};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use sea_orm_history::EntitySet;
use serde_json::{Value, json};

use crate::helpers::{
    As, Backend, ServerProcess, TestApp, assert_history_consistent, chronicle_verify,
    fresh_settings,
};

const CREATE: &str = "mutation($p: ID!, $title: String!) { createTask(input: {projectId: $p, title: $title}) { id } }";
const UPDATE: &str =
    "mutation($t: ID!, $title: String!) { updateTask(id: $t, input: {title: $title}) { id } }";

/// Writers sending at once, and how many answered changes the server is killed after.
const WRITERS: usize = 8;
const ANSWERED_BEFORE_KILL: usize = 60;

/// A change the server answered: its assignation, its task and the title it set.
struct Answered {
    assignation: String,
    task: String,
    title: String,
}

/// Creates and renames tasks of `project` until the server stops answering; each change in an
/// assignation of its own. Returns the changes answered with data.
async fn write_until_killed(
    app: Arc<TestApp>,
    project: String,
    writer: usize,
    answered: Arc<AtomicUsize>,
) -> Vec<Answered> {
    let client = reqwest::Client::new();
    let mut done = Vec::new();
    for n in 0.. {
        let create = format!("crash-{writer}-{n}");
        let title = format!("task {writer}-{n}");
        let Some(reply) = send(
            &client,
            &app.address,
            &create,
            CREATE,
            json!({"p": project, "title": title}),
        )
        .await
        else {
            break;
        };
        let task = reply["createTask"]["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        done.push(Answered {
            assignation: create,
            task: task.clone(),
            title: title.clone(),
        });
        answered.fetch_add(1, Ordering::Relaxed);
        let update = format!("crash-{writer}-{n}-renamed");
        let renamed = format!("{title} renamed");
        let Some(_) = send(
            &client,
            &app.address,
            &update,
            UPDATE,
            json!({"t": task, "title": renamed}),
        )
        .await
        else {
            break;
        };
        done.push(Answered {
            assignation: update,
            task,
            title: renamed,
        });
        answered.fetch_add(1, Ordering::Relaxed);
    }
    done
}

/// The reply's `data` in `assignation`; `None` once the server is gone (no reply, or not a whole one).
async fn send(
    client: &reqwest::Client,
    address: &str,
    assignation: &str,
    query: &str,
    variables: Value,
) -> Option<Value> {
    let response = client
        .post(format!("{address}/graphql"))
        .header("X-User", "alice")
        .header("X-Assignation-Id", assignation)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    Some(body["data"].clone())
}

crate::on_every_database!(
    backend;
    a_server_killed_mid_write_leaves_whole_changes_that_a_restarted_server_verifies,
);

async fn a_server_killed_mid_write_leaves_whole_changes_that_a_restarted_server_verifies(
    backend: Backend,
) {
    let (settings, _database) = fresh_settings(backend).await;
    let url = settings.database.url;
    // The first server sequences nothing, so that what the log holds is the restarted one's work.
    let mut server = ServerProcess::start_on(url.clone(), &["--sequence-every-ms", "0"]);
    let app = Arc::new(TestApp::attach(server.address.clone(), url.clone(), backend).await);
    let project = app.project("crash").await;

    let answered = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            tokio::spawn(write_until_killed(
                app.clone(),
                project.clone(),
                w,
                answered.clone(),
            ))
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::Relaxed) < ANSWERED_BEFORE_KILL {
        assert!(
            std::time::Instant::now() < deadline && !writers.iter().all(|w| w.is_finished()),
            "the writers stopped before {ANSWERED_BEFORE_KILL} answers"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    let mut seen = Vec::new();
    for writer in writers {
        seen.extend(writer.await.expect("a writer"));
    }
    assert!(seen.len() >= ANSWERED_BEFORE_KILL);

    // Started again on the same database.
    let server = ServerProcess::start_on(url.clone(), &["--sequence-every-ms", "50"]);
    let app = TestApp::attach(server.address.clone(), url.clone(), backend).await;

    // Whole or absent: live rows equal their latest records, versions gapless, steps unique.
    assert_history_consistent(&app).await;
    // Every change a client saw succeed is there, and so is its event.
    let tasks: std::collections::BTreeMap<String, String> = entity::task::Entity::find()
        .all(&app.db)
        .await
        .expect("tasks")
        .into_iter()
        .map(|t| (t.id.to_string(), t.title))
        .collect();
    let events: BTreeSet<String> = audit_event::Entity::find()
        .filter(audit_event::Column::Kind.eq("MUTATION"))
        .filter(audit_event::Column::Status.eq("SUCCESS"))
        .all(&app.db)
        .await
        .expect("events")
        .into_iter()
        .filter_map(|e| e.assignation_id)
        .collect();
    // (A change committed but not answered may lack its event: the server died between the two
    // commits. Its records still name its user and assignation.)
    let mut latest_title = std::collections::BTreeMap::new();
    for change in &seen {
        assert!(
            events.contains(&change.assignation),
            "{} was answered but has no MUTATION event",
            change.assignation
        );
        latest_title.insert(change.task.clone(), change.title.clone());
    }
    for (task, title) in &latest_title {
        let stored = tasks
            .get(task)
            .unwrap_or_else(|| panic!("task {task} is gone"));
        // Its rename may have committed unanswered: the title is the answered one or that rename.
        assert!(
            stored == title || *stored == format!("{title} renamed"),
            "task {task} holds {stored:?}, answered {title:?}"
        );
    }

    // The restarted server sequences every record, the dead one's last included.
    let mut records = 0;
    for entity in HistoryEntity::ALL {
        records += app
            .count(&format!("{}_history", entity.name().to_lowercase()))
            .await;
    }
    let mut logged = 0;
    for _ in 0..300 {
        logged = app.gql("{ logSize }", json!({})).await.data()["logSize"]
            .as_i64()
            .expect("logSize");
        if logged >= records {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(logged, records, "the log holds every record once");

    let (status, report) = chronicle_verify(&url);
    assert_eq!(status, 0, "chronicle verify: {report}");

    // And it takes writes as before.
    let after = app
        .send(
            &As::user("alice").in_assignation("after-the-crash"),
            CREATE,
            json!({"p": project, "title": "after"}),
        )
        .await;
    after.data();
    assert_history_consistent(&app).await;
}
