//! The verifiable log over HTTP and from the command line: the server sequences what mutations
//! write and signs checkpoints; GraphQL serves them and the proofs, `/log/checkpoint` the latest as
//! plain text; `chronicle verify --checkpoint` proves the history against a copy kept outside, and
//! names the record an administrator edited behind the server's back.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use chronicle::config::Settings;
use serde_json::{Value, json};

use crate::helpers::TestApp;

crate::on_every_database!(
    settings = logged;
    the_server_logs_history_signs_checkpoints_and_proves_records,
    verify_against_a_checkpoint_names_a_record_edited_behind_the_servers_back,
);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/log")
        .join(name)
}

fn logged(settings: &mut Settings) {
    settings.log.checkpoint_key = Some(
        fixture("checkpoint-private.pem")
            .to_str()
            .expect("a UTF-8 path")
            .to_owned(),
    );
    settings.log.checkpoint_origin = "chronicle.test/log".into();
    settings.log.sequence_every_ms = 50;
    // Two records per transaction: a run over the tests' three records takes two.
    settings.log.sequencer_batch = 2;
    settings.log.checkpoint_every = Duration::from_millis(100);
}

/// Creates a project and renames it twice; returns its id.
async fn some_history(app: &TestApp) -> String {
    let id = app.project("Log").await;
    for name in ["Log v2", "Log v3"] {
        app.gql(
            "mutation($id: ID!, $n: String!) { updateProject(id: $id, input: {name: $n}) { id } }",
            json!({"id": id, "n": name}),
        )
        .await
        .data();
    }
    id
}

/// The latest checkpoint, once it covers `records` records.
async fn checkpoint_covering(app: &TestApp, records: i64) -> Value {
    for _ in 0..200 {
        let reply = app
            .gql(
                "{ logSize checkpoint { size rootHash note at } }",
                json!({}),
            )
            .await;
        let data = reply.data();
        if data["checkpoint"]["size"].as_i64().unwrap_or(0) >= records {
            return data["checkpoint"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no checkpoint of {records} records within 10 s");
}

fn hash(text: &str) -> [u8; 32] {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
        .try_into()
        .expect("32 bytes")
}

async fn the_server_logs_history_signs_checkpoints_and_proves_records(app: TestApp) {
    let project = some_history(&app).await;
    let checkpoint = checkpoint_covering(&app, 3).await;
    let size = checkpoint["size"].as_i64().unwrap();
    let note = checkpoint["note"].as_str().unwrap();
    assert!(
        note.starts_with(&format!("chronicle.test/log\n{size}\n")),
        "{note}"
    );
    assert!(
        note.contains("\n\n— chronicle.test/log "),
        "a signed note: {note}"
    );

    // The same note as plain text, for anyone to copy.
    let plain = app
        .request(reqwest::Method::GET, "/log/checkpoint")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert!(
        plain.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(plain.text().await.unwrap(), note);

    // Each record says its place, and its inclusion proof checks against the checkpoint's root.
    let history = app
        .gql(
            "query($id: ID!) { history(entity: PROJECT, id: $id) { edges { node { id version logIndex } } } }",
            json!({"id": project}),
        )
        .await;
    let root = hash(checkpoint["rootHash"].as_str().unwrap());
    for edge in history.data()["history"]["edges"].as_array().unwrap() {
        let record = &edge["node"];
        let proof = app
            .gql(
                "query($r: ID!, $s: Int) { inclusionProof(recordId: $r, treeSize: $s) { logIndex treeSize leafHash rootHash hashes } }",
                json!({"r": record["id"], "s": size}),
            )
            .await;
        let proof = &proof.data()["inclusionProof"];
        assert_eq!(proof["logIndex"], record["logIndex"]);
        assert_eq!(proof["rootHash"], checkpoint["rootHash"]);
        let path: Vec<[u8; 32]> = proof["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| hash(h.as_str().unwrap()))
            .collect();
        let index = proof["logIndex"].as_u64().unwrap();
        let leaf = hash(proof["leafHash"].as_str().unwrap());
        assert!(chronicle_test_support::inclusion_holds(
            &path,
            u64::try_from(size).unwrap(),
            root,
            index,
            leaf
        ));
    }
    let consistency = app
        .gql(
            "query($s: Int!) { consistencyProof(from: 1, to: $s) { fromRoot toRoot hashes } checkpoints(first: 5) { totalCount } }",
            json!({"s": size}),
        )
        .await;
    assert_eq!(
        consistency.data()["consistencyProof"]["toRoot"],
        checkpoint["rootHash"]
    );
    // Bad input is refused with its code, and nothing leaks.
    let beyond = app
        .gql("{ consistencyProof(from: 2, to: 1) { toRoot } }", json!({}))
        .await;
    assert_eq!(beyond.code(), "BAD_INPUT");
    let unknown = app
        .gql(
            "query($r: ID!) { inclusionProof(recordId: $r) { logIndex } }",
            json!({"r": uuid::Uuid::now_v7().to_string()}),
        )
        .await;
    assert_eq!(unknown.code(), "NOT_FOUND");
}

/// `chronicle verify --checkpoint` on the app's database; its exit code and its output.
fn verify(app: &TestApp, checkpoint: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args([
            "verify",
            "--quiet",
            "--database-url",
            &app.url,
            "--checkpoint",
        ])
        .arg(checkpoint)
        .arg("--public-key")
        .arg(fixture("checkpoint-public.pem"))
        .output()
        .expect("chronicle verify runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn verify_against_a_checkpoint_names_a_record_edited_behind_the_servers_back(app: TestApp) {
    let project = some_history(&app).await;
    let checkpoint = checkpoint_covering(&app, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("checkpoint.txt");
    std::fs::write(&kept, checkpoint["note"].as_str().unwrap()).unwrap();
    let (code, out) = verify(&app, &kept);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("the history holds against the checkpoint"),
        "{out}"
    );

    // Another key's checkpoint is refused outright.
    let other = sea_orm_history::log::CheckpointKey::from_pem(
        &std::fs::read_to_string(fixture("other-private.pem")).unwrap(),
        "chronicle.test/log",
    )
    .unwrap();
    let forged = other
        .sign(
            checkpoint["size"].as_u64().unwrap(),
            &sea_orm_history::log::Hash(hash(checkpoint["rootHash"].as_str().unwrap())),
        )
        .unwrap();
    let forged_file = dir.path().join("forged.txt");
    std::fs::write(&forged_file, forged).unwrap();
    assert_eq!(verify(&app, &forged_file).0, 2);

    // The administrator switches the triggers off and renames the project in its first record.
    let manager = migration::SchemaManager::new(&app.db);
    sea_orm_history::migration::unprotect_history_table(&manager, "project_history")
        .await
        .unwrap();
    let snapshot = match app.backend {
        crate::helpers::Backend::Postgres => {
            "jsonb_set(snapshot, '{name}', '\"Forged\"')".to_owned()
        }
        _ => "JSON_SET(snapshot, '$.name', 'Forged')".to_owned(),
    };
    sea_orm::ConnectionTrait::execute_unprepared(
        &app.db,
        &format!(
            "UPDATE project_history SET snapshot = {snapshot} WHERE object_id = '{project}' AND version = 1"
        ),
    )
    .await
    .unwrap();
    let (code, out) = verify(&app, &kept);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("FAULT PROJECT {project} version 1")),
        "{out}"
    );
}
