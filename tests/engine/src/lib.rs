//! A small library catalogue to test `sea-orm-history`'s engine on, without HTTP: shelves (each its own
//! scope), books on a shelf (`ON DELETE CASCADE`, a unique ISBN), notes on a book (`ON DELETE SET
//! NULL`), editions of a book (a composite key) and loans of a book (`ON DELETE RESTRICT`: a book on
//! loan is not deleted), categories in a tree (a key to their own table, `ON DELETE CASCADE`), and
//! [`Catalogue`], the registry of them.
//! [`fresh`] gives a migrated database of one backend.

#![allow(clippy::expect_used, clippy::unwrap_used)]

pub use chronicle_test_support::Backend;
use chronicle_test_support::ScratchDatabase;

pub use chronicle_test_support::on_every_backend as on_every_database;
use sea_orm::{Database, DatabaseConnection, EntityName, Schema};
use sea_orm_migration::SchemaManager;

/// Shelves.
pub mod shelf {
    use sea_orm::entity::prelude::*;

    /// A shelf.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "shelf")]
    pub struct Model {
        /// Key.
        #[sea_orm(primary_key)]
        pub id: i32,
        /// Name.
        pub name: String,
    }

    /// A shelf holds books.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    sea_orm_history::historized!(scope_root = true);
}

/// Books.
pub mod book {
    use sea_orm::entity::prelude::*;

    /// A book.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "book")]
    pub struct Model {
        /// Key.
        #[sea_orm(primary_key)]
        pub id: i32,
        /// Unique.
        #[sea_orm(unique)]
        pub isbn: String,
        /// Title.
        pub title: String,
        /// The shelf.
        pub shelf_id: i32,
        /// Last changed.
        pub updated_at: DateTimeUtc,
    }

    /// A book stands on a shelf.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        /// The shelf (its books go with it).
        #[sea_orm(
            belongs_to = "super::shelf::Entity",
            from = "Column::ShelfId",
            to = "super::shelf::Column::Id",
            on_delete = "Cascade"
        )]
        Shelf,
    }

    impl Related<super::shelf::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Shelf.def()
        }
    }

    sea_orm_history::historized!(scope = Relation::Shelf, touch = [Column::UpdatedAt]);
}

/// Notes.
pub mod note {
    use sea_orm::entity::prelude::*;

    /// A note, perhaps about a book.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "note")]
    pub struct Model {
        /// Key.
        #[sea_orm(primary_key)]
        pub id: i32,
        /// Text.
        pub text: String,
        /// The book (none once it is gone).
        pub book_id: Option<i32>,
    }

    /// A note may be about a book.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        /// The book (the note stays when it goes).
        #[sea_orm(
            belongs_to = "super::book::Entity",
            from = "Column::BookId",
            to = "super::book::Column::Id",
            on_delete = "SetNull"
        )]
        Book,
    }

    impl Related<super::book::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Book.def()
        }
    }

    sea_orm_history::historized!();
}

/// Editions.
pub mod edition {
    use sea_orm::entity::prelude::*;

    /// An edition of a book.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "edition")]
    pub struct Model {
        /// The book.
        #[sea_orm(primary_key, auto_increment = false)]
        pub book_id: i32,
        /// The edition's number.
        #[sea_orm(primary_key, auto_increment = false)]
        pub number: i32,
        /// When it was printed.
        pub year: i32,
    }

    /// An edition is of a book.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        /// The book (its editions go with it).
        #[sea_orm(
            belongs_to = "super::book::Entity",
            from = "Column::BookId",
            to = "super::book::Column::Id",
            on_delete = "Cascade"
        )]
        Book,
    }

    impl Related<super::book::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Book.def()
        }
    }

    sea_orm_history::historized!(scope = Relation::Book);
}

/// Loans.
pub mod loan {
    use sea_orm::entity::prelude::*;

