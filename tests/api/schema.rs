//! `schema.graphql` is the server's current SDL: rewrite it with `cargo run -- schema > schema.graphql`.

#[test]
fn the_checked_in_schema_matches_the_servers_sdl() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let checked_in = std::fs::read_to_string(path).expect("schema.graphql exists");
    assert!(
        checked_in == chronicle::graphql::sdl(),
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}
