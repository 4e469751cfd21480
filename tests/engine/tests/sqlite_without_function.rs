//! A SQLite connection without `sea_orm_history_sha256` (no `sea_orm_history::sqlite::install`): the
//! writer notices before anything is written and takes the two-hop path, with the same records. Its
//! own test binary, as what the writer learns here holds for the rest of the process.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use history_engine_tests::{Catalogue, migrate, shelf};
use sea_orm::{ActiveModelTrait, Database, EntityTrait, IntoActiveModel, Set};
use sea_orm_history::{AssignationId, ChangeContext, EntitySet, HistoryKind, query, verify, write};

#[tokio::test]
async fn a_connection_without_the_hash_function_still_records_every_change_once_and_chains() {
    let db = Database::connect("sqlite::memory:").await.expect("sqlite");
    migrate(&db).await;
    let registry = Catalogue::registry().expect("the catalogue's registry checks");
    let ctx = |id: &str| ChangeContext::new(registry, AssignationId::parse(id).unwrap()).user("bo");
    assert!(sea_orm_history::sqlite::one_hop_writes(), "nothing met yet");

    // Created through the writer: the first write meets the missing function.
    let made = ctx("made")
        .scope(async {
            let txn = sea_orm_history::begin(&db).await.expect("begin");
            let shelf = shelf::ActiveModel {
                id: Set(3),
                name: Set("Poetry".into()),
            };
            let made = write::insert(&txn, shelf).await.expect("the insert");
            txn.commit().await.expect("commit");
            made
        })
        .await;
    assert_eq!(made.name, "Poetry");
    assert!(!sea_orm_history::sqlite::one_hop_writes());
    // Renamed through the hook, then deleted through the writer.
    ctx("renamed")
        .scope(async {
            let txn = sea_orm_history::begin(&db).await.expect("begin");
            let mut shelf = made.clone().into_active_model();
            shelf.name = Set("Verse".into());
            shelf.update(&txn).await.expect("the update");
            txn.commit().await.expect("commit");
        })
        .await;
    ctx("gone")
        .scope(async {
            let txn = sea_orm_history::begin(&db).await.expect("begin");
            let row = shelf::Entity::find_by_id(3)
                .one(&txn)
                .await
                .expect("read")
                .expect("the shelf");
            write::delete(&txn, row.into_active_model())
                .await
                .expect("the delete");
            txn.commit().await.expect("commit");
        })
        .await;

    assert!(
        shelf::Entity::find_by_id(3)
            .one(&db)
            .await
            .unwrap()
            .is_none()
    );
    let info = registry.get("SHELF").unwrap();
    let rows = query::object_history(&db, info, "3", 10, None)
        .await
        .expect("history")
        .items;
    let kinds: Vec<_> = rows.iter().map(|r| (r.version, r.kind)).collect();
    assert_eq!(
        kinds,
        [
            (3, HistoryKind::Delete),
            (2, HistoryKind::Update),
            (1, HistoryKind::Create)
        ]
    );
    assert_eq!(rows[2].snapshot["name"], "Poetry");
    let report = verify::verify_table(&db, info, |_| {})
        .await
        .expect("verify");
    assert_eq!((report.records, report.objects), (3, 1));
    assert!(report.broken.is_empty(), "{report:?}");
}
