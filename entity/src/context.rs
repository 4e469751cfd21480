//! The change context: who (user), through what (app) and as part of which assignation a change is
//! made. The GraphQL layer opens a [`ChangeContext::scope`] around each request; the history hooks read
//! it. Code outside GraphQL (scripts, jobs) opens its own scope the same way.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::history::HistoryRow;

tokio::task_local! {
    static CURRENT: ChangeContext;
}

/// Who makes a change, through which app, in which assignation, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeContext {
    /// The acting user, if known.
    pub user: Option<String>,
    /// The app (client) the user acts through, if known.
    pub app: Option<String>,
    /// The correlation id grouping this change with others.
    pub assignation_id: String,
    /// An optional free-text reason kept on each history record.
    pub reason: Option<String>,
    /// Counts the history records written under this context, when someone wants to know (metrics).
    pub tally: Option<Tally>,
    /// No other transaction can write to this assignation at the same time (its id was generated for
    /// this request and is not known outside it yet), so a change need not lock it up front.
    pub exclusive: bool,
}

/// History records written under a context, per entity (`TASK`, …), and the project each written
/// object belongs to; shared by the clones of one context.
#[derive(Clone, Debug, Default)]
pub struct Tally(Arc<Mutex<Written>>);

#[derive(Debug, Default)]
struct Written {
    counts: BTreeMap<&'static str, u64>,
    scopes: HashMap<(&'static str, String), Option<String>>,
    first_created: HashMap<&'static str, String>,
}

impl Tally {
    /// Adds the records `rows` of `entity`.
    pub fn add(&self, entity: &'static str, rows: &[HistoryRow]) {
        let mut written = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *written.counts.entry(entity).or_default() += rows.len() as u64;
        for row in rows {
            written
                .scopes
                .insert((entity, row.object_id.clone()), row.scope_id.clone());
            if row.kind == "CREATE" {
                written
                    .first_created
                    .entry(entity)
                    .or_insert_with(|| row.object_id.clone());
            }
        }
    }

    /// The first object of `entity` created under this context (what a `create…` mutation made).
    pub fn first_created(&self, entity: &'static str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first_created
            .get(entity)
            .cloned()
    }

    /// The counts so far, resetting them.
    pub fn take(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner).counts)
    }

    /// The project of `object_id`, if a record of it was written under this context.
    pub fn scope_of(&self, entity: &'static str, object_id: &str) -> Option<Option<String>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .scopes
            .get(&(entity, object_id.to_owned()))
            .cloned()
    }
}

/// Two tallies are equal when they are the same counter.
impl PartialEq for Tally {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Tally {}

impl ChangeContext {
    /// A context for `assignation_id` without user, app or reason.
    pub fn new(assignation_id: impl Into<String>) -> Self {
        Self {
            user: None,
            app: None,
            assignation_id: assignation_id.into(),
            reason: None,
            tally: None,
            exclusive: false,
        }
    }

    /// Runs `fut` with this context visible to every history hook it reaches.
    ///
    /// Task-locals are not inherited by spawned tasks: a change made from a `tokio::spawn`ed task needs
    /// its own scope.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }

    /// The context of the running task, if a scope is open.
    pub fn current() -> Option<ChangeContext> {
        CURRENT.try_with(Clone::clone).ok()
    }
}

/// Runs `fut` inside the current context with `reason` set (a mutation's `reason` argument). Outside any
/// scope, `fut` runs without a context and a historized change inside it fails.
pub async fn with_reason<F: Future>(reason: Option<String>, fut: F) -> F::Output {
    match ChangeContext::current() {
        Some(ctx) => ChangeContext { reason, ..ctx }.scope(fut).await,
        None => fut.await,
    }
}
