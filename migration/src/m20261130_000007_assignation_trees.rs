//! Assignation trees and provenance tokens: the `assignation` table gains its place in a tree (parent,
//! root, the human it runs for, the arguments' hash; from `sea-orm-history`'s helper, which makes the
//! rows already there roots of their own), and `provenance_token` keeps each token `jti` seen.

use sea_orm_history::migration::create_history_support;
use sea_orm_migration::prelude::*;

use crate::columns::{exact_strings, int, string, timestamp};

/// Adds assignation trees and the seen provenance tokens.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000007_assignation_trees"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_history_support(manager).await?;
        let backend = manager.get_database_backend();
        manager
            .create_table(exact_strings(
                backend,
                Table::create()
                    .table(Alias::new("provenance_token"))
                    .if_not_exists()
                    .col(string("jti", 255).primary_key())
                    .col(string("token_hash", 64))
                    .col(string("assignation_id", 128))
                    .col(timestamp(backend, "first_seen_at"))
                    .col(timestamp(backend, "expires_at"))
                    .col(int("uses")),
            ))
            .await?;
        if !manager
            .has_index("provenance_token", "ix_provenance_token_expires_at")
            .await?
        {
            manager
                .create_index(
                    Index::create()
                        .name("ix_provenance_token_expires_at")
                        .table(Alias::new("provenance_token"))
                        .col(Alias::new("expires_at"))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The tree columns stay: they hold history.
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("provenance_token"))
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
