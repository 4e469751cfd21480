//! The verifiable log without HTTP, on SQLite in memory, PostgreSQL and MariaDB when configured:
//! sequencing, checkpoints, proofs, and `verify_checkpoint` against the attacks a database
//! administrator could make with the append-only triggers off — a record edited, an object's whole
//! chain rewritten consistently, its newest records deleted, a record inserted into the past, the
//! log's own tables edited — each caught with the first record at fault named; and forged
//! checkpoints refused.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use chronicle_test_support::Backend;
use history_engine_tests::{Catalogue, fresh, shelf};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, Set,
};
use sea_orm_history::log::{
    CheckpointKey, LogVerification, SequenceOptions, SignedCheckpoint, VerifyOptions,
    consistency_proof, inclusion_proof, make_checkpoint, parse_checkpoint, sequence,
    verify_checkpoint,
};
use sea_orm_history::record::{HISTORY_COLUMNS, record_hash};
use sea_orm_history::{AssignationId, ChangeContext, EntitySet, HistoryRow, Registry, query};

history_engine_tests::on_every_database!(
    records_join_the_log_and_a_checkpoint_proves_them,
    an_edited_record_is_named,
    a_chain_rewritten_consistently_is_named_though_its_own_hashes_verify,
    deleted_newest_records_are_named,
    a_record_inserted_into_the_past_is_named,
    edits_to_the_logs_own_tables_are_caught,
    forged_checkpoints_are_refused,
    kept_cursors_find_late_commits_within_the_window_and_a_full_sweep_the_rest,
);

fn registry() -> &'static Registry {
    Catalogue::registry().expect("the catalogue's registry checks")
}

fn pem(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../fixtures/log/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture key")
}

fn key() -> CheckpointKey {
    CheckpointKey::from_pem(&pem("checkpoint-private.pem"), "catalogue.test/log").expect("key")
}

/// Three shelves, each renamed twice, one change per assignation; all sequenced (two at a time); a
/// checkpoint.
async fn logged(
    backend: Backend,
) -> (
    Option<chronicle_test_support::ScratchDatabase>,
    DatabaseConnection,
    SignedCheckpoint,
) {
    let (guard, db) = fresh(backend).await;
    for (i, name) in ["A", "B", "C"].into_iter().enumerate() {
        let id = format!("make-{i}");
        ChangeContext::new(registry(), AssignationId::parse(&id).unwrap())
            .user("alice")
            .scope(async {
                let txn = sea_orm_history::begin(&db).await.unwrap();
                shelf::ActiveModel {
                    name: Set(name.into()),
                    ..Default::default()
                }
                .insert(&txn)
                .await
                .unwrap();
                txn.commit().await.unwrap();
            })
            .await;
    }
    for round in 1..=2 {
        for id in 1..=3 {
            rename(&db, id, &format!("shelf {id} v{round}")).await;
        }
    }
    // In batches of two: later batches of one run read on from where the last one stopped.
    let in_twos = SequenceOptions {
        batch: 2,
        ..SequenceOptions::default()
    };
    let report = sequence(&db, registry(), &in_twos).await.unwrap();
    assert_eq!((report.appended, report.size), (9, 9));
    let model = make_checkpoint(&db, &key()).await.unwrap();
    let checkpoint = parse_checkpoint(&model.note, Some(&pem("checkpoint-public.pem"))).unwrap();
    (guard, db, checkpoint)
}

async fn rename(db: &DatabaseConnection, id: i32, name: &str) {
    let row = shelf::Entity::find_by_id(id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    ChangeContext::fresh(registry())
        .user("alice")
        .scope(async {
            let txn = sea_orm_history::begin(db).await.unwrap();
            let mut active = row.into_active_model();
            active.name = Set(name.into());
            active.update(&txn).await.unwrap();
            txn.commit().await.unwrap();
        })
        .await;
}

async fn verify(db: &DatabaseConnection, checkpoint: &SignedCheckpoint) -> LogVerification {
    verify_checkpoint(
        db,
        registry(),
        checkpoint,
        &VerifyOptions::default(),
        |_| {},
    )
    .await
    .unwrap()
}

/// Runs `sql` with the history table's triggers off, as an administrator could.
async fn behind_the_back(db: &DatabaseConnection, sql: &str) {
    let manager = sea_orm_migration::SchemaManager::new(db);
    sea_orm_history::migration::unprotect_history_table(&manager, "shelf_history")
        .await
        .unwrap();
    db.execute_unprepared(sql).await.unwrap();
}

fn json_literal(db: &DatabaseConnection, value: &serde_json::Value) -> String {
    let text = value.to_string().replace('\'', "''");
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => format!("'{text}'::jsonb"),
        _ => format!("'{text}'"),
    }
}