    /// A book lent to someone.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "loan")]
    pub struct Model {
        /// Key.
        #[sea_orm(primary_key)]
        pub id: i32,
        /// The book lent.
        pub book_id: i32,
        /// Who has it.
        pub borrower: String,
    }

    /// A loan is of a book.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        /// The book (which may not go while it is lent).
        #[sea_orm(
            belongs_to = "super::book::Entity",
            from = "Column::BookId",
            to = "super::book::Column::Id",
            on_delete = "Restrict"
        )]
        Book,
    }

    impl Related<super::book::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Book.def()
        }
    }

    sea_orm_history::historized!();
}

/// Categories, in a tree.
pub mod category {
    use sea_orm::entity::prelude::*;

    /// A category, perhaps inside another.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "category")]
    pub struct Model {
        /// Key.
        #[sea_orm(primary_key)]
        pub id: i32,
        /// Its name.
        pub name: String,
        /// The category it is inside, if any.
        pub parent_id: Option<i32>,
    }

    /// A category may be inside another.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        /// The category it is inside (which takes it along when it goes).
        #[sea_orm(
            belongs_to = "Entity",
            from = "Column::ParentId",
            to = "Column::Id",
            on_delete = "Cascade"
        )]
        Parent,
    }

    sea_orm_history::historized!();
}

sea_orm_history::registry! {
    /// The catalogue's historized entities, listed children first on purpose: the registry orders
    /// them.
    pub enum Catalogue {
        /// A category.
        Category => category::Entity,
        /// A loan.
        Loan => loan::Entity,
        /// An edition.
        Edition => edition::Entity,
        /// A note.
        Note => note::Entity,
        /// A book.
        Book => book::Entity,
        /// A shelf.
        Shelf => shelf::Entity,
    }
}

/// The guard that drops a fresh database of `backend` (none for SQLite in memory) and a connection to
/// it, migrated. Bound as `let (_guard, db)`, the connection goes before the database.
pub async fn fresh(backend: Backend) -> (Option<ScratchDatabase>, DatabaseConnection) {
    let (db, scratch) = match backend {
        Backend::Sqlite => {
            // With the SHA-256 function the writer chains records in one hop (see the test binary
            // `sqlite_without_function` for connections without it).
            let mut options = sea_orm::ConnectOptions::new("sqlite::memory:");
            sea_orm_history::sqlite::install(&mut options);
            (Database::connect(options).await.expect("sqlite"), None)
        }
        _ => {
            let scratch = ScratchDatabase::create(backend).await;
            // One connection, so that its session settings hold for every statement.
            let mut options = sea_orm::ConnectOptions::new(scratch.url.clone());
            options.max_connections(1).sqlx_logging(false);
            sea_orm_history::mysql::install(&mut options);
            let db = Database::connect(options).await.expect("connect");
            (db, Some(scratch))
        }
    };
    migrate(&db).await;
    (scratch, db)
}

/// Creates the catalogue's tables, their history tables and the library's own on `db`.
pub async fn migrate(db: &DatabaseConnection) {
    let manager = SchemaManager::new(db);
    let schema = Schema::new(db.get_database_backend());
    sea_orm_history::migration::create_history_support(&manager)
        .await
        .expect("support tables");
    for statement in [
        schema.create_table_from_entity(shelf::Entity),
        schema.create_table_from_entity(book::Entity),
        schema.create_table_from_entity(note::Entity),
        schema.create_table_from_entity(edition::Entity),
        schema.create_table_from_entity(loan::Entity),
        schema.create_table_from_entity(category::Entity),
    ] {
        manager.create_table(statement).await.expect("table");
    }
    for table in [
        shelf::Entity.table_name(),
        book::Entity.table_name(),
        note::Entity.table_name(),
        edition::Entity.table_name(),
        loan::Entity.table_name(),
        category::Entity.table_name(),
    ] {
        sea_orm_history::migration::create_history_table(&manager, table)
            .await
            .expect("history table");
    }
}
