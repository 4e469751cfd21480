//! Schema helpers for sea-orm-migration (feature `migration`): in one call each,
//!
//! - [`create_history_support`]: the library's own tables (`assignation`, `history_prune_anchor`, the
//!   verifiable log's `history_log_*`, and on SQLite the table that marks a retention transaction);
//! - [`create_history_table`]: an entity's history table `<table>_history` with its indexes — (object
//!   id, version) unique, (assignation id, step), (at, id), (scope id, at), (trace id, over the
//!   records that have one, but on MySQL) — and its append-only triggers; [`upgrade_history_table`]
//!   brings one an older version made up to date.
//!
//! Strings compare exactly on every backend (a binary collation on MySQL), and timestamps keep
//! microseconds (`DATETIME(6)` on MySQL, whose `TIMESTAMP` keeps whole seconds and ends in 2038).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::retention::{MARK_SETTING, MARK_TABLE, MARK_VARIABLE};

fn column(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

fn timestamp(backend: DbBackend, name: &str) -> ColumnDef {
    let mut def = column(name);
    match backend {
        DbBackend::MySql => def.custom(Alias::new("DATETIME(6)")),
        _ => def.timestamp_with_time_zone(),
    };
    def.not_null().to_owned()
}

fn exact_strings(backend: DbBackend, table: &mut TableCreateStatement) -> TableCreateStatement {
    if backend == DbBackend::MySql {
        table.character_set("utf8mb4").collate("utf8mb4_bin");
    }
    table.to_owned()
}

async fn index(
    manager: &SchemaManager<'_>,
    table: &str,
    suffix: &str,
    columns: &[&str],
    unique: bool,
) -> Result<(), DbErr> {
    let name = format!("ix_{table}_{suffix}");
    // MySQL has no CREATE INDEX IF NOT EXISTS.
    if manager.has_index(table, &name).await? {
        return Ok(());
    }
    let mut index = Index::create();
    index.name(name).table(Alias::new(table)).if_not_exists();
    for c in columns {
        index.col(Alias::new(*c));
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}

/// Indexes `column` of `table` (as `ix_<table>_<suffix>`) for the rows `covered` selects (by
/// default those where it is set): the column is looked up by value only, and most writes leave it
/// `NULL` (no trace, a root assignation) or point it at the row itself (a root's root), and then
/// touch one index less — on SQLite one page less to write into the WAL at every commit. A full
/// index made by an older version is replaced. MySQL/MariaDB have no partial indexes: a full one.
async fn sparse_index(
    manager: &SchemaManager<'_>,
    table: &str,
    suffix: &str,
    column: &str,
    covered: Option<Expr>,
) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    if backend == DbBackend::MySql {
        return index(manager, table, suffix, &[column], false).await;
    }
    let name = format!("ix_{table}_{suffix}");
    if manager.has_index(table, &name).await? {
        if is_partial(manager, &name).await? {
            return Ok(());
        }
        manager
            .drop_index(
                Index::drop()
                    .name(&name)
                    .table(Alias::new(table))
                    .to_owned(),
            )
            .await?;
    }
    manager
        .create_index(
            Index::create()
                .name(name)
                .table(Alias::new(table))
                .col(Alias::new(column))
                .and_where(covered.unwrap_or_else(|| Expr::col(Alias::new(column)).is_not_null()))
                .to_owned(),
        )
        .await
}

/// Whether the index `name` (which exists) covers only some rows (PostgreSQL and SQLite).
async fn is_partial(manager: &SchemaManager<'_>, name: &str) -> Result<bool, DbErr> {
    let backend = manager.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT indexdef AS def FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1"
        }
        _ => "SELECT sql AS def FROM sqlite_master WHERE type = 'index' AND name = ?",
    };
    let found = manager
        .get_connection()
        .query_one_raw(sea_orm_migration::sea_orm::Statement::from_sql_and_values(
            backend,
            sql,
            [name.into()],
        ))
        .await?;
    let def: Option<String> = match found {
        Some(row) => row.try_get("", "def")?,
        None => None,
    };
    Ok(def.is_some_and(|d| d.to_ascii_uppercase().contains(" WHERE ")))
}

