//! The ceiling of the HTTP figures: what the database allows for a historized `createTask` or
//! `updateTask` when the work a request does in the database is done directly, with no HTTP and no
//! GraphQL in between: the service call (its transaction, its lock, the row, the history record) and
//! the field's `MUTATION` audit event through the server's batching writer, at the same concurrency
//! and on a pool of the server's size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle::audit::writer::EventWriter;
use chronicle::audit::{AuditKind, NewEvent, row_of};
use chronicle::config::Limits;
use chronicle::service::task::{NewTask, TaskChanges, create_task, update_task};
use entity::HistoryEntity;
use sea_orm::DatabaseConnection;
use serde_json::json;
use uuid::Uuid;

use crate::http::LoadResult;
use crate::suite::{context, mix};

/// One request's database work: the change in its own assignation, then its audit event.
async fn once(
    db: &DatabaseConnection,
    writer: &EventWriter,
    mutation: &'static str,
    project: Uuid,
    ids: &[Uuid],
    worker: usize,
    i: u64,
) -> Result<(), String> {
    let limits = Limits::default();
    let change = context(None)?;
    let assignation = change.assignation.to_string();
    let task = match mutation {
        "createTask" => {
            let input = NewTask {
                project_id: project,
                title: format!("ceiling {worker}-{i}"),
                description: None,
                status: None,
                priority: Some(i32::try_from(i % 5).unwrap_or(0)),
                due_date: None,
            };
            change.scope(create_task(db, &limits, input)).await
        }
        _ => {
            let pick = ids[mix((worker as u64) << 40 | i) as usize % ids.len()];
            let changes = TaskChanges {
                title: Some(format!("ceiling {worker}-{i}")),
                priority: Some(i32::try_from(i % 6).unwrap_or(0)),
                ..TaskChanges::default()
            };
            change.scope(update_task(db, &limits, pick, changes)).await
        }
    }
    .map_err(|e| format!("{e:?}"))?;
    let mut event = NewEvent::new(AuditKind::Mutation, mutation)
        .object(HistoryEntity::Task, task.id.to_string())
        .user("bench");
    event.assignation_id = Some(assignation);
    event.scope_id = Some(Some(project.to_string()));
    event.input = Some(json!({"title": task.title, "priority": task.priority}));
    event.output = Some(json!({"id": task.id.to_string()}));
    let row = row_of(db, event).await.map_err(|e| e.to_string())?;
    writer.write(row).await.map_err(|e| e.to_string())
}

/// Runs `concurrency` workers doing `mutation`'s database work for `warmup` (not counted), then
/// `duration`.
pub async fn load(
    db: &DatabaseConnection,
    mutation: &'static str,
    project: Uuid,
    ids: Arc<Vec<Uuid>>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<LoadResult, String> {
    let writer = EventWriter::spawn(db.clone());
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (db, writer, ids) = (db.clone(), writer.clone(), ids.clone());
        workers.push(tokio::spawn(async move {
            let (mut ok, mut all_ok, mut errors, mut latencies) = (0u64, 0u64, 0u64, Vec::new());
            let mut i = 0;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let outcome = once(&db, &writer, mutation, project, &ids, worker, i).await;
                i += 1;
                let done = Instant::now();
                let counted = sent >= start && done <= end;
                match outcome {
                    Ok(()) => {
                        all_ok += 1;
                        if counted {
                            ok += 1;
                            latencies.push(done - sent);
                        }
                    }
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("ceiling {mutation}: {e}");
                        }
                        errors += u64::from(counted);
                    }
                }
            }
            (ok, all_ok, errors, latencies)
        }));
    }
    let mut result = LoadResult {
        ok: 0,
        all_ok: 0,
        errors: 0,
        elapsed: duration,
        latencies: Vec::new(),
    };
    for worker in workers {
        let (ok, all_ok, errors, latencies) = worker.await.map_err(|e| e.to_string())?;
        result.ok += ok;
        result.all_ok += all_ok;
        result.errors += errors;
        result.latencies.extend(latencies);
    }
    result.latencies.sort_unstable();
    Ok(result)
}
