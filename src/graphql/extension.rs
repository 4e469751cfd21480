//! The extension that applies the request's [`RequestContext`] to the operation it runs.
//!
//! - `parse_query`: once the document is parsed, a mutation is refused when its principal may not write
//!   (`UNAUTHENTICATED`) or when it selects more fields than `max_mutation_fields` (`LIMIT_EXCEEDED`),
//!   before any resolver runs.
//! - `resolve`: around each top-level mutation field, collects its log lines and catches a panic,
//!   then writes its `MUTATION` audit event (input masked, output, status, duration, error) on its own
//!   connection, so the event is written even when the field's transaction rolled back, and counts it
//!   in the metrics (with the history records it wrote, and a revert's outcome).
//!
//! The change context itself is opened around the whole execution by `sea-orm-history`'s
//! `ChangeContextExtension`, from the `ChangeContext` the handler puts in the request's data.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextResolve, ResolveInfo,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{ErrorExtensions, Pos, ServerError, ServerResult, Value, Variables};
use entity::HistoryEntity;
use sea_orm::DatabaseConnection;
use sea_orm_history::{ChangeContext, EntitySet, Tally};
use serde_json::Value as Json;

use crate::audit::capture;
use crate::audit::writer::EventWriter;
use crate::audit::{AuditKind, NewEvent};
use crate::config::{AuditSettings, Limits};
use crate::context::RequestContext;
use crate::error::AppError;
use crate::operations::metrics::Metrics;

/// The `operationName` of the request, which `parse_query` needs to know which operation will run.
#[derive(Clone, Debug, Default)]
pub struct SelectedOperation(pub Option<String>);

/// The request's variables, to resolve a mutation's arguments for its audit event.
#[derive(Clone, Debug, Default)]
pub struct RequestVariables(pub Variables);

/// Registers [`RequestScope`] on the schema.
pub struct ChangeContextExtension;

impl ExtensionFactory for ChangeContextExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestScope)
    }
}

/// Checks and scopes one operation.
pub struct RequestScope;

#[async_trait::async_trait]
impl Extension for RequestScope {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let selected = ctx
            .data_opt::<SelectedOperation>()
            .and_then(|s| s.0.as_deref());
        let Some(operation) = operation(&document, selected) else {
            // An unknown operation name: async-graphql reports it.
            return Ok(document);
        };
        if operation.ty != OperationType::Mutation {
            return Ok(document);
        }
        if let Some(request) = ctx.data_opt::<RequestContext>()
            && !request.principal.may_write()
        {
            return Err(refuse(AppError::Unauthenticated(
                "mutations need a bearer token".into(),
            )));
        }
        if let Some(limits) = ctx.data_opt::<Limits>() {
            let fields = Expansion::new(&document).top_level(&operation.selection_set.node);
            if fields > limits.max_mutation_fields {
                return Err(refuse(AppError::LimitExceeded(format!(
                    "a request may run at most {} mutation fields (this one has {fields})",
                    limits.max_mutation_fields
                ))));
            }
        }
        Ok(document)
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let top_level_mutation = info.path_node.parent.is_none()
            && info.parent_type == "MutationRoot"
            && info.name != "recordEvent";
        let (Some(db), Some(settings), true) = (
            ctx.data_opt::<DatabaseConnection>(),
            ctx.data_opt::<AuditSettings>(),
            top_level_mutation,
        ) else {
            return next.run(ctx, info).await;
        };
        let name = info.name.to_owned();
        let mut input = arguments(ctx, info.field);
        crate::audit::mask(&mut input, &settings.mask);
        let started = std::time::Instant::now();
        let at = sea_orm_history::now();
        // A tally of its own, so the metrics count what this field's transaction wrote.
        let tally = Tally::default();
        let run = async {
            match ChangeContext::current() {
                Some(mut change) => {
                    change.tally = Some(tally.clone());
                    change.scope(next.run(ctx, info)).await
                }
                None => next.run(ctx, info).await,
            }
        };
        let (result, captured) = capture::scope_catching(settings.audit_log_level, run).await;
        let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);

        let mut event = NewEvent::new(AuditKind::Mutation, name.clone());
        event.at = at;
        event.duration_ms = Some(duration_ms);
        event.logs = captured.lines;
        if let Some(request) = ctx.data_opt::<RequestContext>() {
            event = event.from_request(request);
        }
        let result = match result {
            Ok(result) => result,
            Err(()) => {
                let (message, backtrace) = captured
                    .panic
                    .unwrap_or_else(|| ("a panic".to_owned(), String::new()));
                tracing::error!(field = %name, panic = %message, "a mutation panicked");
                event.details = Some(serde_json::json!({"panic": message, "backtrace": backtrace}));
                Err(refuse(AppError::internal(message)))
            }
        };
        let output = match &result {
            Ok(value) => value.clone().map(|v| v.into_json().unwrap_or(Json::Null)),
            Err(_) => None,
        };
        if let Some((entity, id)) = target(&name, &input, output.as_ref(), &tally) {
            event = event.object(entity, id);
        }
        event.input = Some(input);
        match &result {
            Ok(_) => event.output = output.map(bounded),
            Err(error) => {
                // As the client sees it (see `crate::http::graphql`): our errors carry their code,
                // async-graphql's own (a variable not given, say) get theirs from the message.
                let code = code_of(error)
                    .unwrap_or_else(|| crate::error::code_of_unclassified(&error.message));
                event = event.failed(format!("{code}: {}", error.message));
            }
        }
        // The project of the object the field wrote is known from its history records.
        if let (Some(entity), Some(object_id)) = (event.entity, event.object_id.as_deref()) {
            event.scope_id = tally.scope_of(entity.name(), object_id);
        }
        let stored = match ctx.data_opt::<EventWriter>() {
            Some(writer) => match crate::audit::row_of(db, event).await {
                Ok(row) => writer.write(row).await,
                Err(e) => Err(e),
            },
            None => crate::audit::record(db, event).await.map(|_| ()),
        };
        if let Err(e) = stored {
            tracing::error!(error = %e, field = %name, "cannot write the audit event");
        }
        if let Some(metrics) = ctx.data_opt::<Arc<Metrics>>() {
            count(metrics, &name, &result, &tally);
        }
        result
    }
}

