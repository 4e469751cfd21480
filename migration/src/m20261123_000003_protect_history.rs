//! Makes the history tables append-only in the database itself, so that not even SQL sent around the
//! server edits history by accident: triggers refuse every UPDATE and DELETE (and, on PostgreSQL,
//! TRUNCATE). Retention alone may delete old records, in a transaction it marks. (Databases created
//! since the history library got them at once from migration 2; this installs them again, which
//! changes nothing.)

use sea_orm_history::migration::{protect_history_table, unprotect_history_table};
use sea_orm_migration::prelude::*;

use crate::m20261123_000002_create_history_tables::HISTORIZED;

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
        for base in HISTORIZED {
            protect_history_table(manager, &format!("{base}_history")).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for base in HISTORIZED {
            unprotect_history_table(manager, &format!("{base}_history")).await?;
        }
        Ok(())
    }
}