async fn shelf_records(db: &DatabaseConnection, object: &str) -> Vec<HistoryRow> {
    let info = registry().get("SHELF").unwrap();
    let mut rows = query::object_history(db, info, object, 100, None)
        .await
        .unwrap()
        .items;
    rows.reverse();
    rows
}

async fn records_join_the_log_and_a_checkpoint_proves_them(backend: Backend) {
    let (_guard, db, checkpoint) = logged(backend).await;
    assert_eq!(checkpoint.size, 9);
    assert_eq!(checkpoint.origin, "catalogue.test/log");
    let report = verify(&db, &checkpoint).await;
    assert!(report.ok(), "{:?}", report.fault);
    assert_eq!(report.checked, 9);

    // Later changes extend the log; the old checkpoint still holds, and a proof links the two.
    rename(&db, 2, "later").await;
    let again = sequence(&db, registry(), &SequenceOptions::default())
        .await
        .unwrap();
    assert_eq!((again.appended, again.size), (1, 10));
    assert!(verify(&db, &checkpoint).await.ok());
    let newer = make_checkpoint(&db, &key()).await.unwrap();
    assert_eq!(newer.size, 10);
    let proof = consistency_proof(&db, 9, 10).await.unwrap();
    assert_eq!(proof.from_root, checkpoint.root);
    let latest = shelf_records(&db, "2").await.pop().unwrap();
    let inclusion = inclusion_proof(&db, latest.id, None).await.unwrap();
    assert_eq!((inclusion.log_index, inclusion.tree_size), (9, 10));
    let path: Vec<[u8; 32]> = inclusion.hashes.iter().map(|h| h.0).collect();
    assert!(
        chronicle_test_support::inclusion_holds(&path, 10, inclusion.root.0, 9, inclusion.leaf.0),
        "the proof checks against the root"
    );
    assert!(!chronicle_test_support::inclusion_holds(
        &path,
        10,
        inclusion.root.0,
        8,
        inclusion.leaf.0
    ));
    // A second run finds nothing to do; a checkpoint of the same size is the same one.
    assert_eq!(
        sequence(
            &db,
            registry(),
            &SequenceOptions {
                full_sweep: true,
                ..SequenceOptions::default()
            }
        )
        .await
        .unwrap()
        .appended,
        0
    );
    assert_eq!(make_checkpoint(&db, &key()).await.unwrap().note, newer.note);
}

async fn an_edited_record_is_named(backend: Backend) {
    let (_guard, db, checkpoint) = logged(backend).await;
    let snapshot = json_literal(&db, &serde_json::json!({"id": 2, "name": "forged"}));
    behind_the_back(
        &db,
        &format!(
            "UPDATE shelf_history SET snapshot = {snapshot} WHERE object_id = '2' AND version = 2"
        ),
    )
    .await;
    let fault = verify(&db, &checkpoint).await.fault.expect("a fault");
    assert_eq!(
        (
            fault.entity.as_deref(),
            fault.object_id.as_deref(),
            fault.version
        ),
        (Some("SHELF"), Some("2"), Some(2))
    );
    assert!(fault.reason.contains("edited"), "{fault}");
}

