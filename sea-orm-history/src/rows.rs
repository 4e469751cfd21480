//! Live rows of any historized table, read and written as snapshots through the entity's metadata
//! ([`EntityInfo`]): what the engine needs to revert, cascade and check references for any schema
//! without knowing its Rust types. Statements name at most [`ID_CHUNK`] objects, which keeps SQLite
//! under its expression depth and every backend under its bind-parameter limit.

use std::collections::HashMap;

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ConnectionTrait, Value};
use serde_json::{Map, Value as Json};

use crate::entity::{EntityInfo, ForeignKey};
use crate::error::{HistoryError, HistoryResult};
use crate::snapshot::{json_to_value, read_column};

/// Objects named per statement.
pub(crate) const ID_CHUNK: usize = 200;

/// The condition selecting the row of `object_id`, or `None` when it is not an id of `info`.
pub(crate) fn key_condition(info: &EntityInfo, object_id: &str) -> Option<Condition> {
    let values = info.key_of(object_id)?;
    let mut condition = Condition::all();
    for (&i, value) in info.key.iter().zip(values) {
        let column = &info.columns[i];
        let value = json_to_value(&column.ty, &value).ok()?;
        condition = condition.add(Expr::col(Alias::new(&column.name)).eq(value));
    }
    Some(condition)
}

/// The condition selecting the rows whose key is one of `object_ids` (ids not of `info` are skipped).
pub(crate) fn keys_condition(info: &EntityInfo, object_ids: &[String]) -> Condition {
    object_ids
        .iter()
        .filter_map(|id| key_condition(info, id))
        .fold(Condition::any(), Condition::add)
}

fn select(info: &EntityInfo) -> SelectStatement {
    let mut select = Query::select();
    for column in &info.columns {
        select.expr_as(
            (column.select_as)(Expr::col(Alias::new(&column.name))),
            Alias::new(&column.name),
        );
    }
    select.from(Alias::new(&info.table));
    select
}

/// The snapshots of the rows of `info` matching `condition`, locked for the rest of the transaction
/// when `lock` (a no-op on SQLite, whose writers are serialized anyway).
///
/// # Errors
/// Database errors.
pub(crate) async fn snapshots_where<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    condition: Condition,
    lock: bool,
) -> HistoryResult<Vec<Json>> {
    let mut statement = select(info);
    statement.cond_where(condition);
    if lock && db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        statement.lock_exclusive();
    }
    let mut found = Vec::new();
    for row in db.query_all(&statement).await? {
        let mut fields = Map::new();
        for column in &info.columns {
            fields.insert(
                column.field.clone(),
                read_column(&row, &column.name, &column.ty)?,
            );
        }
        found.push(Json::Object(fields));
    }
    Ok(found)
}

/// The live rows of `object_ids` as snapshots, by object id (locked when `lock`).
///
/// # Errors
/// Database errors.
pub(crate) async fn snapshots_of<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    object_ids: &[String],
    lock: bool,
) -> HistoryResult<HashMap<String, Json>> {
    let mut found = HashMap::new();
    for chunk in object_ids.chunks(ID_CHUNK) {
        let condition = keys_condition(info, chunk);
        if condition.is_empty() {
            continue;
        }
        for snapshot in snapshots_where(db, info, condition, lock).await? {
            found.insert(info.object_id(&snapshot), snapshot);
        }
    }
    Ok(found)
}

/// The value of `field` of `snapshot` for a column of `info`.
fn value_of(info: &EntityInfo, index: usize, snapshot: &Json) -> HistoryResult<Value> {
    let column = &info.columns[index];
    let field = snapshot.get(&column.field).unwrap_or(&Json::Null);
    json_to_value(&column.ty, field)
}

