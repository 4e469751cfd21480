//! `sea-orm-history`'s engine without HTTP, on SQLite in memory, and PostgreSQL and MariaDB when
//! configured: capture through the hooks in the change's transaction, the registry's checks and its
//! foreign-key order, cascades with history, revert planning (later and interleaved changes,
//! dependents, unique keys), composite keys, as-of reads, and the hash chain.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use chronicle_test_support::Backend;
use history_engine_tests::{Catalogue, book, category, edition, fresh, loan, note, shelf};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use sea_orm_history::revert::{RevertOptions, preview_revert, revert_assignation};
use sea_orm_history::{
    AssignationId, ChangeContext, ConflictReason, EntitySet, HistoryError, HistoryKind, Registry,
    Trace, query, verify, write,
};

history_engine_tests::on_every_database!(
    a_change_is_historized_in_its_own_transaction_and_a_rollback_leaves_nothing,
    deleting_a_parent_cascades_and_sets_null_with_history_children_first,
    a_revert_restores_a_deleted_shelf_with_its_books_editions_and_notes,
    a_change_made_in_between_by_another_assignation_is_a_conflict,
    a_dependent_row_added_since_is_a_conflict_and_force_deletes_it,
    a_unique_value_taken_since_blocks_even_a_forced_revert,
    a_composite_key_names_its_object_and_reads_back_as_of_an_instant,
    an_edition_takes_its_books_shelf_as_scope_however_often_the_book_changed,
    verification_names_the_first_version_edited_behind_the_engines_back,
    a_revert_that_hands_a_unique_value_back_frees_it_first,
    a_change_may_not_join_an_assignation_that_was_reverted,
    a_tree_revert_undoes_interleaved_changes_of_parent_and_child_as_one,
    a_change_made_in_a_trace_keeps_its_ids_and_is_found_by_them,
    saving_a_row_unchanged_writes_no_record_and_opens_no_assignation,
    text_that_looks_like_sql_is_recorded_verbatim,
    a_row_written_with_its_record_is_recorded_once_and_chains,
    an_update_through_the_writer_of_a_missing_row_records_nothing,
    a_locked_row_deleted_through_the_writer_cascades_and_is_recorded_once,
    a_delete_through_the_writer_of_a_missing_row_records_nothing,
    a_row_nothing_points_at_is_deleted_through_the_writer_with_one_record,
    a_book_on_loan_is_not_deleted_and_nothing_is_recorded,
    a_category_deleted_through_the_writer_takes_its_subcategories_along,
    the_trace_parent_and_root_indexes_cover_only_the_rows_that_need_them,
);

fn registry() -> &'static Registry {
    Catalogue::registry().expect("the catalogue's registry checks")
}

fn ctx(id: &str) -> ChangeContext {
    ChangeContext::new(registry(), AssignationId::parse(id).unwrap()).user("alice")
}

/// Runs `work` in one transaction of assignation `id` and commits.
async fn change<F>(db: &DatabaseConnection, id: &str, work: F)
where
    F: AsyncFnOnce(&sea_orm::DatabaseTransaction) -> Result<(), sea_orm::DbErr>,
{
    ctx(id)
        .scope(async {
            let txn = sea_orm_history::begin(db).await.expect("begin");
            work(&txn).await.expect("the change");
            txn.commit().await.expect("commit");
        })
        .await;
}

async fn new_shelf(db: &sea_orm::DatabaseTransaction, name: &str) -> Result<i32, sea_orm::DbErr> {
    Ok(shelf::ActiveModel {
        name: Set(name.into()),
        ..Default::default()
    }
    .insert(db)
    .await?
    .id)
}

async fn new_book(
    db: &sea_orm::DatabaseTransaction,
    shelf: i32,
    isbn: &str,
) -> Result<i32, sea_orm::DbErr> {
    Ok(book::ActiveModel {
        isbn: Set(isbn.into()),
        title: Set(format!("Book {isbn}")),
        shelf_id: Set(shelf),
        updated_at: Set(sea_orm_history::now()),
        ..Default::default()
    }
    .insert(db)
    .await?
    .id)
}

/// Edition `number` of `book`, from `year`.
async fn new_edition(
    db: &sea_orm::DatabaseTransaction,
    book: i32,
    number: i32,
    year: i32,
) -> Result<(), sea_orm::DbErr> {
    edition::ActiveModel {
        book_id: Set(book),
        number: Set(number),
        year: Set(year),
    }
    .insert(db)
    .await
    .map(|_| ())
}

/// The row `id` of `E`, read under lock in `txn` (as a service reads what it deletes).
async fn locked<E>(txn: &sea_orm::DatabaseTransaction, id: i32) -> Result<E::Model, sea_orm::DbErr>
where
    E: EntityTrait,
    <E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType: From<i32>,
{
    Ok(E::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .expect("the row exists"))
}

/// Whether the database holds no shelf `id`.
async fn no_shelf(db: &DatabaseConnection, id: i32) -> bool {
    shelf::Entity::find_by_id(id)
        .one(db)
        .await
        .expect("read the shelf")
        .is_none()
}

/// The shelf `id` as the database holds it.
async fn stored_shelf(db: &DatabaseConnection, id: i32) -> shelf::Model {
    shelf::Entity::find_by_id(id)
        .one(db)
        .await
        .expect("read the shelf")
        .expect("the shelf exists")
}

async fn records(
    db: &DatabaseConnection,
    entity: &str,
    id: &str,
) -> Vec<sea_orm_history::HistoryRow> {
    let info = registry().get(entity).expect("registered");
    query::object_history(db, info, id, 100, None)
        .await
        .expect("history")
        .items
}

#[test]
fn the_registry_orders_parents_first_whatever_order_it_is_listed_in() {
    let names: Vec<&str> = registry()
        .entities()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["CATEGORY", "SHELF", "BOOK", "LOAN", "EDITION", "NOTE"]
    );
    let book = registry().get("BOOK").unwrap();
    assert_eq!(book.unique.len(), 1, "the ISBN is a unique key");
    let dependents: Vec<&str> = registry()
        .dependents_of("book")
        .map(|(e, _)| e.name.as_str())
        .collect();
    assert_eq!(
        dependents,
        ["NOTE", "EDITION", "LOAN"],
        "the reverse order: children first"
    );
}

#[test]
fn a_registry_refuses_a_cascade_from_a_table_that_is_not_historized() {
    // Books cascade from shelves: without shelves in the registry, deleting a shelf would delete books
    // without history.
    let refused = Registry::builder().entity::<book::Entity>().build();
    let Err(HistoryError::Registry(why)) = refused else {
        panic!("accepted");
    };
    assert!(why.contains("shelf"), "{why}");
    // Every entity declared in this program must be registered.
    let partial = Registry::builder()
        .entity::<shelf::Entity>()
        .entity::<book::Entity>()
        .entity::<edition::Entity>()
        .build()
        .expect("builds");
    let Err(HistoryError::Registry(why)) = partial.check_declared() else {
        panic!("a declared entity is missing and nothing says so");
    };
    assert_eq!(
        why,
        "the entities of tables category, loan, note are declared historized but not registered: \
         add them to the registry"
    );
    // A registry! whose variant is not named after its entity says so, once.
    sea_orm_history::registry! {
        enum Misnamed {
            Bookshelf => shelf::Entity,
        }
    }
    let Err(refused) = <Misnamed as sea_orm_history::EntitySet>::registry() else {
        panic!("a variant named after another entity is accepted");
    };
    assert_eq!(
        refused.to_string(),
        "the history registry: the variant Bookshelf stands for the entity named SHELF: name the \
         variant after it, or declare the entity with name = \"BOOKSHELF\""
    );
}