async fn a_chain_rewritten_consistently_is_named_though_its_own_hashes_verify(backend: Backend) {
    let (_guard, db, checkpoint) = logged(backend).await;
    // The administrator renames shelf 3 throughout its history and recomputes every hash.
    let mut previous: Option<String> = None;
    for mut row in shelf_records(&db, "3").await {
        row.snapshot["name"] = serde_json::json!(format!("rewritten v{}", row.version));
        let hash = record_hash("SHELF", &row, previous.as_deref());
        let snapshot = json_literal(&db, &row.snapshot);
        behind_the_back(
            &db,
            &format!(
                "UPDATE shelf_history SET snapshot = {snapshot}, hash = '{hash}' \
                 WHERE object_id = '3' AND version = {}",
                row.version
            ),
        )
        .await;
        previous = Some(hash);
    }
    let info = registry().get("SHELF").unwrap();
    let chain = sea_orm_history::verify::verify_object(&db, info, "3")
        .await
        .unwrap();
    assert!(chain.ok(), "the rewritten chain is consistent in itself");
    let fault = verify(&db, &checkpoint).await.fault.expect("a fault");
    assert_eq!(
        (fault.object_id.as_deref(), fault.version),
        (Some("3"), Some(1)),
        "{fault}"
    );
    assert!(fault.reason.contains("rewritten"), "{fault}");
}

async fn deleted_newest_records_are_named(backend: Backend) {
    let (_guard, db, checkpoint) = logged(backend).await;
    behind_the_back(
        &db,
        "DELETE FROM shelf_history WHERE object_id = '1' AND version = 3",
    )
    .await;
    let fault = verify(&db, &checkpoint).await.fault.expect("a fault");
    assert_eq!(
        (fault.object_id.as_deref(), fault.version),
        (Some("1"), Some(3))
    );
    assert!(fault.reason.contains("gone"), "{fault}");
}

async fn a_record_inserted_into_the_past_is_named(backend: Backend) {
    let (_guard, db, checkpoint) = logged(backend).await;
    // A whole object made up, dated yesterday, with a valid hash.
    let mut row = shelf_records(&db, "1").await.remove(0);
    row.id = uuid_v7();
    row.object_id = "99".into();
    row.snapshot = serde_json::json!({"id": 99, "name": "ghost"});
    row.at -= chrono::Duration::days(1);
    row.hash = record_hash("SHELF", &row, None);
    insert_record(&db, &row).await;
    let fault = verify(&db, &checkpoint).await.fault.expect("a fault");
    assert_eq!(
        (fault.object_id.as_deref(), fault.version),
        (Some("99"), Some(1)),
        "{fault}"
    );
    assert!(fault.reason.contains("inserted into the past"), "{fault}");
}

fn uuid_v7() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

async fn edits_to_the_logs_own_tables_are_caught(backend: Backend) {
    let (_guard, db, checkpoint) = logged(backend).await;
    // The log's entry for index 4 made to agree with a forged record…
    db.execute_unprepared(&format!(
        "UPDATE history_log_entry SET record_hash = '{}' WHERE idx = 4",
        "0".repeat(64)
    ))
    .await
    .unwrap();
    let fault = verify(&db, &checkpoint).await.fault.expect("a fault");
    assert_eq!(fault.log_index, Some(4), "{fault}");
    db.execute_unprepared("DELETE FROM history_log_entry WHERE idx = 4")
        .await
        .unwrap();
    let fault = verify(&db, &checkpoint).await.fault.expect("a fault");
    assert_eq!(fault.log_index, Some(4), "{fault}");
    assert!(fault.reason.contains("missing"), "{fault}");

    // …and, on a fresh log, an interior hash of the stored tree.
    let (_guard, db, checkpoint) = logged(backend).await;
    // Stored hash index 14 is the root of the first eight records' subtree.
    db.execute_unprepared(&format!(
        "UPDATE history_log_hash SET hash = '{}' WHERE idx = 14",
        "1".repeat(64)
    ))
    .await
    .unwrap();
    let fault = verify(&db, &checkpoint).await.fault.expect("a fault");
    assert!(fault.reason.contains("stored"), "{fault}");
    // The log shrunk under a checkpoint.
    db.execute_unprepared("UPDATE history_log_state SET size = 5 WHERE id = 1")
        .await
        .unwrap();
    let fault = verify(&db, &checkpoint).await.fault.expect("a fault");
    assert!(
        fault.reason.contains("fewer than the checkpoint"),
        "{fault}"
    );
}

