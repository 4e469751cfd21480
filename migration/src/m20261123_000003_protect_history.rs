//! Makes the shadow history tables append-only in the database itself, so that not even SQL sent
//! around the server edits history by accident: triggers refuse every UPDATE and DELETE (and, on
//! PostgreSQL, TRUNCATE). The retention command alone may delete old records: it marks its own
//! transaction (see [`crate::shadow::protect_shadow_table`]).

use sea_orm_migration::prelude::*;

use crate::shadow::{protect_shadow_table, unprotect_shadow_table};

/// The shadow tables to protect.
const SHADOW_TABLES: [&str; 5] = [
    "project_history",
    "label_history",
    "task_history",
    "task_label_history",
    "comment_history",
];

/// Installs the append-only triggers.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000003_protect_history"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in SHADOW_TABLES {
            protect_shadow_table(manager, table).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in SHADOW_TABLES {
            unprotect_shadow_table(manager, table).await?;
        }
        Ok(())
    }
}