async fn a_change_is_historized_in_its_own_transaction_and_a_rollback_leaves_nothing(
    backend: Backend,
) {
    let (_guard, db) = fresh(backend).await;
    change(&db, "kept", async |txn| {
        new_shelf(txn, "Fiction").await.map(|_| ())
    })
    .await;
    ctx("rolled-back")
        .scope(async {
            let txn = sea_orm_history::begin(&db).await.unwrap();
            new_shelf(&txn, "Gone").await.unwrap();
            txn.rollback().await.unwrap();
        })
        .await;
    assert_eq!(shelf::Entity::find().count(&db).await.unwrap(), 1);
    let kept = records(&db, "SHELF", "1").await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].kind, HistoryKind::Create);
    assert_eq!(kept[0].actor.as_deref(), Some("alice"));
    assert_eq!(
        kept[0].scope_id.as_deref(),
        Some("1"),
        "a shelf is its own scope"
    );
    assert!(records(&db, "SHELF", "2").await.is_empty());

    // Outside a change context a historized write is refused and writes nothing.
    let refused = shelf::ActiveModel {
        name: Set("no context".into()),
        ..Default::default()
    }
    .insert(&db)
    .await;
    let error = HistoryError::from(refused.expect_err("refused"));
    assert!(matches!(error, HistoryError::NoContext), "{error}");
    assert_eq!(shelf::Entity::find().count(&db).await.unwrap(), 1);
}

