//! The extension that makes the request's [`RequestContext`] the change context of everything the
//! operation runs: `execute` wraps the whole execution (every resolver, every hook) in a task-local
//! scope. `prepare_request` would not do: the scope must be open while resolvers run.

use std::sync::Arc;

use async_graphql::Response;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};

use crate::context::RequestContext;

/// Registers [`ChangeContextScope`] on the schema.
pub struct ChangeContextExtension;

impl ExtensionFactory for ChangeContextExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ChangeContextScope)
    }
}

/// Opens the change-context scope around one operation.
pub struct ChangeContextScope;

#[async_trait::async_trait]
impl Extension for ChangeContextScope {
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