/// The `extensions.code` of an error, when it has one.
fn code_of(error: &ServerError) -> Option<&str> {
    match error.extensions.as_ref()?.get("code")? {
        Value::String(code) => Some(code),
        _ => None,
    }
}

/// Counts a mutation field in the metrics: its status, the history records it wrote (only when it
/// succeeded: a failed field's transaction rolled back), and for reverts their outcome and conflicts.
fn count(metrics: &Metrics, field: &str, result: &ServerResult<Option<Value>>, tally: &Tally) {
    let written = match result {
        Ok(_) => tally.take(),
        Err(_) => Default::default(),
    };
    metrics.mutation(field, result.is_ok(), &written);
    let kind = match field {
        "revertAssignation" => "assignation",
        "revertObject" => "object",
        _ => return,
    };
    let (outcome, conflicts) = match result {
        Ok(_) => ("applied", 0),
        Err(error) if code_of(error) == Some("REVERT_CONFLICT") => {
            let conflicts = match error.extensions.as_ref().and_then(|e| e.get("conflicts")) {
                Some(Value::List(list)) => list.len() as u64,
                _ => 0,
            };
            ("conflict", conflicts)
        }
        Err(_) => ("refused", 0),
    };
    metrics.revert(kind, outcome, conflicts);
}

/// The field's arguments as JSON, variables substituted (a missing variable reads as null).
fn arguments(ctx: &ExtensionContext<'_>, field: &Field) -> Json {
    let variables = ctx.data_opt::<RequestVariables>();
    let mut map = serde_json::Map::new();
    for (name, value) in &field.arguments {
        let value = value
            .node
            .clone()
            .into_const_with(|var| {
                Ok::<_, std::convert::Infallible>(
                    variables
                        .and_then(|v| v.0.get(&var).cloned())
                        .unwrap_or(Value::Null),
                )
            })
            .ok()
            .and_then(|v| v.into_json().ok())
            .unwrap_or(Json::Null);
        map.insert(name.node.to_string(), value);
    }
    Json::Object(map)
}

/// The largest output kept with an event, in bytes of JSON; larger ones are replaced by a note.
const MAX_OUTPUT_BYTES: usize = 16 * 1024;

fn bounded(output: Json) -> Json {
    if output.to_string().len() > MAX_OUTPUT_BYTES {
        serde_json::json!({"truncated": true})
    } else {
        output
    }
}