/// Shelf 1, "Fiction", holding a book of each of `isbns`, the first with an edition and a note
/// (assignation "setup").
async fn shelve(db: &DatabaseConnection, isbns: &[&str]) {
    change(db, "setup", async |txn| {
        let shelf = new_shelf(txn, "Fiction").await?;
        let mut books = Vec::new();
        for isbn in isbns {
            books.push(new_book(txn, shelf, isbn).await?);
        }
        new_edition(txn, books[0], 1, 1999).await?;
        note::ActiveModel {
            text: Set("worn cover".into()),
            book_id: Set(Some(books[0])),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        Ok(())
    })
    .await;
}

/// After [`shelve`]'s shelf was deleted in assignation "clear": its books and editions are gone, the
/// note is kept with its key set to NULL, and "clear" recorded `expected`.
async fn assert_cleared(db: &DatabaseConnection, expected: &[&str]) {
    assert_eq!(book::Entity::find().count(db).await.unwrap(), 0);
    assert_eq!(edition::Entity::find().count(db).await.unwrap(), 0);
    let orphan = note::Entity::find().one(db).await.unwrap().unwrap();
    assert_eq!(orphan.book_id, None, "SET NULL, as the key says");
    assert_eq!(steps(db, "clear").await, expected);
}

/// The entity and kind of each record of assignation `id` ("BOOK DELETE"), in step order.
async fn steps(db: &DatabaseConnection, id: &str) -> Vec<String> {
    let assignation = query::find_assignation(db, &AssignationId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let page = query::assignation_records(db, registry(), &assignation, 100, None)
        .await
        .unwrap();
    page.items
        .iter()
        .map(|(e, r)| format!("{} {}", e.name, r.kind.as_str()))
        .collect()
}

async fn deleting_a_parent_cascades_and_sets_null_with_history_children_first(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    shelve(&db, &["111"]).await;
    let shelf = shelf::Entity::find_by_id(1)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    change(&db, "clear", async |txn| {
        shelf.into_active_model().delete(txn).await.map(|_| ())
    })
    .await;

    assert_cleared(
        &db,
        &[
            "NOTE UPDATE",
            "EDITION DELETE",
            "BOOK DELETE",
            "SHELF DELETE",
        ],
    )
    .await;
}

async fn a_revert_restores_a_deleted_shelf_with_its_books_editions_and_notes(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    change(&db, "setup", async |txn| {
        let shelf = new_shelf(txn, "Fiction").await?;
        for isbn in ["111", "222"] {
            let book = new_book(txn, shelf, isbn).await?;
            new_edition(txn, book, 1, 2001).await?;
        }
        note::ActiveModel {
            text: Set("first shelf".into()),
            book_id: Set(Some(1)),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        Ok(())
    })
    .await;
    let before = (
        book::Entity::find().all(&db).await.unwrap(),
        edition::Entity::find().all(&db).await.unwrap(),
        note::Entity::find().all(&db).await.unwrap(),
    );
    let shelf = shelf::Entity::find_by_id(1)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    change(&db, "clear", async |txn| {
        shelf.into_active_model().delete(txn).await.map(|_| ())
    })
    .await;

    let clear = AssignationId::parse("clear").unwrap();
    let plan = preview_revert(&db, registry(), &clear, &RevertOptions::default())
        .await
        .unwrap();
    assert!(plan.conflicts.is_empty());
    assert_eq!(plan.changes.len(), 1 + 2 + 2 + 1);
    assert_eq!(
        book::Entity::find().count(&db).await.unwrap(),
        0,
        "a preview writes nothing"
    );

    let undo = ChangeContext::fresh(registry())
        .user("alice")
        .scope(revert_assignation(&db, &clear, &RevertOptions::default()))
        .await
        .unwrap();
    assert_eq!(undo.reverts.as_deref(), Some("clear"));
    let after = (
        book::Entity::find().all(&db).await.unwrap(),
        edition::Entity::find().all(&db).await.unwrap(),
        note::Entity::find().all(&db).await.unwrap(),
    );
    // Everything is back; the books' touch column says when the revert ran.
    assert_eq!(after.1, before.1);
    assert_eq!(after.2, before.2);
    for (was, is) in before.0.iter().zip(&after.0) {
        assert_eq!(
            (was.id, &was.isbn, &was.title),
            (is.id, &is.isbn, &is.title)
        );
        assert!(is.updated_at >= was.updated_at);
    }
    // A second revert is refused, as is its preview.
    let again = ChangeContext::fresh(registry())
        .scope(revert_assignation(&db, &clear, &RevertOptions::default()))
        .await;
    assert!(matches!(again, Err(HistoryError::AlreadyReverted { .. })));
}

async fn a_change_made_in_between_by_another_assignation_is_a_conflict(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    change(&db, "setup", async |txn| {
        new_shelf(txn, "A").await.map(|_| ())
    })
    .await;
    let rename = async |id: &str, name: &str| {
        let shelf = shelf::Entity::find_by_id(1)
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        change(&db, id, async |txn| {
            let mut active = shelf.into_active_model();
            active.name = Set(name.into());
            active.update(txn).await.map(|_| ())
        })
        .await;
    };
    // Versions 2 and 4 are "mine"; version 3, between them, is somebody else's.
    rename("mine", "B").await;
    rename("theirs", "C").await;
    rename("mine", "D").await;
    let mine = AssignationId::parse("mine").unwrap();
    let plan = preview_revert(&db, registry(), &mine, &RevertOptions::default())
        .await
        .unwrap();
    assert_eq!(plan.conflicts.len(), 1);
    assert_eq!(plan.conflicts[0].assignation_id, "theirs");
    assert_eq!(plan.conflicts[0].reason, ConflictReason::ChangedSince);
    let refused = ChangeContext::fresh(registry())
        .scope(revert_assignation(&db, &mine, &RevertOptions::default()))
        .await;
    assert!(matches!(refused, Err(HistoryError::Conflict(_))));
    assert_eq!(
        shelf::Entity::find_by_id(1)
            .one(&db)
            .await
            .unwrap()
            .unwrap()
            .name,
        "D"
    );
}

async fn a_dependent_row_added_since_is_a_conflict_and_force_deletes_it(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    change(&db, "make", async |txn| {
        new_shelf(txn, "New").await.map(|_| ())
    })
    .await;
    change(&db, "fill", async |txn| {
        new_book(txn, 1, "333").await.map(|_| ())
    })
    .await;
    let make = AssignationId::parse("make").unwrap();
    let plan = preview_revert(&db, registry(), &make, &RevertOptions::default())
        .await
        .unwrap();
    assert_eq!(plan.conflicts.len(), 1);
    assert_eq!(plan.conflicts[0].entity, "BOOK");
    assert_eq!(plan.conflicts[0].reason, ConflictReason::Dependent);
    let forced = RevertOptions {
        force: true,
        ..RevertOptions::default()
    };
    ChangeContext::fresh(registry())
        .scope(revert_assignation(&db, &make, &forced))
        .await
        .unwrap();
    assert_eq!(shelf::Entity::find().count(&db).await.unwrap(), 0);
    assert_eq!(book::Entity::find().count(&db).await.unwrap(), 0);
    let book = records(&db, "BOOK", "1").await;
    assert_eq!(
        book[0].kind,
        HistoryKind::Delete,
        "the forced delete is history too"
    );
}

async fn a_unique_value_taken_since_blocks_even_a_forced_revert(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    change(&db, "setup", async |txn| {
        let shelf = new_shelf(txn, "S").await?;
        new_book(txn, shelf, "444").await.map(|_| ())
    })
    .await;
    let book = book::Entity::find_by_id(1).one(&db).await.unwrap().unwrap();
    change(&db, "drop", async |txn| {
        book.into_active_model().delete(txn).await.map(|_| ())
    })
    .await;
    change(&db, "reuse", async |txn| {
        new_book(txn, 1, "444").await.map(|_| ())
    })
    .await;
    let forced = RevertOptions {
        force: true,
        ..RevertOptions::default()
    };
    let refused = ChangeContext::fresh(registry())
        .scope(revert_assignation(
            &db,
            &AssignationId::parse("drop").unwrap(),
            &forced,
        ))
        .await;
    let Err(HistoryError::Conflict(conflicts)) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(conflicts[0].reason, ConflictReason::UniqueTaken);
    assert_eq!(conflicts[0].object_id, "2");
    assert_eq!(conflicts[0].assignation_id, "reuse");
    assert_eq!(book::Entity::find().count(&db).await.unwrap(), 1);
}

async fn an_edition_takes_its_books_shelf_as_scope_however_often_the_book_changed(
    backend: Backend,
) {
    let (_guard, db) = fresh(backend).await;
    let mut ids = (0, 0);
    change(&db, "setup", async |txn| {
        new_shelf(txn, "Other").await?;
        let shelf = new_shelf(txn, "Kept").await?;
        ids = (shelf, new_book(txn, shelf, "777").await?);
        Ok(())
    })
    .await;
    let (shelf, book) = ids;
    for round in 0..5 {
        change(&db, &format!("retitle-{round}"), async |txn| {
            let mut active = locked::<book::Entity>(txn, book).await?.into_active_model();
            active.title = Set(format!("Title {round}"));
            active.update(txn).await.map(|_| ())
        })
        .await;
    }
    // One edition through the hooks (the writer's statement), two through the bulk helper.
    let mut noted = 0;
    change(&db, "editions", async |txn| {
        new_edition(txn, book, 1, 2001).await?;
        noted = note::ActiveModel {
            text: Set("foxed".into()),
            book_id: Set(Some(book)),
            ..Default::default()
        }
        .insert(txn)
        .await?
        .id;
        sea_orm_history::capture::insert_with_history::<edition::Entity, _>(
            txn,
            &[2, 3].map(|number| edition::Model {
                book_id: book,
                number,
                year: 2000 + number,
            }),
        )
        .await
        .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))
    })
    .await;
    assert_eq!(records(&db, "BOOK", &book.to_string()).await.len(), 6);
    for number in 1..=3 {
        let history = records(&db, "EDITION", &format!("{book}:{number}")).await;
        assert_eq!(history.len(), 1, "edition {number}");
        assert_eq!(
            history[0].scope_id.as_deref(),
            Some(shelf.to_string().as_str()),
            "edition {number} is scoped by its book's shelf"
        );
    }
    // The scope as the library reads it back: a root's is itself, the others' their records'.
    let scope = async |entity: &str, id: String| {
        query::object_scope(&db, registry().get(entity).unwrap(), &id)
            .await
            .expect("the scope")
    };
    let kept = Some(shelf.to_string());
    assert_eq!(scope("SHELF", shelf.to_string()).await, kept);
    assert_eq!(scope("BOOK", book.to_string()).await, kept);
    assert_eq!(scope("EDITION", format!("{book}:2")).await, kept);
    assert_eq!(
        scope("BOOK", "404".into()).await,
        None,
        "no records, no scope"
    );
    assert_eq!(
        scope("SHELF", "404".into()).await,
        Some("404".into()),
        "a root is its own scope, read or not"
    );
    assert_eq!(
        scope("NOTE", noted.to_string()).await,
        None,
        "notes declare no scope"
    );
}

async fn a_composite_key_names_its_object_and_reads_back_as_of_an_instant(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    change(&db, "setup", async |txn| {
        let shelf = new_shelf(txn, "S").await?;
        let book = new_book(txn, shelf, "555").await?;
        new_edition(txn, book, 2, 1990).await
    })
    .await;
    let first = sea_orm_history::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let edition = edition::Entity::find_by_id((1, 2))
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    change(&db, "fix", async |txn| {
        let mut active = edition.into_active_model();
        active.year = Set(1991);
        active.update(txn).await.map(|_| ())
    })
    .await;
    let history = records(&db, "EDITION", "1:2").await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].snapshot["year"], 1991);
    assert_eq!(
        history[0].scope_id.as_deref(),
        Some("1"),
        "its book's shelf"
    );
    let then = query::model_as_of::<edition::Entity, _>(&db, registry(), "1:2", first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(then.year, 1990);
    let info = registry().get("EDITION").unwrap();
    assert_eq!(info.key_of("1:2"), Some(vec![1.into(), 2.into()]));
    assert_eq!(info.key_of("1"), None);
}