/// Creates the library's own tables, when they do not exist yet, and brings tables made by an older
/// version of the library up to date (call it again from a new migration after upgrading).
///
/// # Errors
/// Database errors.
pub async fn create_history_support(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    manager
        .create_table(exact_strings(
            backend,
            Table::create()
                .table(Alias::new("assignation"))
                .if_not_exists()
                .col(column("id").string_len(128).not_null().primary_key())
                .col(column("actor").string_len(200).null())
                .col(column("app").string_len(200).null())
                .col(timestamp(backend, "started_at"))
                .col(column("change_count").integer().not_null().default(0))
                .col(column("reverts").string_len(128).null())
                .col(column("reverted_by").string_len(128).null()),
        ))
        .await?;
    index(manager, "assignation", "started_at", &["started_at"], false).await?;
    index(manager, "assignation", "actor", &["actor"], false).await?;
    add_assignation_trees(manager).await?;
    manager
        .create_table(exact_strings(
            backend,
            Table::create()
                .table(Alias::new("history_prune_anchor"))
                .if_not_exists()
                .col(column("entity").string_len(64).not_null())
                .col(column("object_id").string_len(255).not_null())
                .col(column("version").integer().not_null())
                .col(column("hash").string_len(64).not_null())
                .col(timestamp(backend, "pruned_at"))
                .primary_key(
                    Index::create()
                        .col(Alias::new("entity"))
                        .col(Alias::new("object_id")),
                ),
        ))
        .await?;
    if backend == DbBackend::Sqlite {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE TABLE IF NOT EXISTS {MARK_TABLE} (active INTEGER NOT NULL)"
            ))
            .await?;
    }
    create_log_tables(manager).await
}

/// The verifiable log's tables (see `log::tables`).
async fn create_log_tables(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    manager
        .create_table(exact_strings(
            backend,
            Table::create()
                .table(Alias::new("history_log_entry"))
                .if_not_exists()
                .col(column("idx").big_integer().not_null().primary_key())
                .col(column("entity").string_len(64).not_null())
                .col(column("record_id").uuid().not_null())
                .col(column("object_id").string_len(255).not_null())
                .col(column("version").integer().not_null())
                .col(column("record_hash").string_len(64).not_null())
                .col(timestamp(backend, "at")),
        ))
        .await?;
    index(manager, "history_log_entry", "record", &["record_id"], true).await?;
    manager
        .create_table(exact_strings(
            backend,
            Table::create()
                .table(Alias::new("history_log_hash"))
                .if_not_exists()
                .col(column("idx").big_integer().not_null().primary_key())
                .col(column("hash").string_len(64).not_null()),
        ))
        .await?;
    let mut watermark = column("watermark");
    match backend {
        DbBackend::MySql => watermark.custom(Alias::new("DATETIME(6)")),
        _ => watermark.timestamp_with_time_zone(),
    };
    manager
        .create_table(exact_strings(
            backend,
            Table::create()
                .table(Alias::new("history_log_state"))
                .if_not_exists()
                .col(column("id").integer().not_null().primary_key())
                .col(column("size").big_integer().not_null().default(0))
                .col(watermark.null()),
        ))
        .await?;
    manager
        .create_table(exact_strings(
            backend,
            Table::create()
                .table(Alias::new("history_log_checkpoint"))
                .if_not_exists()
                .col(column("size").big_integer().not_null().primary_key())
                .col(column("root").string_len(64).not_null())
                .col(column("note").text().not_null())
                .col(timestamp(backend, "at")),
        ))
        .await
}

/// Adds each nullable string column of `columns` (name, width) that `table` lacks.
async fn add_strings(
    manager: &SchemaManager<'_>,
    table: &str,
    columns: &[(&str, u32)],
) -> Result<(), DbErr> {
    for &(name, width) in columns {
        if !manager.has_column(table, name).await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .add_column(column(name).string_len(width).null())
                        .to_owned(),
                )
                .await?;
        }
    }
    Ok(())
}

/// Gives `table` the columns of a W3C trace context, `trace_id` and `span_id` (nullable), and an
/// index `ix_<table>_trace` on `trace_id`, when it lacks them: what history tables hold per record,
/// and what an application's own tables (an audit trail, say) can hold the same way. The index
/// covers the rows that have a trace (on PostgreSQL and SQLite; a full one made by an older version
/// is replaced), so writes without one maintain no index for it.
///
/// # Errors
/// Database errors.
pub async fn add_trace_columns(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    add_strings(manager, table, &[("trace_id", 32), ("span_id", 16)]).await?;
    sparse_index(manager, table, "trace", "trace_id", None).await
}

