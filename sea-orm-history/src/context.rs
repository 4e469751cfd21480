//! The change context: who (user) makes a change, through what (app), as part of which assignation,
//! and why. Open a scope with [`ChangeContext::scope`] around the code that changes historized rows
//! (a request, a script, a job); the hooks read it. A change outside any scope is refused.
//!
//! [`AssignationId`] is a parsed assignation id; [`Lineage`] places an assignation in a tree of them
//! (its parent, its root, the human it runs for); [`Tally`] observes the records written under a
//! context (for metrics, or to learn what a call created); [`Trace`] names the W3C trace and span a
//! change was made in, kept on its record.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::entity::EntityInfo;
use crate::error::HistoryError;
use crate::record::{HistoryKind, HistoryRow};
use crate::registry::Registry;

tokio::task_local! {
    static CURRENT: ChangeContext;
}

/// The longest assignation id.
pub const MAX_ASSIGNATION_ID_CHARS: usize = 128;

/// An assignation id: 1 to 128 characters, each a letter, a digit, or one of `.` `_` `:` `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssignationId(String);

impl AssignationId {
    /// Parses an id.
    ///
    /// # Errors
    /// [`HistoryError::BadAssignationId`] for anything else.
    pub fn parse(id: impl Into<String>) -> Result<Self, HistoryError> {
        let id = id.into();
        if Self::is_valid(&id) {
            Ok(Self(id))
        } else {
            Err(HistoryError::BadAssignationId)
        }
    }

    /// A fresh id (a UUIDv7: time-ordered).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// Whether `id` is a valid assignation id.
    pub fn is_valid(id: &str) -> bool {
        (1..=MAX_ASSIGNATION_ID_CHARS).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AssignationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for AssignationId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Where an assignation stands in a tree of assignations (a task that started sub-tasks, perhaps in
/// other services), and for whom the tree runs. Recorded on the assignation by its first change; a
/// later change that names another parent is refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lineage {
    /// The assignation that started this one (none at a root).
    pub parent: Option<AssignationId>,
    /// The root of the tree (the parent's root; none at a root, which is its own).
    pub root: Option<AssignationId>,
    /// The human on whose behalf the tree runs (none: the context's user).
    pub on_behalf_of: Option<String>,
    /// A hash of the arguments that started the assignation.
    pub args_hash: Option<String>,
    /// How the arguments were canonicalized before hashing.
    pub args_hash_alg: Option<String>,
}

/// The W3C trace context a change is made in: the trace's id and the id of the span that makes it
/// (as a `traceparent` header carries them), kept on every record the change writes so the change
/// can be followed from a client's trace into the database.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Trace {
    trace_id: String,
    span_id: String,
}

impl Trace {
    /// A trace context from its ids: 32 and 16 lowercase hex digits, neither all zeros (as W3C
    /// Trace Context requires); `None` for anything else.
    pub fn new(trace_id: &str, span_id: &str) -> Option<Self> {
        (hex_id(trace_id, 32) && hex_id(span_id, 16)).then(|| Self {
            trace_id: trace_id.to_owned(),
            span_id: span_id.to_owned(),
        })
    }

    /// A trace id as a user may type it (surrounding spaces and uppercase hex allowed), as stored:
    /// 32 lowercase hex digits, not all zeros; `None` for anything else.
    pub fn parse_trace_id(text: &str) -> Option<String> {
        let id = text.trim().to_ascii_lowercase();
        hex_id(&id, 32).then_some(id)
    }

    /// The trace's id: 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The span's id: 16 lowercase hex digits.
    pub fn span_id(&self) -> &str {
        &self.span_id
    }
}

/// Whether `id` is `len` lowercase hex digits, not all zeros (a W3C trace or span id).
fn hex_id(id: &str, len: usize) -> bool {
    id.len() == len
        && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && id.bytes().any(|b| b != b'0')
}

/// Who makes a change, through which app, in which assignation, and why.
#[derive(Clone, Debug)]
pub struct ChangeContext {
    pub(crate) registry: &'static Registry,
    /// The acting user, if known.
    pub user: Option<String>,
    /// The app (client) the user acts through, if known.
    pub app: Option<String>,
    /// The assignation grouping this change with others.
    pub assignation: AssignationId,
    /// A free-text reason kept on each history record.
    pub reason: Option<String>,
    /// No other transaction can write to this assignation at the same time (its id was generated
    /// for this scope and is not known outside it yet), so a change need not lock it up front.
    pub(crate) exclusive: bool,
    /// Observes the records written under this context.
    pub tally: Option<Tally>,
    /// The assignation's place in a tree.
    pub lineage: Lineage,
    /// The trace the change is made in, if any.
    pub trace: Option<Trace>,
    /// Rows read by `before_delete`, recorded by `after_delete` once the database deleted them.
    pub(crate) deleting: Arc<Mutex<HashMap<(String, String), serde_json::Value>>>,
    /// Rows whose record [`crate::write`] wrote with the row, for which `after_save` writes none.
    pub(crate) with_row: Arc<Mutex<HashSet<(String, String)>>>,
    /// Rows [`crate::write::delete`] hands to `before_delete`, read and locked by its caller, which
    /// the hook takes instead of reading them again.
    pub(crate) given: Arc<Mutex<HashMap<(String, String), serde_json::Value>>>,
}

impl ChangeContext {
    /// A context for `assignation` of the entities of `registry`, without user, app or reason.
    pub fn new(registry: &'static Registry, assignation: AssignationId) -> Self {
        Self {
            registry,
            user: None,
            app: None,
            assignation,
            reason: None,
            exclusive: false,
            tally: None,
            lineage: Lineage::default(),
            trace: None,
            deleting: Arc::default(),
            with_row: Arc::default(),
            given: Arc::default(),
        }
    }