async fn verification_names_the_first_version_edited_behind_the_engines_back(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    change(&db, "setup", async |txn| {
        new_shelf(txn, "A").await.map(|_| ())
    })
    .await;
    for name in ["B", "C"] {
        let shelf = shelf::Entity::find_by_id(1)
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        change(&db, "edits", async |txn| {
            let mut active = shelf.into_active_model();
            active.name = Set(name.into());
            active.update(txn).await.map(|_| ())
        })
        .await;
    }
    let info = registry().get("SHELF").unwrap();
    let ok = verify::verify_object(&db, info, "1").await.unwrap();
    assert!(ok.ok() && ok.checked == 3);

    // An administrator switches the triggers off and edits version 2.
    let manager = sea_orm_migration::SchemaManager::new(&db);
    sea_orm_history::migration::unprotect_history_table(&manager, "shelf_history")
        .await
        .unwrap();
    let backend = db.get_database_backend();
    let edit = match backend {
        sea_orm::DbBackend::Postgres => {
            r#"UPDATE shelf_history SET snapshot = '{"id": 1, "name": "X"}' WHERE version = 2"#
        }
        _ => r#"UPDATE shelf_history SET snapshot = '{"id":1,"name":"X"}' WHERE version = 2"#,
    };
    let txn = db.begin().await.unwrap();
    txn.execute_unprepared(edit).await.unwrap();
    txn.commit().await.unwrap();
    let broken = verify::verify_object(&db, info, "1").await.unwrap();
    assert_eq!(broken.broken_at, Some(2));
    let report = verify::verify_table(&db, info, |_| {}).await.unwrap();
    assert_eq!(report.broken.len(), 1);
    assert_eq!(report.broken[0].version, 2);
}

async fn set_isbn(
    txn: &sea_orm::DatabaseTransaction,
    id: i32,
    isbn: &str,
) -> Result<(), sea_orm::DbErr> {
    let Some(book) = book::Entity::find_by_id(id).one(txn).await? else {
        return Err(sea_orm::DbErr::RecordNotFound(format!("book {id}")));
    };
    let mut active = book.into_active_model();
    active.isbn = Set(isbn.into());
    active.update(txn).await.map(|_| ())
}

async fn a_revert_that_hands_a_unique_value_back_frees_it_first(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    change(&db, "setup", async |txn| {
        let shelf = new_shelf(txn, "S").await?;
        new_book(txn, shelf, "AAA").await?;
        new_book(txn, shelf, "BBB").await.map(|_| ())
    })
    .await;
    // Book 1 moves off AAA, then book 2 takes it. Undone newest first, book 2 gives AAA back before
    // book 1 asks for it; undone in any other order, the unique key would refuse.
    change(&db, "shuffle", async |txn| {
        set_isbn(txn, 1, "CCC").await?;
        set_isbn(txn, 2, "AAA").await
    })
    .await;
    ChangeContext::fresh(registry())
        .scope(revert_assignation(
            &db,
            &AssignationId::parse("shuffle").unwrap(),
            &RevertOptions::default(),
        ))
        .await
        .expect("the revert orders the vacating change first");
    let isbns: Vec<String> = book::Entity::find()
        .order_by_asc(book::Column::Id)
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.isbn)
        .collect();
    assert_eq!(isbns, ["AAA", "BBB"]);
    assert_eq!(records(&db, "BOOK", "1").await.len(), 3);
}

async fn a_change_may_not_join_an_assignation_that_was_reverted(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    change(&db, "once", async |txn| {
        new_shelf(txn, "S").await.map(|_| ())
    })
    .await;
    let once = AssignationId::parse("once").unwrap();
    ChangeContext::fresh(registry())
        .scope(revert_assignation(&db, &once, &RevertOptions::default()))
        .await
        .unwrap();
    // Refused when the transaction begins, and by the hooks when it was begun without the library.
    let at_begin = ctx("once").scope(sea_orm_history::begin(&db)).await;
    assert!(
        matches!(at_begin, Err(HistoryError::Forbidden(ref m)) if m.contains("was reverted")),
        "{:?}",
        at_begin.map(|_| ())
    );
    let in_hook = ctx("once")
        .scope(async {
            let txn = db.begin().await.expect("begin");
            new_shelf(&txn, "T").await
        })
        .await
        .map_err(HistoryError::from);
    assert!(
        matches!(in_hook, Err(HistoryError::Forbidden(ref m)) if m.contains("was reverted")),
        "{in_hook:?}"
    );
    assert_eq!(shelf::Entity::find().count(&db).await.unwrap(), 0);
    let history = registry().get("SHELF").unwrap();
    let rows = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {}", history.history_table),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rows.try_get::<i64>("", "n").unwrap(),
        2,
        "S and its revert; nothing of T"
    );
}

/// Runs `work` in assignation `id`, a child of `parent`, and commits.
async fn change_in_tree<F>(db: &DatabaseConnection, id: &str, parent: &str, work: F)
where
    F: AsyncFnOnce(&sea_orm::DatabaseTransaction) -> Result<(), sea_orm::DbErr>,
{
    let lineage = sea_orm_history::Lineage {
        parent: Some(AssignationId::parse(parent).unwrap()),
        root: Some(AssignationId::parse(parent).unwrap()),
        ..sea_orm_history::Lineage::default()
    };
    ctx(id)
        .lineage(lineage)
        .scope(async {
            let txn = sea_orm_history::begin(db).await.expect("begin");
            work(&txn).await.expect("the change");
            txn.commit().await.expect("commit");
        })
        .await;
}

async fn rename(txn: &sea_orm::DatabaseTransaction, name: &str) -> Result<(), sea_orm::DbErr> {
    let Some(shelf) = shelf::Entity::find_by_id(1).one(txn).await? else {
        return Err(sea_orm::DbErr::RecordNotFound("shelf 1".into()));
    };
    let mut active = shelf.into_active_model();
    active.name = Set(name.into());
    active.update(txn).await.map(|_| ())
}

async fn a_tree_revert_undoes_interleaved_changes_of_parent_and_child_as_one(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    change(&db, "before", async |txn| {
        new_shelf(txn, "A").await.map(|_| ())
    })
    .await;
    // Parent, child, parent again: undone per assignation, each would conflict with the other.
    change(&db, "top", async |txn| rename(txn, "B").await).await;
    change_in_tree(&db, "below", "top", async |txn| rename(txn, "C").await).await;
    change(&db, "top", async |txn| rename(txn, "D").await).await;
    let top = AssignationId::parse("top").unwrap();
    let alone = preview_revert(&db, registry(), &top, &RevertOptions::default())
        .await
        .unwrap();
    assert_eq!(
        alone.conflicts.len(),
        1,
        "alone, the child's change is in between"
    );
    let tree = RevertOptions {
        include_descendants: true,
        ..RevertOptions::default()
    };
    let plan = preview_revert(&db, registry(), &top, &tree).await.unwrap();
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    let undo = ChangeContext::fresh(registry())
        .scope(revert_assignation(&db, &top, &tree))
        .await
        .unwrap();
    assert_eq!(undo.reverts.as_deref(), Some("top"));
    let shelf = shelf::Entity::find_by_id(1)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shelf.name, "A");
    let below = query::find_assignation(&db, &AssignationId::parse("below").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(below.reverted_by.as_deref(), Some(undo.id.as_str()));
    assert_eq!(below.parent_id.as_deref(), Some("top"));
    assert_eq!(below.root_id.as_deref(), Some("top"));
    assert_eq!(below.on_behalf_of.as_deref(), Some("alice"));
}

