//! The change context: who (user), through what (app) and as part of which assignation a change is
//! made. The GraphQL layer opens a [`ChangeContext::scope`] around each request; the history hooks read
//! it. Code outside GraphQL (scripts, jobs) opens its own scope the same way.

use std::future::Future;

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
}

impl ChangeContext {
    /// A context for `assignation_id` without user, app or reason.
    pub fn new(assignation_id: impl Into<String>) -> Self {
        Self {
            user: None,
            app: None,
            assignation_id: assignation_id.into(),
            reason: None,
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