/// Adds what assignation trees need to an `assignation` table made before them: parent, root, the
/// human it runs for and the arguments' hash, with indexes on parent (over the children only, but on
/// MySQL) and root (over the rows that are not their own root, but on MySQL). Rows already there
/// become roots of their own. Does nothing when they are there, but replace full parent and root
/// indexes an older version made.
async fn add_assignation_trees(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let table = "assignation";
    let columns = [
        ("parent_id", 128),
        ("root_id", 128),
        ("on_behalf_of", 200),
        ("args_hash", 128),
        ("args_hash_alg", 64),
    ];
    add_strings(manager, table, &columns).await?;
    manager
        .get_connection()
        .execute_unprepared("UPDATE assignation SET root_id = id WHERE root_id IS NULL")
        .await?;
    sparse_index(manager, table, "parent", "parent_id", None).await?;
    // A root is its own root: the index covers the other members of trees, and a tree's listing
    // finds its root by id (see `query::list_assignations`).
    let root_of_another = Expr::col(Alias::new("root_id")).ne(Expr::col(Alias::new("id")));
    sparse_index(manager, table, "root", "root_id", Some(root_of_another)).await
}

/// Creates the history table of `table` (named `<table>_history`) with its indexes and makes it
/// append-only.
///
/// # Errors
/// Database errors.
pub async fn create_history_table(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    let history = format!("{table}_history");
    manager
        .create_table(exact_strings(
            backend,
            Table::create()
                .table(Alias::new(&history))
                .if_not_exists()
                .col(column("id").uuid().not_null().primary_key())
                .col(column("object_id").string_len(255).not_null())
                .col(column("version").integer().not_null())
                .col(column("kind").string_len(8).not_null())
                .col(timestamp(backend, "at"))
                .col(column("actor").string_len(200).null())
                .col(column("app").string_len(200).null())
                .col(column("assignation_id").string_len(128).not_null())
                .col(column("step").integer().not_null())
                .col(column("reason").text().null())
                .col(column("snapshot").json_binary().not_null())
                .col(column("hash").string_len(64).not_null())
                .col(column("scope_id").string_len(255).null()),
        ))
        .await?;
    index(
        manager,
        &history,
        "object_version",
        &["object_id", "version"],
        true,
    )
    .await?;
    index(
        manager,
        &history,
        "assignation_step",
        &["assignation_id", "step"],
        false,
    )
    .await?;
    index(manager, &history, "scope_at", &["scope_id", "at"], false).await?;
    upgrade_history_table(manager, table).await?;
    protect_history_table(manager, &history).await
}