async fn a_change_made_in_a_trace_keeps_its_ids_and_is_found_by_them(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    let trace = Trace::new("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7").unwrap();
    // Made first: the bulk inserts below name their keys, which a sequence does not learn of.
    change(&db, "untraced", async |txn| {
        new_shelf(txn, "Untraced").await.map(|_| ())
    })
    .await;
    ctx("traced")
        .trace(trace.clone())
        .scope(async {
            let txn = sea_orm_history::begin(&db).await.unwrap();
            // One record through the hooks, two through a bulk helper.
            let id = new_shelf(&txn, "Traced").await.unwrap();
            sea_orm_history::capture::insert_with_history::<shelf::Entity, _>(
                &txn,
                &[
                    shelf::Model {
                        id: id + 1,
                        name: "Bulk 1".into(),
                    },
                    shelf::Model {
                        id: id + 2,
                        name: "Bulk 2".into(),
                    },
                ],
            )
            .await
            .unwrap();
            txn.commit().await.unwrap();
        })
        .await;
    let found = query::trace_history(&db, registry(), trace.trace_id(), 2, None)
        .await
        .unwrap();
    assert_eq!(found.total, 3);
    assert!(found.has_next);
    let names: Vec<&str> = found
        .items
        .iter()
        .map(|(_, r)| r.snapshot["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Traced", "Bulk 1"]);
    let last = &found.items[1].1;
    let rest = query::trace_history(
        &db,
        registry(),
        trace.trace_id(),
        2,
        Some((last.at, last.id)),
    )
    .await
    .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(!rest.has_next);
    for (_, row) in found.items.iter().chain(&rest.items) {
        assert_eq!(row.trace_id.as_deref(), Some(trace.trace_id()));
        assert_eq!(row.span_id.as_deref(), Some(trace.span_id()));
    }
    let untraced = records(&db, "SHELF", "1").await;
    assert_eq!(untraced[0].trace_id, None);
    assert_eq!(untraced[0].span_id, None);
}

async fn saving_a_row_unchanged_writes_no_record_and_opens_no_assignation(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    let mut id = 0;
    change(&db, "made", async |txn| {
        id = new_shelf(txn, "Poetry").await?;
        Ok(())
    })
    .await;
    let saved = stored_shelf(&db, id).await;
    // Every column written back as it is: the hook sees a snapshot equal to the latest record's.
    change(&db, "idle", async |txn| {
        saved
            .clone()
            .into_active_model()
            .reset_all()
            .update(txn)
            .await
            .map(|_| ())
    })
    .await;
    let key = id.to_string();
    assert_eq!(
        records(&db, "SHELF", &key).await.len(),
        1,
        "no record for a no-op"
    );
    let idle = AssignationId::parse("idle").unwrap();
    assert!(
        query::find_assignation(&db, &idle).await.unwrap().is_none(),
        "an update that changes nothing neither opens nor counts an assignation"
    );
    // A real change in the same assignation then takes its first step, the next version, and chains.
    change(&db, "idle", async |txn| {
        let mut renamed = saved.clone().into_active_model();
        renamed.name = Set("Verse".into());
        renamed.update(txn).await.map(|_| ())
    })
    .await;
    let rows = records(&db, "SHELF", &key).await;
    assert_eq!(rows.len(), 2);
    let (latest, first) = (&rows[0], &rows[1]);
    assert_eq!(
        (latest.version, latest.step, latest.kind),
        (2, 0, HistoryKind::Update)
    );
    assert_eq!(latest.scope_id.as_deref(), Some(key.as_str()));
    assert_eq!(
        latest.hash,
        sea_orm_history::record::record_hash("SHELF", latest, Some(&first.hash)),
        "the record chains to the one before"
    );
    let opened = query::find_assignation(&db, &idle)
        .await
        .unwrap()
        .expect("opened");
    assert_eq!(opened.change_count, 1);
}

async fn text_that_looks_like_sql_is_recorded_verbatim(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    // Quotes, backslashes, a statement separator, comment markers, a hex literal and non-ASCII text:
    // every value the writer sends (on MySQL inlined into its batch) must arrive as it was.
    let tricky = "O'Brien\\'s \"shelf\"; DROP TABLE shelf; -- `x` /* X'00' */ \\n \u{e9}\u{1f4da}";
    let mut id = 0;
    ChangeContext::new(registry(), AssignationId::parse("quoted").unwrap())
        .user(tricky)
        .reason(tricky)
        .scope(async {
            let txn = sea_orm_history::begin(&db).await.expect("begin");
            id = new_shelf(&txn, tricky).await.expect("the change");
            txn.commit().await.expect("commit");
        })
        .await;
    let stored = stored_shelf(&db, id).await;
    assert_eq!(stored.name, tricky);
    let rows = records(&db, "SHELF", &id.to_string()).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].snapshot["name"], serde_json::json!(tricky));
    assert_eq!(rows[0].actor.as_deref(), Some(tricky));
    assert_eq!(rows[0].reason.as_deref(), Some(tricky));
    assert_eq!(rows[0].assignation_id, "quoted");
    assert_eq!(
        rows[0].hash,
        sea_orm_history::record::record_hash("SHELF", &rows[0], None),
        "the hash the database chained is the one verify recomputes"
    );
}

/// Shelf 7, "Atlas", inserted through `write::insert` in assignation "made".
async fn atlas(db: &DatabaseConnection) -> shelf::Model {
    let mut made = None;
    change(db, "made", async |txn| {
        let shelf = shelf::ActiveModel {
            id: Set(7),
            name: Set("Atlas".into()),
        };
        made = Some(write::insert(txn, shelf).await?);
        Ok(())
    })
    .await;
    made.expect("inserted")
}

async fn a_row_written_with_its_record_is_recorded_once_and_chains(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    // Every column set: on PostgreSQL the row and its record are one statement, and the entity's
    // after_save hook, which still runs, must not record the row a second time.
    let made = atlas(&db).await;
    assert_eq!((made.id, made.name.as_str()), (7, "Atlas"));
    assert_eq!(stored_shelf(&db, 7).await, made);
    let rows = records(&db, "SHELF", "7").await;
    assert_eq!(rows.len(), 1, "one record: {rows:?}");
    assert_eq!(
        (rows[0].version, rows[0].step, rows[0].kind),
        (1, 0, HistoryKind::Create)
    );
    assert_eq!(
        rows[0].snapshot,
        serde_json::json!({"id": 7, "name": "Atlas"})
    );
    assert_eq!(rows[0].scope_id.as_deref(), Some("7"));
    assert_eq!(
        rows[0].hash,
        sea_orm_history::record::record_hash("SHELF", &rows[0], None)
    );
    // An update of one column, the others unchanged: the next version, chained.
    change(&db, "renamed", async |txn| {
        let mut renamed = made.clone().into_active_model();
        renamed.name = Set("Maps".into());
        let renamed = write::update(txn, renamed).await?;
        assert_eq!(renamed.name, "Maps");
        Ok(())
    })
    .await;
    assert_eq!(stored_shelf(&db, 7).await.name, "Maps");
    let rows = records(&db, "SHELF", "7").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].version, rows[0].step, rows[0].kind),
        (2, 0, HistoryKind::Update)
    );
    assert_eq!(rows[0].snapshot["name"], "Maps");
    assert_eq!(
        rows[0].hash,
        sea_orm_history::record::record_hash("SHELF", &rows[0], Some(&rows[1].hash))
    );
    // Every column written back as it is: no record, no assignation.
    let same = stored_shelf(&db, 7).await.into_active_model().reset_all();
    change(&db, "idle", async |txn| {
        write::update(txn, same).await.map(|_| ())
    })
    .await;
    assert_eq!(
        records(&db, "SHELF", "7").await.len(),
        2,
        "no record for a no-op"
    );
    let idle = AssignationId::parse("idle").unwrap();
    assert!(query::find_assignation(&db, &idle).await.unwrap().is_none());
    // Rolled back: neither the row nor its record.
    ctx("undone")
        .scope(async {
            let txn = sea_orm_history::begin(&db).await.expect("begin");
            let shelf = shelf::ActiveModel {
                id: Set(8),
                name: Set("Globes".into()),
            };
            write::insert(&txn, shelf).await.expect("the insert");
            txn.rollback().await.expect("rollback");
        })
        .await;
    assert!(no_shelf(&db, 8).await);
    assert!(records(&db, "SHELF", "8").await.is_empty());
    let report = verify::verify_table(&db, registry().get("SHELF").unwrap(), |_| {})
        .await
        .expect("verify");
    assert_eq!((report.records, report.objects), (2, 1));
    assert!(report.broken.is_empty(), "{report:?}");
    if backend == Backend::Sqlite {
        assert!(
            sea_orm_history::sqlite::one_hop_writes(),
            "SQLite's records were chained in the database, in the row's round trip"
        );
    }
}

