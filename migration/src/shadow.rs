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

/// How the retention command marks its transaction as allowed to delete history records: on
/// PostgreSQL `SET LOCAL chronicle.retention = 'on'`, on MySQL `SET @chronicle_retention = 'on'` (reset
/// before the connection returns to the pool), on SQLite a row in `chronicle_retention` inserted and
/// deleted inside the transaction. UPDATE is refused in every case.
pub const RETENTION_MARK: &str = "chronicle.retention";

/// Installs the triggers that refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on `table`,
/// except deletes by the retention command (see [`RETENTION_MARK`]).
///
/// # Errors
/// Database errors.
pub async fn protect_shadow_table(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let statements = match manager.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => vec![
            r"CREATE OR REPLACE FUNCTION chronicle_history_append_only() RETURNS trigger
              LANGUAGE plpgsql AS $$
              BEGIN
                IF TG_OP = 'DELETE' AND current_setting('chronicle.retention', true) = 'on' THEN
                  RETURN OLD;
                END IF;
                RAISE EXCEPTION 'history is append-only: % on % refused', TG_OP, TG_TABLE_NAME
                  USING ERRCODE = 'insufficient_privilege';
              END
              $$"
            .to_owned(),
            format!(
                "CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION chronicle_history_append_only()"
            ),
            format!(
                "CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} \
                 FOR EACH STATEMENT EXECUTE FUNCTION chronicle_history_append_only()"
            ),
        ],
        sea_orm::DatabaseBackend::MySql => vec![
            format!(
                "CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} FOR EACH ROW \
                 SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'history is append-only: UPDATE refused'"
            ),
            format!(
                "CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} FOR EACH ROW \
                 IF COALESCE(@chronicle_retention, '') <> 'on' THEN \
                 SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'history is append-only: DELETE refused'; \
                 END IF"
            ),
        ],
        sea_orm::DatabaseBackend::Sqlite => vec![
            "CREATE TABLE IF NOT EXISTS chronicle_retention (active INTEGER NOT NULL)".to_owned(),
            format!(
                "CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} \
                 BEGIN SELECT RAISE(ABORT, 'history is append-only: UPDATE refused'); END"
            ),
            format!(
                "CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} \
                 WHEN NOT EXISTS (SELECT 1 FROM chronicle_retention) \
                 BEGIN SELECT RAISE(ABORT, 'history is append-only: DELETE refused'); END"
            ),
        ],
        _ => Vec::new(),
    };
    for statement in statements {
        db.execute_unprepared(&statement).await?;
    }
    Ok(())
}

/// Removes what [`protect_shadow_table`] installed on `table`.
///
/// # Errors
/// Database errors.
pub async fn unprotect_shadow_table(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let statements = match manager.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => vec![
            format!("DROP TRIGGER IF EXISTS {table}_append_only ON {table}"),
            format!("DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}"),
        ],
        _ => vec![
            format!("DROP TRIGGER IF EXISTS {table}_no_update"),
            format!("DROP TRIGGER IF EXISTS {table}_no_delete"),
        ],
    };
    for statement in statements {
        db.execute_unprepared(&statement).await?;
    }
    Ok(())
}
