//! Scale-out: two `chronicle serve` processes on one database, mutations of the same assignations
//! sent to both at once. Steps stay unique and gapless per assignation, versions per object, and every
//! assignation counts exactly its records: the database, not a process, serializes them.

use std::collections::BTreeMap;

use entity::HistoryEntity;
use sea_orm_history::tables::assignation;
use serde_json::json;

use crate::helpers::{
    As, Backend, FindAll, ServerProcess, TestApp, assert_history_consistent, fresh_settings,
};
use crate::on_every_database;

const UPDATE: &str = "mutation($t: ID!, $title: String!, $p: Int!) { updateTask(id: $t, input: {title: $title, priority: $p}) { id } }";

async fn two_replicas_keep_steps_and_versions_unique_and_gapless(backend: Backend) {
    let (settings, _database) = fresh_settings(backend).await;
    let url = settings.database.url;
    let first = ServerProcess::start_on(url.clone(), &[]);
    let second = ServerProcess::start_on(url.clone(), &[]);
    let a = TestApp::attach(first.address.clone(), url.clone(), backend).await;
    let b = TestApp::attach(second.address.clone(), url, backend).await;

    let project = a.project("replicated").await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        tasks.push(b.task(&project, &format!("task {i}")).await);
    }
    // 64 updates over 4 assignations and 4 tasks, half through each server, all at once.
    let assignations = ["shared-0", "shared-1", "shared-2", "shared-3"];
    let mut requests = Vec::new();
    for i in 0..64usize {
        let app = if i % 2 == 0 { &a } else { &b };
        let task = tasks[(i * 7) % tasks.len()].clone();
        let assignation = assignations[i % assignations.len()];
        requests.push(async move {
            app.send(
                &As::user("alice").in_assignation(assignation),
                UPDATE,
                json!({"t": task, "title": format!("edit {i}"), "p": i % 6}),
            )
            .await
        });
    }
    for reply in futures_util::future::join_all(requests).await {
        reply.data();
    }

    let rows = a.history_rows(HistoryEntity::Task).await;
    let mut steps: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for row in &rows {
        steps
            .entry(row.assignation_id.clone())
            .or_default()
            .push(row.step);
    }
    for id in assignations {
        let mut found = steps.remove(id).unwrap_or_default();
        found.sort_unstable();
        assert_eq!(found, (0..16).collect::<Vec<_>>(), "steps of {id}");
    }
    for row in assignation::Entity::find_all(&a.db).await {
        if assignations.contains(&row.id.as_str()) {
            assert_eq!(row.change_count, 16, "{} counts its records", row.id);
        }
    }
    // Versions per object 1..n without gaps, steps unique, live rows = latest snapshots.
    assert_history_consistent(&a).await;
    assert_eq!(rows.len(), 4 + 64);
}

on_every_database!(servers; two_replicas_keep_steps_and_versions_unique_and_gapless);
