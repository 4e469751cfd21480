//! Koherent's read surface: an object's history as Koherent (Arkitekt's history library for
//! Strawberry) names it, so that a client written against Koherent's `provenance` field runs
//! unchanged. Each [`ProvenanceEntry`] is one history record with its user, client, task (the
//! assignation, with its parent) and effective changes; the type names carry a `Provenance` prefix
//! where Koherent's (`User`, `Client`, `Task`) would clash with an application's own.
//!
//! Add a `provenance` field to each historized type that calls [`provenance`].

use std::collections::HashMap;

use async_graphql::{ID, SimpleObject};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use super::pagination::page_size;
use super::scalars::Timestamp;
use super::types::{ApiEntity, Kind, info_of};
use super::{database, settings};
use crate::query;
use crate::record::diff;
use crate::tables::assignation;

/// The user who made a change (Koherent's `User`).
#[derive(SimpleObject, Clone, Debug)]
pub struct ProvenanceUser {
    /// The user's id (the token's `sub`, or `X-User`).
    pub sub: String,
    /// The name to show (the id: this server keeps no profiles).
    pub preferred_username: String,
}

/// The app a change was made through (Koherent's `Client`).
#[derive(SimpleObject, Clone, Debug)]
pub struct ProvenanceClient {
    /// The OAuth client id (the token's `azp`/`client_id`, or `X-App`).
    pub client_id: String,
    /// The name to show (the id).
    pub name: String,
}

/// The task (assignation) a change was made in (Koherent's `Task`).
#[derive(SimpleObject, Clone, Debug)]
pub struct ProvenanceTask {
    /// The assignation id (a provenance token's `tsk`).
    pub task_id: String,
    /// The parent assignation (`ptk`), none at a root.
    pub parent_id: Option<String>,
    /// The human the task runs for (`rcb`).
    pub assigner_sub: Option<String>,
    /// The app that started it.
    pub app: Option<String>,
    /// What was run (not recorded here: null).
    pub action: Option<String>,
    /// The hash of its arguments (`ahs`; the arguments themselves stay with the caller).
    pub args: Option<String>,
    /// When it started.
    pub created_at: Timestamp,
}

/// One field's change, as text (Koherent's `ModelChange`).
#[derive(SimpleObject, Clone, Debug)]
pub struct ModelChange {
    /// The field, as the snapshot names it.
    pub field: String,
    /// The value before, as text (strings as they are, other values as JSON; null for none).
    pub old_value: Option<String>,
    /// The value after, likewise.
    pub new_value: Option<String>,
}

/// One change of an object (Koherent's `ProvenanceEntry`).
#[derive(SimpleObject, Clone, Debug)]
pub struct ProvenanceEntry {
    /// The history record's id.
    pub id: ID,
    /// What happened.
    pub kind: Kind,
    /// When.
    pub date: Timestamp,
    /// Who.
    pub user: Option<ProvenanceUser>,
    /// Through which app.
    pub client: Option<ProvenanceClient>,
    /// In which task.
    pub task: Option<ProvenanceTask>,
    /// The fields it changed.
    pub effective_changes: Vec<ModelChange>,
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// The `first` (default: the largest page) newest changes of object `object_id` of `entity`, as
/// Koherent's provenance entries.
///
/// # Errors
/// `LIMIT_EXCEEDED` for `first` above the largest page; database errors.
pub async fn provenance<E: ApiEntity>(
    ctx: &async_graphql::Context<'_>,
    entity: E,
    object_id: &str,
    first: Option<i32>,
) -> async_graphql::Result<Vec<ProvenanceEntry>> {
    use async_graphql::ErrorExtensions;
    let settings = settings(ctx);
    let first = match first {
        None => u64::from(settings.max_page_size),
        some => page_size(&settings, some)?,
    };
    let db = database(ctx)?;
    let info = info_of(entity)?;
    let page = query::object_history(db, info, object_id, first, None)
        .await
        .map_err(|e| e.extend())?;
    let rows = page.items;
    let previous = query::previous_snapshots(db, info, &rows)
        .await
        .map_err(|e| e.extend())?;
    let ids: Vec<String> = rows.iter().map(|r| r.assignation_id.clone()).collect();
    let tasks: HashMap<String, assignation::Model> = assignation::Entity::find()
        .filter(assignation::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let before = previous.get(&(row.object_id.clone(), row.version));
            let changes = match row.kind {
                crate::HistoryKind::Update => diff(row.kind, before, &row.snapshot),
                kind => diff(kind, None, &row.snapshot),
            };
            let task = tasks.get(&row.assignation_id).map(|a| ProvenanceTask {
                task_id: a.id.clone(),
                parent_id: a.parent_id.clone(),
                assigner_sub: a.on_behalf_of.clone(),
                app: a.app.clone(),
                action: None,
                args: a.args_hash.clone(),
                created_at: Timestamp(a.started_at),
            });
            ProvenanceEntry {
                id: ID(row.id.to_string()),
                kind: row.kind.into(),
                date: Timestamp(row.at),
                user: row.actor.clone().map(|sub| ProvenanceUser {
                    preferred_username: sub.clone(),
                    sub,
                }),
                client: row.app.clone().map(|id| ProvenanceClient {
                    name: id.clone(),
                    client_id: id,
                }),
                task,
                effective_changes: changes
                    .into_iter()
                    .map(|c| ModelChange {
                        field: c.field,
                        old_value: text(c.old),
                        new_value: text(c.new),
                    })
                    .collect(),
            }
        })
        .collect())
}
