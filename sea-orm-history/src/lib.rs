//! # sea-orm-history
//!
//! History for [sea-orm](https://www.sea-ql.org/SeaORM/) entities, what django-simple-history and
//! pghistory are to Django: every insert, update and delete of a historized entity writes a history
//! record — a full snapshot, who made it, through which app, as part of which *assignation* (a
//! correlation id that can span requests), in which step, and why — in the change's own transaction.
//! History can then be listed per object and per assignation, read as of any instant, verified (each
//! record is hash-chained to the previous record of its object), and reverted: a whole assignation or
//! one object, with a preview, conflicts when later changes or rows pointing at deleted ones are in
//! the way, `force`, and redo.
//!
//! ## Quickstart
//!
//! One declaration per entity, one list of entities, one migration call per table:
//!
//! ```
//! use sea_orm::{ActiveModelTrait, Database, EntityTrait, Set, TransactionTrait};
//! use sea_orm_history::revert::{self, RevertOptions};
//! use sea_orm_history::{AssignationId, ChangeContext, EntitySet, HistoryKind, query};
//!
//! mod cake {
//!     use sea_orm::entity::prelude::*;
//!
//!     #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
//!     #[sea_orm(table_name = "cake")]
//!     pub struct Model {
//!         #[sea_orm(primary_key)]
//!         pub id: i32,
//!         #[sea_orm(unique)]
//!         pub name: String,
//!         pub price: Decimal,
//!         pub updated_at: DateTimeUtc,
//!     }
//!
//!     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
//!     pub enum Relation {}
//!
//!     // The one declaration: history for every insert, update and delete of a cake.
//!     sea_orm_history::historized!(touch = [Column::UpdatedAt]);
//! }
//!
//! // The one list of historized entities (with the `graphql` feature, also the API's enum).
//! sea_orm_history::registry! {
//!     /// Every historized entity.
//!     pub enum HistoryEntity {
//!         /// A cake.
//!         Cake => cake::Entity,
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let db = Database::connect("sqlite::memory:").await?;
//! // In a migration: the table, then its history table and the library's own tables.
//! let manager = sea_orm_migration::SchemaManager::new(&db);
//! let schema = sea_orm::Schema::new(db.get_database_backend());
//! manager.create_table(schema.create_table_from_entity(cake::Entity)).await?;
//! sea_orm_history::migration::create_history_support(&manager).await?;
//! sea_orm_history::migration::create_history_table(&manager, "cake").await?;
//!
//! // Changes run inside a change context: who, through what, in which assignation.
//! let registry = HistoryEntity::registry()?;
//! let bake = AssignationId::parse("bake-1")?;
//! ChangeContext::new(registry, bake.clone())
//!     .user("alice")
//!     .app("oven")
//!     .scope(async {
//!         let txn = sea_orm_history::begin(&db).await?; // a HistoryError, carried as a DbErr
//!         cake::ActiveModel {
//!             name: Set("Lemon".into()),
//!             price: Set(sea_orm::prelude::Decimal::new(450, 2)),
//!             updated_at: Set(sea_orm_history::now()),
//!             ..Default::default()
//!         }
//!         .insert(&txn)
//!         .await?; // the hook writes the history record
//!         txn.commit().await
//!     })
//!     .await?;
//!
//! // History per object…
//! let cakes = registry.of::<cake::Entity>()?;
//! let page = query::object_history(&db, cakes, "1", 20, None).await?;
//! assert_eq!(page.items[0].kind, HistoryKind::Create);
//! assert_eq!(page.items[0].actor.as_deref(), Some("alice"));
//! assert_eq!(page.items[0].snapshot["name"], "Lemon");
//!
//! // …and a whole assignation undone, as a new assignation of its own.
//! let undo = ChangeContext::fresh(registry)
//!     .user("alice")
//!     .scope(revert::revert_assignation(&db, &bake, &RevertOptions::default()))
//!     .await?;
//! assert_eq!(undo.reverts.as_deref(), Some("bake-1"));
//! assert!(cake::Entity::find().one(&db).await?.is_none());
//! # Ok(())
//! # }
//! ```
//!
//! ## How it works
//!
//! - [`historized!`] implements `ActiveModelBehavior` for the entity: `after_save` records a CREATE or
//!   UPDATE, `before_delete` records a DELETE (after dealing with the rows whose foreign keys point at
//!   the row, as their `ON DELETE` says: `CASCADE` rows are deleted and `SET NULL` rows updated, each
//!   with history). A change outside a [`ChangeContext`] is refused. sea-orm's `insert_many`,
//!   `update_many` and `delete_many` skip hooks: use [`capture::insert_with_history`] and friends.
//! - [`registry!`](macro@crate::registry) lists the entities; the registry is checked when first used (a forgotten
//!   registration, a key that would let the database change rows without history, a cycle of parents).
//! - Snapshots are built from sea-orm's own metadata (see [`snapshot`]); object ids are primary keys,
//!   composite ones included. Parents, dependents and revert order come from `belongs_to` relations;
//!   unique columns from `#[sea_orm(unique)]`.
//!
//! ## Layout
//!
//! - [`context`]: [`ChangeContext`], [`AssignationId`], [`Tally`].
//! - [`entity`]: [`Historized`], [`Declaration`], [`EntityInfo`], and [`historized!`].
//! - [`registry`](mod@crate::registry): [`Registry`], [`EntitySet`], and [`registry!`](macro@crate::registry).
//! - [`capture`]: the one writer of history rows, the hooks, the bulk helpers, [`begin`]; `writer`
//!   writes one change (what a hook writes) in a single statement where the database allows.
//! - [`record`]: [`HistoryRow`], [`HistoryKind`], diffs and hashes.
//! - [`snapshot`]: rows as JSON, object ids.
//! - [`query`]: history per object, per assignation, as of an instant.
//! - [`revert`]: preview, revert an assignation, revert an object.
//! - [`verify`]: hash-chain verification.
//! - [`write`](mod@write): insert, update or delete a row with its record in a round trip less
//!   (PostgreSQL, SQLite).
//! - [`retention`]: pruning old history, with anchors so that chains still verify.
//! - `log` (feature `log`, on by default): the verifiable log — one Merkle tree over all history, a
//!   sequencer, signed checkpoints, inclusion and consistency proofs, and verification against a
//!   checkpoint kept elsewhere.
//! - [`tables`]: the library's own tables (`assignation`, `history_prune_anchor`).
//! - `migration` (feature `migration`, on by default): the tables in one call each.
//! - `sqlite` (feature `sqlite`): the SHA-256 function that saves SQLite's writer a round trip.
//! - `mysql` (feature `mysql`): MySQL connections at `READ COMMITTED`, as the writer needs them.
//! - `graphql` (feature `graphql`): the async-graphql extension, types, queries and mutations.

#![warn(missing_docs)]

pub mod capture;
pub mod context;
pub mod entity;
pub mod error;
#[cfg(feature = "graphql")]
pub mod graphql;
#[cfg(feature = "log")]
pub mod log;
#[cfg(feature = "migration")]
pub mod migration;
#[cfg(feature = "mysql")]
pub mod mysql;
pub mod query;
pub mod record;
pub mod registry;
pub mod retention;
pub mod revert;
mod rows;
pub mod snapshot;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod tables;
pub mod verify;
pub mod write;
mod writer;

pub use capture::{begin, begin_write};
pub use context::{AssignationId, ChangeContext, Lineage, Tally, Trace, with_reason};
pub use entity::{Declaration, EntityInfo, Historized};
pub use error::{Conflict, ConflictReason, HistoryError, HistoryResult};
pub use record::{HistoryKind, HistoryRow, now};
pub use registry::{EntitySet, Registry, RegistryBuilder};

/// What the macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use async_trait;
    pub use inventory;
    pub use sea_orm;

    pub use crate::registry::{Declared, build_checked, screaming_snake};
}