/// Brings the history table of `table`, made by an older version of the library, up to date: adds
/// the trace columns (`trace_id`, `span_id`: the W3C trace a change was made in) and their index
/// (partial, see [`add_trace_columns`]), and turns the `(at)` index into `(at, id)`, the order the
/// verifiable log's sequencer reads records in
/// (so that catching up on records of one instant, as a bulk insert writes them, reads on from where
/// it stopped instead of rescanning the instant). Safe to run again; [`create_history_table`] runs it
/// too. Call it for each historized entity from a new migration after upgrading.
///
/// # Errors
/// Database errors.
pub async fn upgrade_history_table(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    let history = format!("{table}_history");
    add_trace_columns(manager, &history).await?;
    index(manager, &history, "at_id", &["at", "id"], false).await?;
    let old = format!("ix_{history}_at");
    if manager.has_index(&history, &old).await? {
        manager
            .drop_index(
                Index::drop()
                    .name(old)
                    .table(Alias::new(&history))
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// Drops the history table of `table`.
///
/// # Errors
/// Database errors.
pub async fn drop_history_table(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    manager
        .drop_table(
            Table::drop()
                .table(Alias::new(format!("{table}_history")))
                .if_exists()
                .to_owned(),
        )
        .await
}

/// Installs (again) the triggers that refuse UPDATE and DELETE of the history table `history` (and
/// TRUNCATE on PostgreSQL), except deletes by retention in its marked transaction.
///
/// # Errors
/// Database errors.
pub async fn protect_history_table(
    manager: &SchemaManager<'_>,
    history: &str,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    unprotect_history_table(manager, history).await?;
    let q = |name: &str| quote(manager.get_database_backend(), name);
    let (table, append_only, no_truncate, no_update, no_delete, no_replace) = (
        q(history),
        q(&format!("{history}_append_only")),
        q(&format!("{history}_no_truncate")),
        q(&format!("{history}_no_update")),
        q(&format!("{history}_no_delete")),
        q(&format!("{history}_no_replace")),
    );
    let statements = match manager.get_database_backend() {
        DbBackend::Postgres => vec![
            format!(
                r"CREATE OR REPLACE FUNCTION sea_orm_history_append_only() RETURNS trigger
                  LANGUAGE plpgsql AS $$
                  BEGIN
                    IF TG_OP = 'DELETE' AND current_setting('{MARK_SETTING}', true) = 'on' THEN
                      RETURN OLD;
                    END IF;
                    RAISE EXCEPTION 'history is append-only: % on % refused', TG_OP, TG_TABLE_NAME
                      USING ERRCODE = 'insufficient_privilege';
                  END
                  $$"
            ),
            format!(
                "CREATE TRIGGER {append_only} BEFORE UPDATE OR DELETE ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION sea_orm_history_append_only()"
            ),
            format!(
                "CREATE TRIGGER {no_truncate} BEFORE TRUNCATE ON {table} \
                 FOR EACH STATEMENT EXECUTE FUNCTION sea_orm_history_append_only()"
            ),
        ],
        DbBackend::MySql => vec![
            format!(
                "CREATE TRIGGER {no_update} BEFORE UPDATE ON {table} FOR EACH ROW \
                 SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'history is append-only: UPDATE refused'"
            ),
            format!(
                "CREATE TRIGGER {no_delete} BEFORE DELETE ON {table} FOR EACH ROW \
                 IF COALESCE({MARK_VARIABLE}, '') <> 'on' THEN \
                 SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'history is append-only: DELETE refused'; \
                 END IF"
            ),
        ],
        _ => vec![
            format!("CREATE TABLE IF NOT EXISTS {MARK_TABLE} (active INTEGER NOT NULL)"),
            format!(
                "CREATE TRIGGER {no_update} BEFORE UPDATE ON {table} \
                 BEGIN SELECT RAISE(ABORT, 'history is append-only: UPDATE refused'); END"
            ),
            format!(
                "CREATE TRIGGER {no_delete} BEFORE DELETE ON {table} \
                 WHEN NOT EXISTS (SELECT 1 FROM {MARK_TABLE}) \
                 BEGIN SELECT RAISE(ABORT, 'history is append-only: DELETE refused'); END"
            ),
            // INSERT OR REPLACE would delete a record without the DELETE trigger noticing.
            format!(
                "CREATE TRIGGER {no_replace} BEFORE INSERT ON {table} \
                 WHEN EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id \
                 OR (object_id = NEW.object_id AND version = NEW.version)) \
                 BEGIN SELECT RAISE(ABORT, 'history is append-only: a record may not be replaced'); END"
            ),
        ],
    };
    for statement in statements {
        db.execute_unprepared(&statement).await?;
    }
    Ok(())
}

/// Removes what [`protect_history_table`] installed on `history`.
///
/// # Errors
/// Database errors.
pub async fn unprotect_history_table(
    manager: &SchemaManager<'_>,
    history: &str,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let q = |name: &str| quote(manager.get_database_backend(), name);
    let table = q(history);
    let statements = match manager.get_database_backend() {
        DbBackend::Postgres => vec![
            format!(
                "DROP TRIGGER IF EXISTS {} ON {table}",
                q(&format!("{history}_append_only"))
            ),
            format!(
                "DROP TRIGGER IF EXISTS {} ON {table}",
                q(&format!("{history}_no_truncate"))
            ),
        ],
        _ => vec![
            format!(
                "DROP TRIGGER IF EXISTS {}",
                q(&format!("{history}_no_update"))
            ),
            format!(
                "DROP TRIGGER IF EXISTS {}",
                q(&format!("{history}_no_delete"))
            ),
            format!(
                "DROP TRIGGER IF EXISTS {}",
                q(&format!("{history}_no_replace"))
            ),
        ],
    };
    for statement in statements {
        db.execute_unprepared(&statement).await?;
    }
    Ok(())
}

/// `name` as a quoted identifier of `backend`.
fn quote(backend: DbBackend, name: &str) -> String {
    match backend {
        DbBackend::MySql => format!("`{}`", name.replace('`', "``")),
        _ => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}
