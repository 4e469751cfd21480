//! The index on `assignation.root_id` covers only the assignations that are not their own root, on
//! PostgreSQL and SQLite (`sea-orm-history`'s helper replaces the full one older versions made):
//! every change outside a tree starts a root, which then maintains one index fewer; a tree's listing
//! finds its root by id and the rest through the index. MySQL/MariaDB have no partial indexes and
//! keep the full one. `down` leaves it: it answers the same queries.

use sea_orm_history::migration::create_history_support;
use sea_orm_migration::prelude::*;

/// Makes the root index sparse.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000011_sparse_root_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_history_support(manager).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