/// Inserts the rows `snapshots` of `info`, as they are (keys included). A column a snapshot does not
/// hold (one added after it was taken) is left to its default.
///
/// # Errors
/// Database errors; a snapshot that does not fit the table.
pub(crate) async fn insert<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    snapshots: &[Json],
) -> HistoryResult<()> {
    // Rows with the same columns go in one statement; each binds one parameter per column, far below
    // every backend's limit.
    let mut groups: Vec<(Vec<usize>, Vec<&Json>)> = Vec::new();
    for snapshot in snapshots {
        let present: Vec<usize> = (0..info.columns.len())
            .filter(|&i| snapshot.get(&info.columns[i].field).is_some())
            .collect();
        match groups.iter_mut().find(|(columns, _)| *columns == present) {
            Some((_, rows)) => rows.push(snapshot),
            None => groups.push((present, vec![snapshot])),
        }
    }
    for (columns, rows) in groups {
        let per_statement = (ID_CHUNK * 4 / columns.len().max(1)).max(1);
        for chunk in rows.chunks(per_statement) {
            let mut insert = Query::insert();
            insert
                .into_table(Alias::new(&info.table))
                .columns(columns.iter().map(|&i| Alias::new(&info.columns[i].name)));
            for snapshot in chunk {
                let mut values = Vec::with_capacity(columns.len());
                for &i in &columns {
                    values.push((info.columns[i].save_as)(Expr::val(value_of(
                        info, i, snapshot,
                    )?)));
                }
                insert
                    .values(values)
                    .map_err(|e| HistoryError::Malformed(e.to_string()))?;
            }
            db.execute(&insert).await?;
        }
    }
    Ok(())
}

/// Writes the values of `snapshots` over the existing rows of the same keys (the fields a snapshot
/// holds; a column it does not hold keeps its value).
///
/// # Errors
/// Database errors; a snapshot that does not fit the table.
pub(crate) async fn update<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    snapshots: &[Json],
) -> HistoryResult<()> {
    for snapshot in snapshots {
        let mut update = Query::update();
        update.table(Alias::new(&info.table));
        let mut any = false;
        for (i, column) in info.columns.iter().enumerate() {
            if info.key.contains(&i) || snapshot.get(&column.field).is_none() {
                continue;
            }
            update.value(
                Alias::new(&column.name),
                (column.save_as)(Expr::val(value_of(info, i, snapshot)?)),
            );
            any = true;
        }
        if !any {
            continue;
        }
        let condition = key_condition(info, &info.object_id(snapshot)).ok_or_else(|| {
            HistoryError::Malformed(format!("a snapshot of {} without its key", info.name))
        })?;
        update.cond_where(condition);
        // MySQL counts a row whose values did not change as not updated, so the count says nothing
        // here: callers lock the rows first, and record what they read back.
        db.execute(&update).await?;
    }
    Ok(())
}

/// Checks that a statement changed the `expected` rows (a row that vanished since it was read
/// under lock is a race; never a change recorded without it).
///
/// # Errors
/// [`HistoryError::NotFound`] naming how many rows were missing.
pub(crate) fn expect_rows(
    info: &EntityInfo,
    changed: u64,
    expected: usize,
    verb: &str,
) -> HistoryResult<()> {
    if changed >= expected as u64 {
        return Ok(());
    }
    Err(HistoryError::NotFound(format!(
        "{} of {expected} rows of {} to be {verb}",
        expected as u64 - changed,
        info.name
    )))
}

/// Deletes the rows of `object_ids`.
///
/// # Errors
/// Database errors.
pub(crate) async fn delete<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    object_ids: &[String],
) -> HistoryResult<u64> {
    let mut deleted = 0;
    for chunk in object_ids.chunks(ID_CHUNK) {
        let condition = keys_condition(info, chunk);
        if condition.is_empty() {
            continue;
        }
        let delete = Query::delete()
            .from_table(Alias::new(&info.table))
            .cond_where(condition)
            .to_owned();
        deleted += db.execute(&delete).await?.rows_affected();
    }
    Ok(deleted)
}

/// The values a row of `child` must hold in the columns of `fk` to point at each of `parents` (parent
/// snapshots of `parent`), skipping parents without those values.
pub(crate) fn referencing(
    child: &EntityInfo,
    fk: &ForeignKey,
    parent: &EntityInfo,
    parents: &[&Json],
) -> Vec<Condition> {
    parents
        .iter()
        .filter_map(|snapshot| {
            let mut condition = Condition::all();
            for (&child_column, parent_column) in fk.columns.iter().zip(&fk.parent_columns) {
                let parent_column = parent.column(parent_column)?;
                let value = snapshot.get(&parent_column.field)?;
                if value.is_null() {
                    return None;
                }
                let column = &child.columns[child_column];
                let value = json_to_value(&column.ty, value).ok()?;
                condition = condition.add(Expr::col(Alias::new(&column.name)).eq(value));
            }
            Some(condition)
        })
        .collect()
}

