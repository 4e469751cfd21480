//! The documentation's examples work as written: the README's shell examples (the ```sh blocks after an
//! `<!-- example -->` line, in order) run in bash against a fresh server, and every ```graphql example of
//! the user's guide (`docs/guide.md`) is a request the server accepts.

use std::collections::BTreeMap;

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use entity::{project, task};
use serde_json::{Value, json};

use crate::helpers::{Backend, FindAll, spawn_app};

/// The fenced blocks of `language` in `markdown`, each with the line before its fence.
fn blocks<'a>(markdown: &'a str, language: &str) -> Vec<(&'a str, String)> {
    let fence = format!("```{language}");
    let mut found = Vec::new();
    let mut previous = "";
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim() == fence {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            found.push((previous, body.join("\n")));
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    found
}

/// A `curl` that prints the answer and fails the script on an HTTP error or a GraphQL `errors` entry.
const CURL: &str = r#"
curl() {
  local out
  out=$(command curl --silent --show-error --fail-with-body "$@") || { echo "curl failed: $out" >&2; return 1; }
  printf '%s\n' "$out"
  case "$out" in *'"errors"'*) echo "the answer has errors: $out" >&2; return 1;; esac
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_examples_run_as_written() {
    let app = spawn_app(Backend::Sqlite).await;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let examples: Vec<String> = blocks(&readme, "sh")
        .into_iter()
        .filter(|(before, _)| before.trim() == "<!-- example -->")
        .map(|(_, body)| body)
        .collect();
    assert!(examples.len() >= 3, "the README's examples are gone");
    // `chronicle` is the binary under test, on the test's database; `/tmp/` is a directory of the
    // test's own.
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let chronicle = format!(
        "export DATABASE_URL='{}'\nchronicle() {{ '{}' \"$@\"; }}",
        app.url,
        env!("CARGO_BIN_EXE_chronicle")
    );
    let examples = examples
        .join("\n")
        .replace("http://127.0.0.1:8000", &app.address)
        .replace("/tmp/", &format!("{}/", scratch.path().display()));
    let script =
        format!("set -euo pipefail\nshopt -s inherit_errexit\n{CURL}\n{chronicle}\n{examples}");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .output()
            .expect("bash runs")
    })
    .await
    .expect("the script finished");
    assert!(
        output.status.success(),
        "the README's examples failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // They did what the README says: the project renamed, the task's rename reverted, a tree of two,
    // a project made in the client's trace.
    let mut projects: Vec<String> = project::Entity::find_all(&app.db)
        .await
        .into_iter()
        .map(|p| p.name)
        .collect();
    projects.sort();
    assert_eq!(projects, ["Apollo 11", "Traced"]);
    let traced = app
        .gql(
            "{ traceHistory(traceId: \"4bf92f3577b34da6a3ce929d0e0e4736\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(traced.data()["traceHistory"]["totalCount"], 1);
    let mut titles: Vec<String> = task::Entity::find_all(&app.db)
        .await
        .into_iter()
        .map(|t| t.title)
        .collect();
    titles.sort();
    assert_eq!(titles, ["Launch", "Plan the shipping", "Ship"]);
    let tree = app
        .gql(
            "{ assignation(id: \"order-7.plan\") { parent { id } root { id } onBehalfOf } }",
            json!({}),
        )
        .await;
    assert_eq!(
        tree.data()["assignation"],
        json!({"parent": {"id": "order-7"}, "root": {"id": "order-7"}, "onBehalfOf": "alice"})
    );
    let reverts = app
        .gql(
            "{ assignation(id: \"typo\") { revertedBy { changeCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        reverts.data()["assignation"]["revertedBy"]["changeCount"],
        1
    );
}

/// A value of the GraphQL type `ty` for a variable: dummies of the right type (the example's answer
/// does not matter, only that the server takes the request).
fn dummy(ty: &Type, inputs: &BTreeMap<String, Vec<(String, Type)>>) -> Value {
    match &ty.base {
        BaseType::List(item) => json!([dummy(item, inputs)]),
        BaseType::Named(name) => match name.as_str() {
            "ID" => json!(uuid::Uuid::now_v7().to_string()),
            "String" => json!("example"),
            "Int" => json!(1),
            "Boolean" => json!(false),
            "DateTime" => json!("2026-11-23T09:00:00Z"),
            "Date" => json!("2026-11-23"),
            "JSON" => json!({}),
            "HistoryEntity" => json!("TASK"),
            "HistoryKind" => json!("UPDATE"),
            "TaskStatus" => json!("TODO"),
            "AuditKind" => json!("MUTATION"),
            "AuditStatus" => json!("SUCCESS"),
            other => {
                let fields = inputs
                    .get(other)
                    .unwrap_or_else(|| panic!("the test has no dummy for {other}"));
                let object: serde_json::Map<String, Value> = fields
                    .iter()
                    .filter(|(_, ty)| !ty.nullable)
                    .map(|(name, ty)| (name.clone(), dummy(ty, inputs)))
                    .collect();
                Value::Object(object)
            }
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_graphql_example_of_the_guide_is_a_request_the_server_takes() {
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/guide.md"))
        .expect("docs/guide.md");
    let schema = async_graphql::parser::parse_schema(chronicle::graphql::sdl()).expect("the SDL");
    let mut inputs = BTreeMap::new();
    for definition in &schema.definitions {
        if let TypeSystemDefinition::Type(t) = definition
            && let TypeKind::InputObject(object) = &t.node.kind
        {
            let fields = object
                .fields
                .iter()
                .map(|f| (f.node.name.node.to_string(), f.node.ty.node.clone()))
                .collect();
            inputs.insert(t.node.name.node.to_string(), fields);
        }
    }
    let examples = blocks(&guide, "graphql");
    assert!(examples.len() >= 10, "the guide's examples are gone");

    let app = spawn_app(Backend::Sqlite).await;
    for (_, example) in examples {
        let document = async_graphql::parser::parse_query(&example)
            .unwrap_or_else(|e| panic!("this example does not parse ({e}):\n{example}"));
        let mut variables = serde_json::Map::new();
        for (_, operation) in document.operations.iter() {
            for variable in &operation.node.variable_definitions {
                let v = &variable.node;
                variables.insert(v.name.node.to_string(), dummy(&v.var_type.node, &inputs));
            }
        }
        let reply = app.gql(&example, Value::Object(variables)).await;
        assert_ne!(
            reply.status, 400,
            "the server refuses this example of the guide:\n{example}\n{}",
            reply.body
        );
    }
}

#[test]
fn the_readme_shows_the_code_it_says_it_shows() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let quoted: Vec<(String, String)> = blocks(&readme, "rust")
        .into_iter()
        .filter_map(|(before, body)| {
            let path = before
                .trim()
                .strip_prefix("<!-- from: ")?
                .strip_suffix(" -->")?;
            Some((path.to_owned(), body))
        })
        .collect();
    assert!(quoted.len() >= 3, "the README quotes no code any more");
    for (path, body) in quoted {
        let source = std::fs::read_to_string(format!("{root}/{path}"))
            .unwrap_or_else(|e| panic!("the README quotes {path}, which cannot be read: {e}"));
        let lines: Vec<&str> = source.lines().map(str::trim).collect();
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            assert!(
                lines.contains(&line),
                "the README quotes `{line}` from {path}, which does not hold it"
            );
        }
    }
}
