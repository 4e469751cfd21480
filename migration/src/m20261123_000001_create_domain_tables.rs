//! The domain tables: `project`, `label`, `task`, `task_label`, `comment`. Foreign keys do not cascade:
//! deletes go through the ORM, child by child, so that each is historized.

use sea_orm_migration::prelude::*;

use crate::columns::{exact_strings, int, string, text_null, timestamp, uuid_key, uuid_ref};

/// Creates the domain tables.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000001_create_domain_tables"
    }
}

fn foreign_key(from: &str, column: &str, to: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from}_{column}"))
        .from(Alias::new(from), Alias::new(column))
        .to(Alias::new(to), Alias::new("id"))
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(exact_strings(
                backend,
                &mut Table::create()
                    .table(Alias::new("project"))
                    .if_not_exists()
                    .col(uuid_key("id"))
                    .col(string("name", 200))
                    .col(text_null("description"))
                    .col(ColumnDef::new(Alias::new("archived")).boolean().not_null())
                    .col(timestamp(backend, "created_at"))
                    .col(timestamp(backend, "updated_at"))
                    .to_owned(),
            ))
            .await?;
        manager
            .create_table(exact_strings(
                backend,
                &mut Table::create()
                    .table(Alias::new("label"))
                    .if_not_exists()
                    .col(uuid_key("id"))
                    .col(string("name", 50).unique_key())
                    .col(string("color", 7))
                    .to_owned(),
            ))
            .await?;
        manager
            .create_table(exact_strings(
                backend,
                &mut Table::create()
                    .table(Alias::new("task"))
                    .if_not_exists()
                    .col(uuid_key("id"))
                    .col(uuid_ref("project_id"))
                    .col(string("title", 500))
                    .col(text_null("description"))
                    .col(string("status", 8))
                    .col(int("priority"))
                    .col(ColumnDef::new(Alias::new("due_date")).date().null())
                    .col(timestamp(backend, "created_at"))
                    .col(timestamp(backend, "updated_at"))
                    .foreign_key(&mut foreign_key("task", "project_id", "project"))
                    .to_owned(),
            ))
            .await?;
        manager
            .create_table(exact_strings(
                backend,
                &mut Table::create()
                    .table(Alias::new("task_label"))
                    .if_not_exists()
                    .col(uuid_ref("task_id"))
                    .col(uuid_ref("label_id"))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("task_id"))
                            .col(Alias::new("label_id")),
                    )
                    .foreign_key(&mut foreign_key("task_label", "task_id", "task"))
                    .foreign_key(&mut foreign_key("task_label", "label_id", "label"))
                    .to_owned(),
            ))
            .await?;
        manager
            .create_table(exact_strings(
                backend,
                &mut Table::create()
                    .table(Alias::new("comment"))
                    .if_not_exists()
                    .col(uuid_key("id"))
                    .col(uuid_ref("task_id"))
                    .col(ColumnDef::new(Alias::new("body")).text().not_null())
                    .col(timestamp(backend, "created_at"))
                    .col(timestamp(backend, "updated_at"))
                    .foreign_key(&mut foreign_key("comment", "task_id", "task"))
                    .to_owned(),
            ))
            .await?;
        for (table, column) in [
            ("task", "project_id"),
            ("task", "status"),
            ("task_label", "label_id"),
            ("comment", "task_id"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(format!("ix_{table}_{column}"))
                        .table(Alias::new(table))
                        .col(Alias::new(column))
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["comment", "task_label", "task", "label", "project"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
