//! The audit trail: the `audit_event` table with the indexes its filters and keyset pages use, and a
//! `scope_id` column on every shadow table naming the project a record belongs to, so that a project's
//! timeline reads its tasks', comments' and label links' records through one index per table.
//!
//! Records written before this migration have no `scope_id` and do not show in timelines.

use sea_orm_migration::prelude::*;

use crate::columns::{exact_strings, json, json_null, string, string_null, text_null, timestamp};

const SHADOW_TABLES: [&str; 5] = [
    "project_history",
    "label_history",
    "task_history",
    "task_label_history",
    "comment_history",
];

/// Creates `audit_event` and adds `scope_id` to the shadow tables.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000004_create_audit_events"
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
                    .table(Alias::new("audit_event"))
                    .if_not_exists()
                    .col(crate::columns::uuid_key("id"))
                    .col(string("kind", 16))
                    .col(string("action", 200))
                    .col(string("status", 8))
                    .col(timestamp(backend, "at"))
                    .col(
                        ColumnDef::new(Alias::new("duration_ms"))
                            .integer()
                            .null()
                            .to_owned(),
                    )
                    .col(string_null("actor", 200))
                    .col(string_null("app", 200))
                    .col(string_null("assignation_id", 128))
                    .col(string_null("ip", 64))
                    .col(string_null("user_agent", 512))
                    .col(json_null("input"))
                    .col(json_null("output"))
                    .col(text_null("error"))
                    .col(json("logs"))
                    .col(string_null("entity", 16))
                    .col(string_null("object_id", 80))
                    .col(string_null("scope_id", 80))
                    .col(json_null("details"))
                    .to_owned(),
            ))
            .await?;
        let indexes: [(&str, &[&str]); 7] = [
            ("at", &["at", "id"]),
            ("kind_at", &["kind", "at"]),
            ("actor_at", &["actor", "at"]),
            ("action_at", &["action", "at"]),
            ("assignation", &["assignation_id"]),
            ("object", &["entity", "object_id", "at"]),
            ("scope_at", &["scope_id", "at"]),
        ];
        for (suffix, columns) in indexes {
            let mut index = Index::create();
            index
                .name(format!("ix_audit_event_{suffix}"))
                .table(Alias::new("audit_event"))
                .if_not_exists();
            for column in columns {
                index.col(Alias::new(*column));
            }
            manager.create_index(index.to_owned()).await?;
        }
        for table in SHADOW_TABLES {
            // Tables created by the history library since have it already.
            if !manager.has_column(table, "scope_id").await? {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new(table))
                            .add_column(string_null("scope_id", 80))
                            .to_owned(),
                    )
                    .await?;
            }
            let index = format!("ix_{table}_scope_at");
            if !manager.has_index(table, &index).await? {
                manager
                    .create_index(
                        Index::create()
                            .name(index)
                            .table(Alias::new(table))
                            .col(Alias::new("scope_id"))
                            .col(Alias::new("at"))
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in SHADOW_TABLES {
            manager
                .drop_index(
                    Index::drop()
                        .name(format!("ix_{table}_scope_at"))
                        .table(Alias::new(table))
                        .to_owned(),
                )
                .await?;
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(Alias::new("scope_id"))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("audit_event"))
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