async fn forged_checkpoints_are_refused(backend: Backend) {
    let (_guard, db, checkpoint) = logged(backend).await;
    let public = pem("checkpoint-public.pem");
    // Signed by another key for the same origin.
    let other = CheckpointKey::from_pem(&pem("other-private.pem"), "catalogue.test/log").unwrap();
    let forged = other.sign(checkpoint.size, &checkpoint.root).unwrap();
    assert!(parse_checkpoint(&forged, None).is_ok(), "well-formed");
    assert!(parse_checkpoint(&forged, Some(&public)).is_err());
    // The root or the size changed under the genuine signature.
    let root_line = checkpoint.note.lines().nth(2).unwrap().to_owned();
    let changed_root = checkpoint
        .note
        .replacen(&root_line, &format!("{}=", "A".repeat(43)), 1);
    assert!(parse_checkpoint(&changed_root, None).is_ok(), "well-formed");
    assert!(parse_checkpoint(&changed_root, Some(&public)).is_err());
    let grown = checkpoint.note.replacen("\n9\n", "\n90\n", 1);
    assert!(parse_checkpoint(&grown, Some(&public)).is_err());
    // Unsigned, it reads; against the log, a tree of 90 records is one the log never had.
    let unchecked = parse_checkpoint(&grown, None).unwrap();
    assert!(verify(&db, &unchecked).await.fault.is_some());
}

async fn kept_cursors_find_late_commits_within_the_window_and_a_full_sweep_the_rest(
    backend: Backend,
) {
    let (_guard, db, _) = logged(backend).await;
    let mut cursors = sea_orm_history::log::Cursors::default();
    rename(&db, 1, "shelf 1 v3").await;
    let options = SequenceOptions::default();
    let report = sea_orm_history::log::sequence_on(&db, registry(), &options, &mut cursors)
        .await
        .unwrap();
    assert_eq!((report.appended, report.size), (1, 10));

    // Records whose transactions committed late: dated half a minute and an hour ago, behind the
    // cursor; the first within the window a run looks back, the second not.
    for (object, ago) in [("98", 30), ("97", 3_600)] {
        late_record(&db, object, chrono::Duration::seconds(ago)).await;
    }
    let resumed = sea_orm_history::log::sequence_on(&db, registry(), &options, &mut cursors)
        .await
        .unwrap();
    assert_eq!((resumed.appended, resumed.size), (1, 11));
    let again = sea_orm_history::log::sequence_on(&db, registry(), &options, &mut cursors)
        .await
        .unwrap();
    assert_eq!(again.appended, 0, "only a full sweep looks further back");
    let full = SequenceOptions {
        full_sweep: true,
        ..SequenceOptions::default()
    };
    let swept = sequence(&db, registry(), &full).await.unwrap();
    assert_eq!((swept.appended, swept.size), (1, 12));
}

/// Inserts a record of a made-up shelf `object` dated `ago` before now, as a late commit leaves it.
async fn late_record(db: &DatabaseConnection, object: &str, ago: chrono::Duration) {
    let mut row = shelf_records(db, "2").await.remove(0);
    row.id = uuid_v7();
    row.object_id = object.into();
    row.at = sea_orm_history::now() - ago;
    row.hash = record_hash("SHELF", &row, None);
    insert_record(db, &row).await;
}

/// Inserts `row` into `shelf_history` behind the engine's back.
async fn insert_record(db: &DatabaseConnection, row: &HistoryRow) {
    let insert = sea_orm::sea_query::Query::insert()
        .into_table(sea_orm::sea_query::Alias::new("shelf_history"))
        .columns(HISTORY_COLUMNS.map(sea_orm::sea_query::Alias::new))
        .values([
            row.id.into(),
            row.object_id.clone().into(),
            row.version.into(),
            row.kind.as_str().into(),
            row.at.into(),
            row.actor.clone().into(),
            row.app.clone().into(),
            row.assignation_id.clone().into(),
            row.step.into(),
            row.reason.clone().into(),
            sea_orm::Value::Json(Some(Box::new(row.snapshot.clone()))).into(),
            row.hash.clone().into(),
            row.scope_id.clone().into(),
            row.trace_id.clone().into(),
            row.span_id.clone().into(),
        ])
        .unwrap()
        .to_owned();
    db.execute(&insert).await.unwrap();
}
