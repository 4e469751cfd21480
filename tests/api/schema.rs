//! The checked-in schema and reference are the server's own: rewrite them with
//! `cargo run -- schema > schema.graphql` and
//! `cargo run -- schema --format markdown > docs/reference.md`.

#[test]
fn the_checked_in_schema_matches_the_servers_sdl() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let checked_in = std::fs::read_to_string(path).expect("schema.graphql exists");
    assert!(
        checked_in == chronicle::graphql::sdl(),
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}

#[test]
fn the_api_reference_is_generated_from_the_servers_sdl() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md");
    let checked_in = std::fs::read_to_string(path).expect("docs/reference.md exists");
    let generated = chronicle::graphql::reference::markdown(&chronicle::graphql::sdl())
        .expect("the SDL parses");
    assert!(
        checked_in == generated,
        "docs/reference.md is out of date: run `cargo run -- schema --format markdown > docs/reference.md`"
    );
    for name in ["## HistoryRecord", "`revertAssignation`", "`auditEvents`"] {
        assert!(
            generated.contains(name),
            "{name} missing from the reference"
        );
    }
}
