//! Retention: `history_prune_anchor` keeps, for each object whose oldest history records `chronicle
//! prune --history` removed, the version and hash of the last record it removed. Hash-chain
//! verification starts from there, so the records that remain stay verifiable and a record removed
//! by anyone else still breaks the chain.

use sea_orm_migration::prelude::*;

use crate::columns::{exact_strings, int, string, timestamp};

/// Creates `history_prune_anchor`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000005_create_prune_anchors"
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
                    .table(Alias::new("history_prune_anchor"))
                    .if_not_exists()
                    .col(string("entity", 16))
                    .col(string("object_id", 80))
                    .col(int("version"))
                    .col(string("hash", 64))
                    .col(timestamp(backend, "pruned_at"))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("entity"))
                            .col(Alias::new("object_id")),
                    )
                    .to_owned(),
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("history_prune_anchor"))
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