/// The rows of `child` pointing through `fk` at any of `parents` (snapshots of `parent`), locked when
/// `lock`.
///
/// # Errors
/// Database errors.
pub(crate) async fn dependents<C: ConnectionTrait>(
    db: &C,
    child: &EntityInfo,
    fk: &ForeignKey,
    parent: &EntityInfo,
    parents: &[&Json],
    lock: bool,
) -> HistoryResult<Vec<Json>> {
    let conditions = referencing(child, fk, parent, parents);
    let mut found = Vec::new();
    for chunk in conditions.chunks(ID_CHUNK) {
        let any = chunk.iter().cloned().fold(Condition::any(), Condition::add);
        found.extend(snapshots_where(db, child, any, lock).await?);
    }
    Ok(found)
}

/// `SELECT 1 FROM` `child`'s rows pointing through `fk` at any of `parents` (snapshots of `parent`),
/// or `None` when no parent holds the key's values (nothing can point at them).
pub(crate) fn pointing(
    child: &EntityInfo,
    fk: &ForeignKey,
    parent: &EntityInfo,
    parents: &[&Json],
) -> Option<SelectStatement> {
    let any = referencing(child, fk, parent, parents)
        .into_iter()
        .fold(Condition::any(), Condition::add);
    (!any.is_empty()).then(|| {
        Query::select()
            .expr(Expr::val(1))
            .from(Alias::new(&child.table))
            .cond_where(any)
            .to_owned()
    })
}

/// Which of `keys` (foreign keys of dependents of `parent`) have rows pointing through them at any
/// of `parents` (snapshots of `parent`), asked in one statement (an `EXISTS` per key) so that a
/// delete finds the keys it must deal with in one round trip instead of one read per key. With more
/// than [`ID_CHUNK`] parents every key is answered `true`, and its reader finds out.
///
/// # Errors
/// Database errors.
pub(crate) async fn pointed_at<C: ConnectionTrait>(
    db: &C,
    keys: &[(&EntityInfo, &ForeignKey)],
    parent: &EntityInfo,
    parents: &[&Json],
) -> HistoryResult<Vec<bool>> {
    if keys.is_empty() || parents.len() > ID_CHUNK {
        return Ok(vec![true; keys.len()]);
    }
    let mut probe = Query::select();
    for (i, (child, fk)) in keys.iter().enumerate() {
        let select = pointing(child, fk, parent, parents).unwrap_or_else(|| {
            // No parent holds the key's values: nothing can point at them through it.
            Query::select()
                .expr(Expr::val(1))
                .from(Alias::new(&child.table))
                .and_where(Expr::val(1).eq(0))
                .to_owned()
        });
        probe.expr_as(Expr::exists(select), Alias::new(format!("k{i}")));
    }
    let row = db
        .query_one(&probe)
        .await?
        .ok_or_else(|| HistoryError::Malformed("the dependents' probe answered nothing".into()))?;
    (0..keys.len())
        .map(|i| {
            let name = format!("k{i}");
            // A boolean on PostgreSQL and SQLite, an integer on MySQL/MariaDB.
            row.try_get::<bool>("", &name)
                .or_else(|_| row.try_get::<i64>("", &name).map(|n| n != 0))
                .map_err(HistoryError::from)
        })
        .collect()
}

/// Whether a row of `table` has `values` in `columns` (a parent that is not historized: its columns'
/// types are not known, so the values are compared as given).
///
/// # Errors
/// Database errors.
pub(crate) async fn exists<C: ConnectionTrait>(
    db: &C,
    table: &str,
    columns: &[String],
    values: &[Value],
) -> HistoryResult<bool> {
    let mut select = Query::select();
    select.expr(Expr::val(1)).from(Alias::new(table)).limit(1);
    for (column, value) in columns.iter().zip(values) {
        select.and_where(Expr::col(Alias::new(column)).eq(value.clone()));
    }
    Ok(db.query_one(&select).await?.is_some())
}
