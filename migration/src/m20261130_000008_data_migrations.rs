//! Data migrations: `data_migration` holds one row per data migration applied (its name, when, under
//! which assignation, how many history records it wrote), so each runs once, on one replica.

use sea_orm_migration::prelude::*;

use crate::columns::{exact_strings, int, string, timestamp};

/// Creates `data_migration`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000008_data_migrations"
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
                    .table(Alias::new("data_migration"))
                    .if_not_exists()
                    .col(string("name", 100).primary_key())
                    .col(timestamp(backend, "applied_at"))
                    .col(string("assignation_id", 128))
                    .col(int("records"))
                    .to_owned(),
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("data_migration"))
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
