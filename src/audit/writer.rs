//! The batching event writer. Every mutation field writes one `MUTATION` event; written one by one,
//! each would be its own INSERT and commit. Here requests hand their event to one writer task and wait
//! for it: the task takes whatever has queued up (up to a batch), writes it with one multi-row INSERT
//! in one commit, and answers each waiter. A request still answers only once its event is stored, so
//! nothing is lost on a crash that the client did not see; under load, commits are shared.

use entity::audit_event;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel};
use tokio::sync::{mpsc, oneshot};

/// Events per INSERT at most.
const MAX_BATCH: usize = 256;

type Done = oneshot::Sender<Result<(), String>>;

/// A handle to the writer task; cheap to clone. The task ends when every handle is dropped.
#[derive(Clone)]
pub struct EventWriter {
    queue: mpsc::Sender<(audit_event::Model, Done)>,
}

impl EventWriter {
    /// Starts the writer task on `db`.
    pub fn spawn(db: DatabaseConnection) -> Self {
        let (queue, mut jobs) = mpsc::channel::<(audit_event::Model, Done)>(4 * MAX_BATCH);
        tokio::spawn(async move {
            while let Some(first) = jobs.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let (rows, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                let together = insert(&db, rows.clone()).await;
                if together.is_ok() || rows.len() == 1 {
                    for waiter in waiters {
                        let _ = waiter.send(together.clone());
                    }
                    continue;
                }
                // One bad row must not cost the others their events: retry them one by one.
                for (row, waiter) in rows.into_iter().zip(waiters) {
                    let _ = waiter.send(insert(&db, vec![row]).await);
                }
            }
        });
        Self { queue }
    }

    /// Stores `row`, returning once it is committed.
    ///
    /// # Errors
    /// The insert failed, or the writer is gone (the server is shutting down).
    pub async fn write(&self, row: audit_event::Model) -> Result<(), DbErr> {
        let (done, stored) = oneshot::channel();
        self.queue
            .send((row, done))
            .await
            .map_err(|_| DbErr::Custom("the audit writer has stopped".into()))?;
        stored
            .await
            .map_err(|_| DbErr::Custom("the audit writer has stopped".into()))?
            .map_err(DbErr::Custom)
    }
}

async fn insert(db: &DatabaseConnection, rows: Vec<audit_event::Model>) -> Result<(), String> {
    audit_event::Entity::insert_many(
        rows.into_iter()
            .map(|row| row.into_active_model().reset_all()),
    )
    .exec_without_returning(db)
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}
