//! The shadow history tables of the domain and the `assignation` table.

use sea_orm_migration::prelude::*;

use crate::columns::{exact_strings, int, string_null, timestamp};
use crate::shadow::{create_shadow_table, drop_shadow_table};

/// The historized base tables. Adding a historized entity adds its table here (or in a new migration).
const HISTORIZED: [&str; 5] = ["project", "label", "task", "task_label", "comment"];

/// Creates `assignation` and the shadow tables.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000002_create_history_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(exact_strings(
                backend,
                &mut Table::create()
                    .table(Alias::new("assignation"))
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Alias::new("id"))
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(string_null("actor", 200))
                    .col(string_null("app", 200))
                    .col(timestamp(backend, "started_at"))
                    .col(int("change_count").default(0))
                    .col(int("entity_mask").default(0))
                    .col(string_null("reverts", 128))
                    .col(string_null("reverted_by", 128))
                    .to_owned(),
            ))
            .await?;
        for (name, column) in [("started_at", "started_at"), ("actor", "actor")] {
            manager
                .create_index(
                    Index::create()
                        .name(format!("ix_assignation_{name}"))
                        .table(Alias::new("assignation"))
                        .col(Alias::new(column))
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        for base in HISTORIZED {
            create_shadow_table(manager, base).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for base in HISTORIZED {
            drop_shadow_table(manager, base).await?;
        }
        manager
            .drop_table(Table::drop().table(Alias::new("assignation")).to_owned())
            .await
    }
}
