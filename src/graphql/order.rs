//! Response fields in the order the query asked for them, as the GraphQL specification requires
//! ("Serialized Map Ordering"). async-graphql resolves an object's fields concurrently and writes each
//! as it finishes (its issue #612), so a field whose resolver awaits (an object, a list) lands after the
//! plain ones. [`ResponseOrder`] remembers the parsed document and, once the operation has run, puts
//! every object's keys back in query order: the fields of the selection set, through fragments and
//! inline fragments, by response key (alias or name), in order of first appearance.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Response, ServerResult, Value, Variables};

use super::extension::operation;

/// Registers [`ResponseOrder`] on the schema.
pub struct ResponseOrderExtension;

impl ExtensionFactory for ResponseOrderExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ResponseOrder::default())
    }
}

/// Puts one request's response fields in query order.
#[derive(Default)]
pub struct ResponseOrder {
    document: Mutex<Option<ExecutableDocument>>,
}

#[async_trait::async_trait]
impl Extension for ResponseOrder {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        *self.document.lock().unwrap_or_else(PoisonError::into_inner) = Some(document.clone());
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        let document = self
            .document
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(document) = document
            && let Some(op) = operation(&document, operation_name)
        {
            let data = std::mem::take(&mut response.data);
            response.data = in_query_order(data, &[&op.selection_set.node], &document);
        }
        response
    }
}

/// `value` with its objects' keys in the order `selections` ask for them, at every depth.
pub fn in_query_order(
    value: Value,
    selections: &[&SelectionSet],
    document: &ExecutableDocument,
) -> Value {
    match value {
        Value::Object(mut map) => {
            let mut keys: Vec<(Name, Vec<&SelectionSet>)> = Vec::new();
            let mut visiting = HashSet::new();
            for set in selections {
                collect(set, document, &mut keys, &mut visiting);
            }
            let mut ordered = IndexMap::with_capacity(map.len());
            for (key, children) in keys {
                if let Some(child) = map.shift_remove(&key) {
                    ordered.insert(key, in_query_order(child, &children, document));
                }
            }
            // Anything the selection does not name (nothing, in a valid response) keeps its place after.
            ordered.extend(map);
            Value::Object(ordered)
        }
        Value::List(items) => Value::List(
            items
                .into_iter()
                .map(|item| in_query_order(item, selections, document))
                .collect(),
        ),
        other => other,
    }
}

/// Appends the response keys of `set` (through fragments) to `keys`, each once, with the sub-selections
/// of every field that answers to it.
fn collect<'d>(
    set: &'d SelectionSet,
    document: &'d ExecutableDocument,
    keys: &mut Vec<(Name, Vec<&'d SelectionSet>)>,
    visiting: &mut HashSet<&'d str>,
) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.clone();
                let children = &field.node.selection_set.node;
                match keys.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, sets)) => sets.push(children),
                    None => keys.push((key, vec![children])),
                }
            }
            Selection::InlineFragment(fragment) => {
                collect(&fragment.node.selection_set.node, document, keys, visiting);
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                // A cycle is invalid GraphQL and never executes; stop rather than loop.
                if !visiting.insert(name) {
                    continue;
                }
                if let Some(fragment) = document.fragments.get(name) {
                    collect(&fragment.node.selection_set.node, document, keys, visiting);
                }
                visiting.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(query: &str, data: serde_json::Value) -> String {
        let document = async_graphql::parser::parse_query(query).unwrap_or_else(|e| panic!("{e}"));
        let Some(op) = operation(&document, None) else {
            panic!("no operation");
        };
        let value = Value::from_json(data).unwrap_or_else(|e| panic!("{e}"));
        let ordered = in_query_order(value, &[&op.selection_set.node], &document);
        // Serialized as the server does: async-graphql's map keeps its order (serde_json's would sort).
        serde_json::to_string(&ordered).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn fields_come_back_in_the_order_of_the_query_through_aliases_and_fragments() {
        let out = order(
            "{ p: project { tasks { id } ...F name } } fragment F on Project { id ... on Project { name } }",
            serde_json::json!({"p": {"name": "n", "id": "1", "tasks": [{"id": "t"}]}}),
        );
        assert_eq!(out, r#"{"p":{"tasks":[{"id":"t"}],"id":"1","name":"n"}}"#);
    }
}
