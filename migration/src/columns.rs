//! Column definitions shared by the migrations. They exist because one portable column type is not
//! always right: MySQL's `TIMESTAMP` keeps whole seconds and ends in 2038, so timestamps are
//! `DATETIME(6)` there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// A UUID primary key.
pub fn uuid_key(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .uuid()
        .not_null()
        .primary_key()
        .to_owned()
}

/// A non-null UUID (a foreign key).
pub fn uuid_ref(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .uuid()
        .not_null()
        .to_owned()
}

/// A non-null string of at most `len` characters.
pub fn string(name: &str, len: u32) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .string_len(len)
        .not_null()
        .to_owned()
}

/// A nullable string of at most `len` characters.
pub fn string_null(name: &str, len: u32) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .string_len(len)
        .null()
        .to_owned()
}

/// A nullable text.
pub fn text_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).text().null().to_owned()
}

/// A non-null integer.
pub fn int(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .integer()
        .not_null()
        .to_owned()
}

/// A non-null JSON document (`jsonb` on PostgreSQL).
pub fn json(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .json_binary()
        .not_null()
        .to_owned()
}

/// A non-null UTC timestamp with microseconds on every backend.
pub fn timestamp(backend: DbBackend, name: &str) -> ColumnDef {
    let mut def = ColumnDef::new(Alias::new(name));
    match backend {
        DbBackend::MySql => def.custom(Alias::new("DATETIME(6)")),
        _ => def.timestamp_with_time_zone(),
    };
    def.not_null().to_owned()
}

/// Gives a MySQL table a binary collation, so that string keys compare as on PostgreSQL and SQLite
/// (`Bug` and `bug` are two label names, `A` and `a` two assignation ids). Other backends are untouched.
pub fn exact_strings(backend: DbBackend, table: &mut TableCreateStatement) -> TableCreateStatement {
    if backend == DbBackend::MySql {
        table.character_set("utf8mb4").collate("utf8mb4_bin");
    }
    table.to_owned()
}

/// A nullable JSON column (binary JSON where the backend has it).
pub fn json_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .json_binary()
        .null()
        .to_owned()
}
