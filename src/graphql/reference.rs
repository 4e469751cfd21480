//! The API reference in Markdown (`docs/reference.md`), generated from the SDL the server exports, so
//! it cannot drift from `schema.graphql`: `chronicle schema --format markdown`. The roots first
//! (queries, mutations), then every other type in alphabetical order, each with its description and a
//! table of its fields, arguments, enum values or members.

use std::fmt::Write as _;

use async_graphql::parser::types::{
    FieldDefinition, InputValueDefinition, ServiceDocument, TypeDefinition, TypeKind,
    TypeSystemDefinition,
};
use async_graphql::parser::{Positioned, parse_schema};

/// The Markdown reference of `sdl`.
///
/// # Errors
/// The SDL does not parse (never for the server's own).
pub fn markdown(sdl: &str) -> Result<String, String> {
    let document: ServiceDocument = parse_schema(sdl).map_err(|e| e.to_string())?;
    let mut types: Vec<&TypeDefinition> = document
        .definitions
        .iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(t) => Some(&t.node),
            _ => None,
        })
        .collect();
    let root_rank = |t: &&TypeDefinition| match t.name.node.as_str() {
        "QueryRoot" => 0,
        "MutationRoot" => 1,
        _ => 2,
    };
    types.sort_by(|a, b| {
        root_rank(a)
            .cmp(&root_rank(b))
            .then_with(|| a.name.node.cmp(&b.name.node))
    });

    let mut out = String::from(
        "# Chronicle GraphQL API reference\n\n\
         Generated from the server's schema by `chronicle schema --format markdown > \
         docs/reference.md`; a test fails when it differs from the server. For how to use the API, \
         see [the user's guide](guide.md); the SDL itself is [`schema.graphql`](../schema.graphql).\n\n\
         ## Types\n\n",
    );
    for t in &types {
        let name = t.name.node.as_str();
        let _ = writeln!(
            out,
            "- [`{name}`](#{}) ({})",
            name.to_lowercase(),
            kind(&t.kind)
        );
    }
    for t in &types {
        let _ = write!(out, "\n## {}\n\n", t.name.node);
        let _ = writeln!(out, "*{}*\n", kind(&t.kind));
        if let Some(description) = &t.description {
            let _ = writeln!(out, "{}\n", description.node.trim());
        }
        match &t.kind {
            TypeKind::Object(o) => fields(&mut out, &o.fields),
            TypeKind::Interface(i) => fields(&mut out, &i.fields),
            TypeKind::InputObject(i) => inputs(&mut out, "Field", &i.fields),
            TypeKind::Enum(e) => {
                out.push_str("| Value | Meaning |\n| --- | --- |\n");
                for value in &e.values {
                    let _ = writeln!(
                        out,
                        "| `{}` | {} |",
                        value.node.value.node,
                        cell(value.node.description.as_ref())
                    );
                }
            }
            TypeKind::Union(u) => {
                let members: Vec<String> = u
                    .members
                    .iter()
                    .map(|m| format!("[`{0}`](#{1})", m.node, m.node.to_lowercase()))
                    .collect();
                let _ = writeln!(out, "One of {}.", members.join(", "));
            }
            TypeKind::Scalar => {}
        }
    }
    Ok(out)
}

fn kind(kind: &TypeKind) -> &'static str {
    match kind {
        TypeKind::Scalar => "scalar",
        TypeKind::Object(_) => "object",
        TypeKind::Interface(_) => "interface",
        TypeKind::Union(_) => "union",
        TypeKind::Enum(_) => "enum",
        TypeKind::InputObject(_) => "input",
    }
}

/// A description as one table cell: its lines joined, pipes escaped.
fn cell(description: Option<&Positioned<String>>) -> String {
    description
        .map(|d| {
            d.node
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace('|', "\\|")
        })
        .unwrap_or_default()
}

fn fields(out: &mut String, list: &[Positioned<FieldDefinition>]) {
    out.push_str("| Field | Type | Arguments | Meaning |\n| --- | --- | --- | --- |\n");
    for field in list {
        let f = &field.node;
        let arguments: Vec<String> = f
            .arguments
            .iter()
            .map(|a| {
                let a = &a.node;
                match &a.default_value {
                    Some(default) => format!("`{}: {} = {}`", a.name.node, a.ty.node, default.node),
                    None => format!("`{}: {}`", a.name.node, a.ty.node),
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} |",
            f.name.node,
            f.ty.node,
            arguments.join(", "),
            cell(f.description.as_ref())
        );
    }
}

fn inputs(out: &mut String, heading: &str, list: &[Positioned<InputValueDefinition>]) {
    let _ = writeln!(out, "| {heading} | Type | Meaning |\n| --- | --- | --- |");
    for value in list {
        let v = &value.node;
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} |",
            v.name.node,
            v.ty.node,
            cell(v.description.as_ref())
        );
    }
}
