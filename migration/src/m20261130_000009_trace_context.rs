//! Trace context: every history table and `audit_event` gain `trace_id` and `span_id` (the W3C trace
//! and span a change or event was made in) and an index on `trace_id`, so a client's trace can be
//! followed into the database. `down` removes `audit_event`'s; the history tables keep theirs (their
//! append-only triggers guard the rows, and `up` again finds them in place).

use sea_orm_history::migration::{add_trace_columns, upgrade_history_table};
use sea_orm_migration::prelude::*;

use crate::m20261123_000002_create_history_tables::HISTORIZED;

/// Adds the trace columns.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000009_trace_context"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for base in HISTORIZED {
            upgrade_history_table(manager, base).await?;
        }
        add_trace_columns(manager, "audit_event").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_audit_event_trace")
                    .table(Alias::new("audit_event"))
                    .to_owned(),
            )
            .await?;
        for name in ["trace_id", "span_id"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("audit_event"))
                        .drop_column(Alias::new(name))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