    /// A context in a fresh assignation, which no other code can join while this one runs.
    pub fn fresh(registry: &'static Registry) -> Self {
        Self::generated(registry, AssignationId::generate())
    }

    /// A context for `assignation`, an id its caller generated for this scope alone (say, for a
    /// request that named none) and gives nobody else before the scope ends. Its changes skip the
    /// lock that queues concurrent writers of one assignation; two scopes sharing such an id would
    /// race for version numbers and one would fail.
    pub fn generated(registry: &'static Registry, assignation: AssignationId) -> Self {
        Self {
            exclusive: true,
            ..Self::new(registry, assignation)
        }
    }

    /// Sets the acting user.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the app the user acts through.
    #[must_use]
    pub fn app(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into());
        self
    }

    /// Sets the reason kept on every record.
    #[must_use]
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Places the assignation in a tree.
    #[must_use]
    pub fn lineage(mut self, lineage: Lineage) -> Self {
        self.lineage = lineage;
        self
    }

    /// Sets the trace the change is made in.
    #[must_use]
    pub fn trace(mut self, trace: Trace) -> Self {
        self.trace = Some(trace);
        self
    }

    /// The root the assignation records: the lineage's, else its parent, else itself.
    pub fn root_id(&self) -> &str {
        self.lineage
            .root
            .as_ref()
            .or(self.lineage.parent.as_ref())
            .unwrap_or(&self.assignation)
            .as_str()
    }

    /// The human the assignation records it runs for: the lineage's, else the user.
    pub fn on_behalf_of(&self) -> Option<&str> {
        self.lineage
            .on_behalf_of
            .as_deref()
            .or(self.user.as_deref())
    }

    /// Keeps the rows `before_delete` read, until `after_delete` records them.
    pub(crate) fn deleting(&self, info: &EntityInfo, rows: Vec<serde_json::Value>) {
        let mut deleting = self.deleting.lock().unwrap_or_else(PoisonError::into_inner);
        for row in rows {
            deleting.insert((info.name.clone(), info.object_id(&row)), row);
        }
    }

    /// The row of `object_id` that `before_delete` read, taken.
    pub(crate) fn deleted(&self, info: &EntityInfo, object_id: &str) -> Option<serde_json::Value> {
        self.deleting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(info.name.clone(), object_id.to_owned()))
    }

    /// Hands `before_delete` the row `object_id` of `info` as its caller read (and locked) it:
    /// `Some` gives it, `None` takes back what the hook did not take.
    pub(crate) fn give(&self, info: &EntityInfo, object_id: &str, row: Option<serde_json::Value>) {
        let mut given = self.given.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (info.name.clone(), object_id.to_owned());
        match row {
            Some(row) => given.insert(key, row),
            None => given.remove(&key),
        };
    }

    /// The row of `object_id` handed to `before_delete` (see [`give`](Self::give)), taken.
    pub(crate) fn take_given(
        &self,
        info: &EntityInfo,
        object_id: &str,
    ) -> Option<serde_json::Value> {
        self.given
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(info.name.clone(), object_id.to_owned()))
    }

    /// Marks (`true`) or unmarks the row `object_id` of `info` as recorded with its write, while its
    /// `after_save` hook runs.
    pub(crate) fn written_with_row(&self, info: &EntityInfo, object_id: &str, marked: bool) {
        let mut with_row = self.with_row.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (info.name.clone(), object_id.to_owned());
        if marked {
            with_row.insert(key);
        } else {
            with_row.remove(&key);
        }
    }

    /// Whether the row `object_id` of `info` was recorded with its write (see
    /// [`written_with_row`](Self::written_with_row)); the mark is taken, so that it excuses one
    /// `after_save` only.
    pub(crate) fn take_written_with_row(&self, info: &EntityInfo, object_id: &str) -> bool {
        let mut with_row = self.with_row.lock().unwrap_or_else(PoisonError::into_inner);
        with_row.remove(&(info.name.clone(), object_id.to_owned()))
    }

    /// The registry of historized entities the hooks consult.
    pub fn registry(&self) -> &'static Registry {
        self.registry
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

    /// The context of the running task.
    ///
    /// # Errors
    /// [`HistoryError::NoContext`] outside any scope.
    pub fn require() -> Result<ChangeContext, HistoryError> {
        Self::current().ok_or(HistoryError::NoContext)
    }
}