/// The object a mutation field concerns: `create/update/deleteX` name their entity, the target is the
/// `id` argument or the returned `id`; label links concern their task; `revertObject` its object.
fn target(
    field: &str,
    input: &Json,
    output: Option<&Json>,
    tally: &Tally,
) -> Option<(HistoryEntity, String)> {
    let text = |v: Option<&Json>| v.and_then(Json::as_str).map(str::to_owned);
    match field {
        "addLabel" | "removeLabel" => Some((HistoryEntity::Task, text(input.get("taskId"))?)),
        "revertObject" => Some((
            HistoryEntity::from_name(input.get("entity")?.as_str()?)?,
            text(input.get("id"))?,
        )),
        _ => {
            let noun = ["create", "update", "delete"]
                .iter()
                .find_map(|verb| field.strip_prefix(verb))?;
            let entity = HistoryEntity::ALL
                .iter()
                .copied()
                .find(|e| e.name().replace('_', "").eq_ignore_ascii_case(noun))?;
            // Updates and deletes name it; a create's is in its output when the client selected
            // `id`, and in its history records whatever it selected.
            let id = text(input.get("id"))
                .or_else(|| text(output.and_then(|o| o.get("id"))))
                .or_else(|| tally.first_created(entity.name()))?;
            Some((entity, id))
        }
    }
}

/// A refusal of the whole operation: it has no place in the document, so no `locations`.
fn refuse(error: AppError) -> ServerError {
    let mut error = error.extend().into_server_error(Pos::default());
    error.locations.clear();
    error
}

/// The operation the request will run: the named one, or the only one.
pub(crate) fn operation<'d>(
    document: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<&'d OperationDefinition> {
    match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, op)| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// How many field nodes `document` expands to, through its fragments, counted in linear time. The
/// handler refuses documents above the complexity limit with this before async-graphql sees them:
/// its parse-time depth check expands fragments in full, which a small document can make exponential.
pub fn expanded_nodes(document: &ExecutableDocument) -> usize {
    let mut expansion = Expansion::new(document);
    document
        .operations
        .iter()
        .map(|(_, op)| expansion.nodes(&op.node.selection_set.node))
        .fold(0usize, usize::saturating_add)
}

/// Counts the nodes a selection expands to, through fragments, remembering each fragment's count
/// so that a document reusing fragments many times is counted in linear time (async-graphql's own
/// depth and complexity checks expand fragments in full: this runs first and refuses blow-ups).
struct Expansion<'d> {
    document: &'d ExecutableDocument,
    sizes: HashMap<&'d str, usize>,
    visiting: HashSet<&'d str>,
}

impl<'d> Expansion<'d> {
    fn new(document: &'d ExecutableDocument) -> Self {
        Self {
            document,
            sizes: HashMap::new(),
            visiting: HashSet::new(),
        }
    }

    /// Every field node of `selections`, at any depth.
    fn nodes(&mut self, selections: &'d SelectionSet) -> usize {
        self.sum(selections, true)
    }

    /// The fields `selections` runs at its own level.
    fn top_level(&mut self, selections: &'d SelectionSet) -> usize {
        self.sum(selections, false)
    }

    fn sum(&mut self, selections: &'d SelectionSet, deep: bool) -> usize {
        let mut total: usize = 0;
        for selection in &selections.items {
            let n = match &selection.node {
                Selection::Field(field) if deep => {
                    1usize.saturating_add(self.sum(&field.node.selection_set.node, true))
                }
                Selection::Field(_) => 1,
                Selection::InlineFragment(fragment) => {
                    self.sum(&fragment.node.selection_set.node, deep)
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str(), deep)
                }
            };
            total = total.saturating_add(n);
        }
        total
    }

    fn fragment(&mut self, name: &'d str, deep: bool) -> usize {
        if deep && let Some(n) = self.sizes.get(name) {
            return *n;
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return 0;
        };
        // A cycle is invalid GraphQL: validation reports it; count nothing here.
        if !self.visiting.insert(name) {
            return 0;
        }
        let n = self.sum(&fragment.node.selection_set.node, deep);
        self.visiting.remove(name);
        if deep {
            self.sizes.insert(name, n);
        }
        n
    }
}