async fn an_update_through_the_writer_of_a_missing_row_records_nothing(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    let outcome = ctx("ghost")
        .scope(async {
            let txn = sea_orm_history::begin(&db).await.expect("begin");
            let ghost = shelf::ActiveModel {
                id: sea_orm::ActiveValue::Unchanged(404),
                name: Set("Nowhere".into()),
            };
            let outcome = write::update(&txn, ghost).await;
            txn.commit().await.expect("commit");
            outcome
        })
        .await;
    assert!(
        matches!(outcome, Err(sea_orm::DbErr::RecordNotUpdated)),
        "{outcome:?}"
    );
    assert!(records(&db, "SHELF", "404").await.is_empty());
    let ghost = AssignationId::parse("ghost").unwrap();
    assert!(
        query::find_assignation(&db, &ghost)
            .await
            .unwrap()
            .is_none(),
        "no assignation is opened for a change that did not happen"
    );
}

async fn a_locked_row_deleted_through_the_writer_cascades_and_is_recorded_once(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    shelve(&db, &["111", "222"]).await;
    // The writer takes the row as it was read under lock; the hook does not read it again. Of the two
    // books, one has an edition and a note pointing at it and the other nothing.
    change(&db, "clear", async |txn| {
        let locked = locked::<shelf::Entity>(txn, 1).await?;
        let deleted = write::delete(txn, locked.into_active_model()).await?;
        assert_eq!(deleted, 1);
        Ok(())
    })
    .await;

    assert_eq!(shelf::Entity::find().count(&db).await.unwrap(), 0);
    let cleared = [
        "NOTE UPDATE",
        "EDITION DELETE",
        "BOOK DELETE",
        "BOOK DELETE",
        "SHELF DELETE",
    ];
    assert_cleared(&db, &cleared).await;
    // The shelf's record holds the row as it was, once, chained to its creation.
    let rows = records(&db, "SHELF", "1").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].version, rows[0].kind), (2, HistoryKind::Delete));
    assert_eq!(
        rows[0].snapshot,
        serde_json::json!({"id": 1, "name": "Fiction"})
    );
    for entity in ["SHELF", "BOOK", "LOAN", "EDITION", "NOTE", "CATEGORY"] {
        let report = verify::verify_table(&db, registry().get(entity).unwrap(), |_| {})
            .await
            .expect("verify");
        assert!(report.broken.is_empty(), "{entity}: {report:?}");
    }
    // And the revert brings every row back.
    ctx("undo")
        .scope(revert_assignation(
            &db,
            &AssignationId::parse("clear").unwrap(),
            &RevertOptions::default(),
        ))
        .await
        .expect("the revert");
    assert_eq!(stored_shelf(&db, 1).await.name, "Fiction");
    assert_eq!(book::Entity::find().count(&db).await.unwrap(), 2);
    assert_eq!(edition::Entity::find().count(&db).await.unwrap(), 1);
}

async fn a_row_nothing_points_at_is_deleted_through_the_writer_with_one_record(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    let made = atlas(&db).await;
    // No book is on the shelf: the DELETE's condition that nothing points at it holds at once.
    change(&db, "clear", async |txn| {
        let locked = locked::<shelf::Entity>(txn, made.id).await?;
        assert_eq!(write::delete(txn, locked.into_active_model()).await?, 1);
        Ok(())
    })
    .await;
    assert!(no_shelf(&db, 7).await);
    assert_eq!(steps(&db, "clear").await, ["SHELF DELETE"]);
    let rows = records(&db, "SHELF", "7").await;
    assert_eq!(
        (rows.len(), rows[0].version, rows[0].step),
        (2, 2, 0),
        "{rows:?}"
    );
    assert_eq!(
        rows[0].hash,
        sea_orm_history::record::record_hash("SHELF", &rows[0], Some(&rows[1].hash))
    );
}

async fn a_book_on_loan_is_not_deleted_and_nothing_is_recorded(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    shelve(&db, &["111"]).await;
    change(&db, "lend", async |txn| {
        loan::ActiveModel {
            book_id: Set(1),
            borrower: Set("bob".into()),
            ..Default::default()
        }
        .insert(txn)
        .await
        .map(|_| ())
    })
    .await;
    // Through the writer (the shelf's DELETE on the condition that no book is on it takes nothing,
    // then its books are cascaded and the loan refuses), through the writer on the book itself, and
    // through the hook.
    for (attempt, via_writer, on_shelf) in [(1, true, true), (2, true, false), (3, false, false)] {
        let refused = ctx(&format!("clear-{attempt}"))
            .scope(async {
                let txn = sea_orm_history::begin(&db).await.expect("begin");
                let outcome = if on_shelf {
                    let locked = locked::<shelf::Entity>(&txn, 1).await?;
                    write::delete(&txn, locked.into_active_model()).await
                } else {
                    let locked = locked::<book::Entity>(&txn, 1).await?;
                    if via_writer {
                        write::delete(&txn, locked.into_active_model()).await
                    } else {
                        locked
                            .into_active_model()
                            .delete(&txn)
                            .await
                            .map(|r| r.rows_affected)
                    }
                };
                txn.rollback().await?;
                outcome
            })
            .await;
        let error = HistoryError::from(refused.expect_err("the loan refuses the delete"));
        assert!(
            matches!(&error, HistoryError::BadInput(why) if why.contains("LOAN")),
            "attempt {attempt}: {error}"
        );
        let attempted = AssignationId::parse(format!("clear-{attempt}")).unwrap();
        assert!(
            query::find_assignation(&db, &attempted)
                .await
                .unwrap()
                .is_none()
        );
    }
    assert_eq!(stored_shelf(&db, 1).await.name, "Fiction");
    assert_eq!(book::Entity::find().count(&db).await.unwrap(), 1);
    assert_eq!(edition::Entity::find().count(&db).await.unwrap(), 1);
    assert_eq!(
        records(&db, "BOOK", "1").await.len(),
        1,
        "only its creation"
    );
}