/// Runs `fut` inside the current context with `reason` set (a mutation's `reason` argument). Outside
/// any scope, `fut` runs without a context, and a historized change inside it fails.
pub async fn with_reason<F: Future>(reason: Option<String>, fut: F) -> F::Output {
    match ChangeContext::current() {
        Some(ctx) => ChangeContext { reason, ..ctx }.scope(fut).await,
        None => fut.await,
    }
}

/// The history records written under a context: counts per entity, the scope of each object written,
/// and the first object created per entity. Clones share one tally.
#[derive(Clone, Debug, Default)]
pub struct Tally(Arc<Mutex<Written>>);

#[derive(Debug, Default)]
struct Written {
    counts: BTreeMap<String, u64>,
    scopes: HashMap<(String, String), Option<String>>,
    first_created: HashMap<String, String>,
}

impl Tally {
    /// Adds the records `rows` of `entity`.
    pub fn add(&self, entity: &str, rows: &[HistoryRow]) {
        let mut written = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *written.counts.entry(entity.to_owned()).or_default() += rows.len() as u64;
        for row in rows {
            written.scopes.insert(
                (entity.to_owned(), row.object_id.clone()),
                row.scope_id.clone(),
            );
            if row.kind == HistoryKind::Create {
                written
                    .first_created
                    .entry(entity.to_owned())
                    .or_insert_with(|| row.object_id.clone());
            }
        }
    }

    /// Adds one record of `entity`: of `object_id`, of `kind`, in `scope` (`None` when not known).
    pub fn add_one(
        &self,
        entity: &str,
        object_id: &str,
        kind: HistoryKind,
        scope: Option<Option<String>>,
    ) {
        let mut written = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *written.counts.entry(entity.to_owned()).or_default() += 1;
        if let Some(scope) = scope {
            written
                .scopes
                .insert((entity.to_owned(), object_id.to_owned()), scope);
        }
        if kind == HistoryKind::Create {
            written
                .first_created
                .entry(entity.to_owned())
                .or_insert_with(|| object_id.to_owned());
        }
    }

    /// The first object of `entity` created under this context.
    pub fn first_created(&self, entity: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first_created
            .get(entity)
            .cloned()
    }

    /// The counts per entity so far, resetting them.
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner).counts)
    }

    /// The scope of `object_id`, if a record of it was written under this context.
    pub fn scope_of(&self, entity: &str, object_id: &str) -> Option<Option<String>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .scopes
            .get(&(entity.to_owned(), object_id.to_owned()))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assignation_id_is_letters_digits_and_four_marks() {
        for ok in ["a", "launch-1", "A.b_c:d-e", &"x".repeat(128)] {
            assert!(AssignationId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "has space", "é", "a/b", &"x".repeat(129), "a\0"] {
            assert!(AssignationId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(AssignationId::is_valid(AssignationId::generate().as_str()));
    }

    #[test]
    fn a_trace_is_32_and_16_lowercase_hex_digits_not_all_zero() {
        let trace = Trace::new("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
        assert_eq!(
            trace.as_ref().map(Trace::trace_id),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(trace.as_ref().map(Trace::span_id), Some("00f067aa0ba902b7"));
        for (t, s) in [
            ("00000000000000000000000000000000", "00f067aa0ba902b7"),
            ("4bf92f3577b34da6a3ce929d0e0e4736", "0000000000000000"),
            ("4BF92F3577B34DA6A3CE929D0E0E4736", "00f067aa0ba902b7"),
            ("4bf92f3577b34da6a3ce929d0e0e473", "00f067aa0ba902b7"),
            ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902bz"),
        ] {
            assert_eq!(Trace::new(t, s), None, "{t} {s}");
        }
        assert_eq!(
            Trace::parse_trace_id(" 4BF92F3577B34DA6A3CE929D0E0E4736 ").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            Trace::parse_trace_id("00000000000000000000000000000000"),
            None
        );
        assert_eq!(Trace::parse_trace_id("xyz"), None);
    }
}
