//! Brings databases created before the history library to its layout: history records no longer
//! store their field diff (`changes`, computed when read from the record before), the append-only
//! triggers are installed again with the library's retention mark, and the old mark goes.
//! Databases created since have this layout already, and this changes nothing there.

use sea_orm_history::migration::{create_history_support, protect_history_table};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::m20261123_000002_create_history_tables::HISTORIZED;

/// Adopts the history library's layout.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000006_adopt_history_library"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_history_support(manager).await?;
        for base in HISTORIZED {
            let table = format!("{base}_history");
            if manager.has_column(&table, "changes").await? {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new(&table))
                            .drop_column(Alias::new("changes"))
                            .to_owned(),
                    )
                    .await?;
            }
            protect_history_table(manager, &table).await?;
        }
        let old_mark = match manager.get_database_backend() {
            DbBackend::Postgres => "DROP FUNCTION IF EXISTS chronicle_history_append_only()",
            DbBackend::Sqlite => "DROP TABLE IF EXISTS chronicle_retention",
            _ => return Ok(()),
        };
        manager
            .get_connection()
            .execute_unprepared(old_mark)
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The diffs dropped are derived data: they are computed from the records when read.
        Ok(())
    }
}
