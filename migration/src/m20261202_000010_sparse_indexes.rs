//! Sparse indexes: the indexes on `trace_id` (every history table, `audit_event`) and on
//! `assignation.parent_id` cover only the rows where the column is set, on PostgreSQL and SQLite
//! (`sea-orm-history`'s helpers replace the full ones older versions made). Most writes leave both
//! `NULL` (no trace, a root assignation) and so maintain two indexes fewer; lookups by value use them
//! as before. MySQL/MariaDB have no partial indexes and keep full ones. `down` leaves them: they
//! answer the same queries.

use sea_orm_history::migration::{
    add_trace_columns, create_history_support, upgrade_history_table,
};
use sea_orm_migration::prelude::*;

use crate::m20261123_000002_create_history_tables::HISTORIZED;

/// Makes the mostly-`NULL` indexes sparse.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000010_sparse_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_history_support(manager).await?;
        for base in HISTORIZED {
            upgrade_history_table(manager, base).await?;
        }
        add_trace_columns(manager, "audit_event").await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
