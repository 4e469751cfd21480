//! The history tables of the domain and the tables the history library keeps (`assignation`,
//! `history_prune_anchor`), each through `sea-orm-history`'s one-call helpers.

use sea_orm_history::migration::{
    create_history_support, create_history_table, drop_history_table,
};
use sea_orm_migration::prelude::*;

/// The historized base tables. Adding a historized entity adds its table here (or in a new migration).
pub(crate) const HISTORIZED: [&str; 5] = ["project", "label", "task", "task_label", "comment"];

/// Creates the library's tables and the history tables.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000002_create_history_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_history_support(manager).await?;
        for base in HISTORIZED {
            create_history_table(manager, base).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for base in HISTORIZED {
            drop_history_table(manager, base).await?;
        }
        manager
            .drop_table(Table::drop().table(Alias::new("assignation")).to_owned())
            .await
    }
}
