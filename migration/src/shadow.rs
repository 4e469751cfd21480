//! The shadow history table of a historized entity: one helper creates `<table>_history` with the
//! columns every shadow table shares (see `entity::history::HistoryRow`) and the indexes that keep
//! history queries fast with millions of rows: (object id, version) unique, (assignation id, step),
//! (timestamp).

use sea_orm_migration::prelude::*;

use crate::columns::{exact_strings, int, json, string, string_null, text_null, timestamp};

/// Creates the shadow table of `base` (named `<base>_history`) and its indexes.
///
/// # Errors
/// Database errors.
pub async fn create_shadow_table(manager: &SchemaManager<'_>, base: &str) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    let table = format!("{base}_history");
    manager
        .create_table(exact_strings(
            backend,
            &mut Table::create()
                .table(Alias::new(&table))
                .if_not_exists()
                .col(crate::columns::uuid_key("id"))
                .col(string("object_id", 80))
                .col(int("version"))
                .col(string("kind", 8))
                .col(timestamp(backend, "at"))
                .col(string_null("actor", 200))
                .col(string_null("app", 200))
                .col(string("assignation_id", 128))
                .col(int("step"))
                .col(text_null("reason"))
                .col(json("snapshot"))
                .col(json("changes"))
                .col(string("hash", 64))
                .to_owned(),
        ))
        .await?;
    let indexes = [
        ("object_version", vec!["object_id", "version"], true),
        ("assignation_step", vec!["assignation_id", "step"], false),
        ("at", vec!["at"], false),
    ];
    for (suffix, columns, unique) in indexes {
        let mut index = Index::create();
        index
            .name(format!("ix_{table}_{suffix}"))
            .table(Alias::new(&table))
            .if_not_exists();
        for column in columns {
            index.col(Alias::new(column));
        }
        if unique {
            index.unique();
        }
        manager.create_index(index.to_owned()).await?;
    }
    Ok(())
}

/// Drops the shadow table of `base`.
///
/// # Errors
/// Database errors.
pub async fn drop_shadow_table(manager: &SchemaManager<'_>, base: &str) -> Result<(), DbErr> {
    manager
        .drop_table(
            Table::drop()
                .table(Alias::new(format!("{base}_history")))
                .if_exists()
                .to_owned(),
        )
        .await
}
