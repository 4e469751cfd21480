//! The extension that applies the request's [`RequestContext`] to the operation it runs.
//!
//! - `parse_query`: once the document is parsed, a mutation is refused when its principal may not write
//!   (`UNAUTHENTICATED`) or when it selects more fields than `max_mutation_fields` (`LIMIT_EXCEEDED`),
//!   before any resolver runs.
//! - `execute`: wraps the whole execution (every resolver, every hook) in the task-local change-context
//!   scope. `prepare_request` would not do: the scope must be open while resolvers run.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{ErrorExtensions, Pos, Response, ServerError, ServerResult, Variables};

use crate::config::Limits;
use crate::context::RequestContext;
use crate::error::AppError;

/// The `operationName` of the request, which `parse_query` needs to know which operation will run.
#[derive(Clone, Debug, Default)]
pub struct SelectedOperation(pub Option<String>);

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
            let fields = count_fields(
                &document,
                &operation.selection_set.node,
                &mut HashSet::new(),
            );
            if fields > limits.max_mutation_fields {
                return Err(refuse(AppError::LimitExceeded(format!(
                    "a request may run at most {} mutation fields (this one has {fields})",
                    limits.max_mutation_fields
                ))));
            }
        }
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        match ctx.data_opt::<RequestContext>() {
            Some(request) => {
                request
                    .change_context()
                    .scope(next.run(ctx, operation_name))
                    .await
            }
            None => next.run(ctx, operation_name).await,
        }
    }
}

fn refuse(error: AppError) -> ServerError {
    error.extend().into_server_error(Pos::default())
}

/// The operation the request will run: the named one, or the only one.
fn operation<'d>(
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

/// The top-level fields a selection runs, through fragments (each fragment counted once per path;
/// a cycle is invalid GraphQL and stops here, validation reports it).
fn count_fields<'d>(
    document: &'d ExecutableDocument,
    selections: &'d SelectionSet,
    visiting: &mut HashSet<&'d str>,
) -> usize {
    selections
        .items
        .iter()
        .map(|selection| match &selection.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(fragment) => {
                count_fields(document, &fragment.node.selection_set.node, visiting)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                let Some(fragment) = document.fragments.get(name) else {
                    return 0;
                };
                if !visiting.insert(name) {
                    return 0;
                }
                let n = count_fields(document, &fragment.node.selection_set.node, visiting);
                visiting.remove(name);
                n
            }
        })
        .sum()
}