async fn a_category_deleted_through_the_writer_takes_its_subcategories_along(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    change(&db, "setup", async |txn| {
        for (id, name, parent) in [
            (1, "Fiction", None),
            (2, "Crime", Some(1)),
            (3, "Noir", Some(2)),
        ] {
            category::ActiveModel {
                id: Set(id),
                name: Set(name.into()),
                parent_id: Set(parent),
            }
            .insert(txn)
            .await?;
        }
        Ok(())
    })
    .await;
    // A key to its own table: the writer deals with the subcategories before the DELETE (MySQL
    // refuses a DELETE whose condition reads its own table).
    change(&db, "clear", async |txn| {
        let locked = locked::<category::Entity>(txn, 1).await?;
        assert_eq!(write::delete(txn, locked.into_active_model()).await?, 1);
        Ok(())
    })
    .await;
    assert_eq!(category::Entity::find().count(&db).await.unwrap(), 0);
    assert_eq!(
        steps(&db, "clear").await,
        ["CATEGORY DELETE", "CATEGORY DELETE", "CATEGORY DELETE"]
    );
    for id in ["1", "2", "3"] {
        let rows = records(&db, "CATEGORY", id).await;
        assert_eq!(
            (rows.len(), rows[0].kind),
            (2, HistoryKind::Delete),
            "{id}: {rows:?}"
        );
    }
}

async fn a_delete_through_the_writer_of_a_missing_row_records_nothing(backend: Backend) {
    let (_guard, db) = fresh(backend).await;
    let deleted = ctx("ghost")
        .scope(async {
            let txn = sea_orm_history::begin(&db).await.expect("begin");
            let ghost = shelf::ActiveModel {
                id: sea_orm::ActiveValue::Unchanged(404),
                name: sea_orm::ActiveValue::Unchanged("Nowhere".into()),
            };
            let deleted = write::delete(&txn, ghost).await.expect("the delete");
            txn.commit().await.expect("commit");
            deleted
        })
        .await;
    assert_eq!(deleted, 0);
    assert!(records(&db, "SHELF", "404").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(chronicle_test_postgres),
    ignore = "CHRONICLE_TEST_POSTGRES_URL is not set"
)]
async fn a_delete_through_the_writer_of_a_row_changed_since_it_was_read_is_refused() {
    let (_guard, db) = fresh(Backend::Postgres).await;
    let made = atlas(&db).await;
    // Read without a lock, then renamed by another transaction before the delete.
    change(&db, "renamed", async |txn| {
        let mut renamed = made.clone().into_active_model();
        renamed.name = Set("Maps".into());
        write::update(txn, renamed).await.map(|_| ())
    })
    .await;
    let refused = ctx("stale")
        .scope(async {
            let txn = sea_orm_history::begin(&db).await.expect("begin");
            write::delete(&txn, made.into_active_model()).await
        })
        .await;
    let Err(err) = refused else {
        panic!("recorded values the row did not hold: {refused:?}");
    };
    assert!(err.to_string().contains("lock the row"), "{err}");
    assert_eq!(stored_shelf(&db, 7).await.name, "Maps");
    assert_eq!(records(&db, "SHELF", "7").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(chronicle_test_postgres),
    ignore = "CHRONICLE_TEST_POSTGRES_URL is not set"
)]
async fn a_row_the_database_changes_on_the_way_in_is_refused_rather_than_recorded_otherwise() {
    let (_guard, db) = fresh(Backend::Postgres).await;
    db.execute_unprepared(
        "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$;
         CREATE TRIGGER shout BEFORE INSERT ON shelf FOR EACH ROW EXECUTE FUNCTION shout();",
    )
    .await
    .expect("the trigger");
    // The record would hold "Atlas" while the row holds "ATLAS": the write fails instead.
    let refused = ctx("shouted")
        .scope(async {
            let txn = sea_orm_history::begin(&db).await.expect("begin");
            let shelf = shelf::ActiveModel {
                id: Set(7),
                name: Set("Atlas".into()),
            };
            write::insert(&txn, shelf).await
        })
        .await;
    let Err(err) = refused else {
        panic!("recorded values the row does not hold: {refused:?}");
    };
    assert!(
        err.to_string().contains("differs from the values sent"),
        "{err}"
    );
    assert!(no_shelf(&db, 7).await);
    // The hook path records the row as the database returned it.
    change(&db, "hooked", async |txn| {
        shelf::ActiveModel {
            id: Set(7),
            name: Set("Atlas".into()),
        }
        .insert(txn)
        .await
        .map(|_| ())
    })
    .await;
    let rows = records(&db, "SHELF", "7").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].snapshot["name"], "ATLAS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(chronicle_test_postgres),
    ignore = "CHRONICLE_TEST_POSTGRES_URL is not set"
)]
async fn an_unlocked_update_back_to_old_values_is_recorded_even_when_another_committed_meanwhile() {
    let (guard, db) = fresh(Backend::Postgres).await;
    let url = guard.as_ref().expect("a scratch database").url.clone();
    let other = sea_orm::Database::connect(url.as_str())
        .await
        .expect("connect");
    let made = atlas(&db).await;
    // First writer: renames the shelf and holds the row's lock until told to commit.
    let (locked, commit_first) = (
        std::sync::Arc::new(tokio::sync::Notify::new()),
        std::sync::Arc::new(tokio::sync::Notify::new()),
    );
    let first = {
        let (locked, commit_first, made) = (locked.clone(), commit_first.clone(), made.clone());
        tokio::spawn(ctx("first").scope(async move {
            let txn = sea_orm_history::begin(&other).await.expect("begin");
            let mut renamed = made.into_active_model();
            renamed.name = Set("Maps".into());
            write::update(&txn, renamed).await.expect("the rename");
            locked.notify_one();
            commit_first.notified().await;
            txn.commit().await.expect("commit");
        }))
    };
    locked.notified().await;
    // Second writer, without locking the row first: writes back the values of version 1, which its
    // statement (waiting for the row) sees as the latest record.
    let second = {
        let db = db.clone();
        tokio::spawn(ctx("second").scope(async move {
            let txn = sea_orm_history::begin(&db).await.expect("begin");
            let outcome = write::update(&txn, made.into_active_model().reset_all()).await;
            txn.commit().await.expect("commit");
            outcome
        }))
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    commit_first.notify_one();
    first.await.expect("the first writer");
    second
        .await
        .expect("the second writer")
        .expect("the second update");
    // The row is back to "Atlas", and so is its latest record: version 3 of the second assignation.
    assert_eq!(stored_shelf(&db, 7).await.name, "Atlas");
    let rows = records(&db, "SHELF", "7").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0].snapshot["name"], "Atlas");
    assert_eq!(
        (rows[0].version, rows[0].assignation_id.as_str()),
        (3, "second")
    );
    assert_eq!(rows[1].snapshot["name"], "Maps");
}

/// The definition of index `name`, as the database tells it (PostgreSQL and SQLite).
async fn index_definition(db: &DatabaseConnection, name: &str) -> String {
    let backend = db.get_database_backend();
    let sql = if backend == sea_orm::DbBackend::Postgres {
        "SELECT indexdef AS def FROM pg_indexes WHERE indexname = $1"
    } else {
        "SELECT sql AS def FROM sqlite_master WHERE type = 'index' AND name = ?"
    };
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            sql,
            [name.into()],
        ))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no index {name}"));
    row.try_get("", "def").unwrap()
}

async fn the_trace_parent_and_root_indexes_cover_only_the_rows_that_need_them(backend: Backend) {
    use sea_orm::{ColumnTrait, QueryFilter};
    use sea_orm_history::migration::{create_history_support, upgrade_history_table};
    use sea_orm_history::query::{AssignationFilter, list_assignations};
    use sea_orm_migration::SchemaManager;
    let (_guard, db) = fresh(backend).await;
    let manager = SchemaManager::new(&db);
    // (table, index, column, what its condition says)
    let indexes = [
        (
            "shelf_history",
            "ix_shelf_history_trace",
            "trace_id",
            "IS NOT NULL",
        ),
        (
            "assignation",
            "ix_assignation_parent",
            "parent_id",
            "IS NOT NULL",
        ),
        ("assignation", "ix_assignation_root", "root_id", "<>"),
    ];
    if backend == Backend::MySql {
        // No partial indexes: full ones.
        for (table, name, ..) in indexes {
            assert!(manager.has_index(table, name).await.unwrap(), "{name}");
        }
    } else {
        for (_, name, _, condition) in indexes {
            let def = index_definition(&db, name).await;
            assert!(def.contains("WHERE") && def.contains(condition), "{def}");
        }
        // A database an older version made has full ones: upgrading replaces them.
        for (table, name, column, _) in indexes {
            db.execute_unprepared(&format!("DROP INDEX {name}"))
                .await
                .unwrap();
            db.execute_unprepared(&format!("CREATE INDEX {name} ON {table} ({column})"))
                .await
                .unwrap();
            assert!(!index_definition(&db, name).await.contains("WHERE"));
        }
        create_history_support(&manager).await.unwrap();
        upgrade_history_table(&manager, "shelf").await.unwrap();
        for (_, name, ..) in indexes {
            assert!(
                index_definition(&db, name).await.contains("WHERE"),
                "{name}"
            );
        }
    }
    // What they index is still found by them: a traced change is (see the trace test), a child
    // assignation is listed under its parent, and a tree under its root, the root included.
    change(&db, "top", async |txn| {
        new_shelf(txn, "Root").await.map(|_| ())
    })
    .await;
    change_in_tree(&db, "below", "top", async |txn| {
        new_shelf(txn, "Child").await.map(|_| ())
    })
    .await;
    change(&db, "elsewhere", async |txn| {
        new_shelf(txn, "Other").await.map(|_| ())
    })
    .await;
    let children = sea_orm_history::tables::assignation::Entity::find()
        .filter(sea_orm_history::tables::assignation::Column::ParentId.eq("top"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(children.len(), 1);
    let tree = list_assignations(
        &db,
        registry(),
        &AssignationFilter {
            root_id: Some("top".into()),
            ..AssignationFilter::default()
        },
        10,
        None,
    )
    .await
    .unwrap();
    let mut ids: Vec<String> = tree.items.iter().map(|a| a.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["below", "top"]);
    if backend == Backend::Sqlite {
        // The members other than the root are looked up through the partial index.
        let plan = db
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "EXPLAIN QUERY PLAN SELECT \"id\" FROM \"assignation\" \
                 WHERE \"assignation\".\"id\" = 'top' OR (\"assignation\".\"root_id\" = 'top' \
                 AND \"assignation\".\"root_id\" <> \"assignation\".\"id\")",
            ))
            .await
            .unwrap();
        let plan: Vec<String> = plan
            .iter()
            .map(|r| r.try_get::<String>("", "detail").unwrap())
            .collect();
        assert!(
            plan.iter().any(|d| d.contains("ix_assignation_root")),
            "{plan:?}"
        );
    }
}

#[tokio::test]
async fn sqlites_hash_function_is_sha256_in_lowercase_hex_and_null_for_null() {
    let (_guard, db) = fresh(Backend::Sqlite).await;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT sea_orm_history_sha256('abc') AS abc, sea_orm_history_sha256('') AS empty, \
             sea_orm_history_sha256('é|1|0|x') AS utf8, sea_orm_history_sha256(NULL) AS none",
        ))
        .await
        .expect("the query")
        .expect("a row");
    let abc: String = row.try_get("", "abc").unwrap();
    assert_eq!(
        abc,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let empty: String = row.try_get("", "empty").unwrap();
    assert_eq!(
        empty,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let utf8: String = row.try_get("", "utf8").unwrap();
    assert_eq!(
        utf8,
        sea_orm_history::record::chain_hash(Some("é"), 1, 0, "x"),
        "the bytes Rust's chain hash takes"
    );
    let none: Option<String> = row.try_get("", "none").unwrap();
    assert_eq!(none, None);
}

/// Declares by hand (so that no other registry of this program is asked to hold it) a historized
/// entity `$module` of table `$table` with a key and one column `$column`.
macro_rules! hand_declared {
    ($module:ident, $table:literal, $column:literal) => {
        mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                #[sea_orm(primary_key)]
                pub id: i32,
                #[sea_orm(column_name = $column)]
                pub written: i32,
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}

            impl sea_orm_history::entity::Historized for Entity {
                fn declare() -> sea_orm_history::entity::Declaration<Self> {
                    sea_orm_history::entity::Declaration::default()
                }
            }
        }
    };
}

hand_declared!(reserved_column, "ledger", "_h_written");
hand_declared!(reserved_table, "_h_ledger", "written");
hand_declared!(inner_prefix, "journal", "x_h_written");

#[test]
fn a_registry_refuses_a_table_or_column_named_like_the_history_writers_own() {
    let why = |refused: Result<Registry, HistoryError>| match refused {
        Err(HistoryError::Registry(why)) => why,
        other => panic!("not refused: {:?}", other.map(|_| ())),
    };
    let column = why(Registry::builder()
        .entity::<reserved_column::Entity>()
        .build());
    assert!(column.contains("the name _h_written"), "{column}");
    let table = why(Registry::builder()
        .entity::<reserved_table::Entity>()
        .build());
    assert!(table.contains("the name _h_ledger"), "{table}");
    Registry::builder()
        .entity::<inner_prefix::Entity>()
        .build()
        .expect("_h_ inside a name is the table's own");
}

#[tokio::test]
#[cfg_attr(
    not(chronicle_test_mysql),
    ignore = "CHRONICLE_TEST_MYSQL_URL is not set"
)]
async fn a_mysql_connection_made_with_the_librarys_install_reads_committed_rows() {
    // `fresh` opens MySQL through `sea_orm_history::mysql::install`; InnoDB's default would be
    // REPEATABLE-READ.
    let (_guard, db) = fresh(Backend::MySql).await;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            // `tx_isolation` on MariaDB before 11.1, `transaction_isolation` on MySQL 8.
            "SHOW SESSION VARIABLES WHERE Variable_name IN ('tx_isolation', 'transaction_isolation')",
        ))
        .await
        .expect("the session's level")
        .expect("a row");
    let level: String = row.try_get("", "Value").expect("level");
    assert_eq!(level, "READ-COMMITTED");
}
