//! The write of one change — what every hook writes — in as few round trips as the database allows,
//! with the same record [`record_changes`](crate::capture::record_changes) would write:
//!
//! - PostgreSQL: one statement. Data-modifying CTEs read the object's latest record, reserve the step
//!   on the assignation row (creating it, or locking it and counting one more), and insert the record
//!   with its version and hash computed from the latest one (`sha256` of `prev|version|step|content`,
//!   the content hash computed here); an update that changes nothing reserves and writes nothing.
//!   Through [`crate::write`], the row's own `INSERT`/`UPDATE … RETURNING` is the first CTE of that
//!   statement ([`write_with_record`]), so the row and its record are one round trip.
//! - MySQL/MariaDB (no data-modifying CTEs, no `RETURNING`): two — the reservation, then the record
//!   computed in an `INSERT … SELECT` from the assignation row the first locked (`SHA2` chains it).
//!   Both find the latest record by its key, `(object, MAX(version))`, not through a derived table
//!   (`ORDER BY … LIMIT 1`), which MariaDB builds as a temporary table on every run (measured inside
//!   the server: 0.41 → 0.36 ms per historized create's transaction, 0.19–0.23 for the plain one).
//!   Both are prepared statements: sending them as one text-protocol batch (values inlined) saves the
//!   round trip but costs more than it saves, as MariaDB parses and plans every statement of a batch
//!   each time (measured: 1.57–1.65× against 1.78–1.83× on a create); a stored procedure per history
//!   table saves it too, but MariaDB runs a procedure's statements at more cost than the round trip
//!   (measured: an update 8 % cheaper, a create no cheaper, `createTask` under load 4 % slower; see
//!   `docs/bench/profile-2026-12-07-mariadb.md`).
//! - SQLite (no data-modifying CTEs, no `sha256` of its own): one batch, one hop to the connection's
//!   worker thread — the reservation, then the record computed in an `INSERT … SELECT` from the
//!   assignation row and the object's latest record, chained by `sea_orm_history_sha256`, which
//!   `sea_orm_history::sqlite::install` (feature `sqlite`) registers on the pool's connections; each
//!   statement gated on the
//!   one before it having changed a row (`changes() > 0`). Through [`crate::write`], the row's own
//!   statement leads the same batch. A connection without the function refuses the batch before
//!   anything runs (its first statement names the function); the writer then sends two hops for the
//!   rest of the process: the reservation, whose `RETURNING` also reads the object's latest
//!   version, hash and scope (with the row's statement before it in the same batch), and the record,
//!   hashed here. Measured on a create+update: three hops 1.69–1.70×, two 1.49–1.57×, one
//!   1.35–1.46×.
//!
//! Who may write to the assignation is checked in the same statements: a record is written only when
//! the assignation's user is the context's, or both act for the same human, and (when the context
//! names a parent) the assignation is that parent's child.

use std::sync::atomic::{AtomicBool, Ordering};

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::capture::{PendingChange, admitted, insert_records, parent_id, reverted};
use crate::context::ChangeContext;
use crate::entity::{EntityInfo, ScopeRule};
use crate::error::{HistoryError, HistoryResult};
use crate::record::{HistoryKind, HistoryRow, chain_hash, content_hash, now};

/// Where the scope of the record comes from when its object has no record yet.
enum ScopeSource {
    /// Known here (the object itself, a root parent's id, or none).
    Known(Option<String>),
    /// The scope of the parent's latest record: (the parent's history table, the parent's id).
    ParentRecords(String, String),
}

fn scope_source(
    ctx: &ChangeContext,
    info: &EntityInfo,
    object_id: &str,
    snapshot: &Json,
) -> ScopeSource {
    match info.scope {
        ScopeRule::None => ScopeSource::Known(None),
        ScopeRule::Root => ScopeSource::Known(Some(object_id.to_owned())),
        ScopeRule::Via(fk) => {
            let Some(parent) = ctx.registry().by_table(&info.parents[fk].parent_table) else {
                return ScopeSource::Known(None);
            };
            match parent_id(info, fk, snapshot) {
                None => ScopeSource::Known(None),
                Some(id) if parent.scope == ScopeRule::Root => ScopeSource::Known(Some(id)),
                Some(id) => ScopeSource::ParentRecords(parent.history_table.clone(), id),
            }
        }
    }
}

/// Quotes an identifier for `backend`.
pub(crate) fn quote(backend: DbBackend, name: &str) -> String {
    match backend {
        DbBackend::MySql => format!("`{}`", name.replace('`', "``")),
        _ => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

/// The marker [`with_names`] replaces with the parent's history table.
const PARENT_TABLE: &str = "\"_h_parent_table\"";

/// The scope of `object`'s records in `table` (SQL expressions, quoted for `backend`): its latest
/// record's that has one, from the top of the `(object_id, version)` index however long its history
/// (an object's records keep the scope of its first).
pub(crate) fn latest_scope(backend: DbBackend, table: &str, object: &str) -> String {
    let (scope, id, version) = (
        quote(backend, "scope_id"),
        quote(backend, "object_id"),
        quote(backend, "version"),
    );
    format!(
        "(SELECT {scope} FROM {table} WHERE {id} = {object} AND {scope} IS NOT NULL \
         ORDER BY {version} DESC LIMIT 1)"
    )
}

/// `sql` (for `backend`) with the history table of `info` and, when the scope comes from the parent's
/// records, the parent's history table in place of their markers (`"_h_table"`,
/// `"_h_parent_table"`). Identifiers go in once the placeholders are numbered: a quoted name may
/// hold a `$`.
fn with_names(backend: DbBackend, sql: String, info: &EntityInfo, scope: &ScopeSource) -> String {
    let sql = sql.replace("\"_h_table\"", &quote(backend, &info.history_table));
    match scope {
        ScopeSource::ParentRecords(table, _) => sql.replace(PARENT_TABLE, &quote(backend, table)),
        ScopeSource::Known(_) => sql,
    }
}

/// Records one change of `info` through `db` (see the module docs). Returns whether a record was
/// written (an update that changes nothing writes none).
///
/// # Errors
/// [`HistoryError::NoContext`]; [`HistoryError::ForeignAssignation`]; database errors.
pub(crate) async fn record_one<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    change: PendingChange,
) -> HistoryResult<bool> {
    let backend = db.get_database_backend();
    let ctx = ChangeContext::require()?;
    let (row, content, scope) = unsealed(&ctx, info, change);
    let written = match backend {
        DbBackend::Postgres => {
            postgres(db, info, &ctx, &row, &content, &scope, None)
                .await?
                .0
        }
        DbBackend::Sqlite => {
            sqlite(db, info, &ctx, row.clone(), &content, &scope, None)
                .await?
                .0
        }
        _ => mysql(db, info, &ctx, &row, &content, &scope).await?,
    };
    let recorded = written.is_some();
    tally(&ctx, info, &row, written);
    Ok(recorded)
}

/// Writes the live row with `statement` (an `INSERT`, `UPDATE` or `DELETE … RETURNING` every column,
/// built for the connection's backend) and records `change`, the row as the statement leaves it: on
/// PostgreSQL in the same statement (its first CTE), on SQLite in the same batch as the reservation
/// and the record (or, on a connection without `sea_orm_history_sha256`, as the reservation, the
/// record after). Returns the row `statement` returned and whether a record was written
/// (none for an update that, as the statement saw the history, changed nothing), or `None` when it
/// matched no row (and nothing was recorded).
///
/// # Errors
/// As [`record_one`]; [`HistoryError::Malformed`] on another backend.
pub(crate) async fn write_with_record<C: ConnectionTrait>(
    db: &C,
    ctx: &ChangeContext,
    info: &EntityInfo,
    change: PendingChange,
    statement: Statement,
) -> HistoryResult<Option<(sea_orm::QueryResult, bool)>> {
    let (row, content, scope) = unsealed(ctx, info, change);
    let (written, live) = match db.get_database_backend() {
        DbBackend::Postgres => {
            postgres(db, info, ctx, &row, &content, &scope, Some(statement)).await?
        }
        DbBackend::Sqlite => {
            sqlite(
                db,
                info,
                ctx,
                row.clone(),
                &content,
                &scope,
                Some(statement),
            )
            .await?
        }
        _ => {
            return Err(HistoryError::Malformed(
                "a row and its reservation in one round trip is a PostgreSQL or SQLite write"
                    .into(),
            ));
        }
    };
    let recorded = written.is_some();
    tally(ctx, info, &row, written);
    Ok(live.map(|live| (live, recorded)))
}

/// Everything of `change`'s record but its version, step, hash and scope, which the database
/// computes; its content hash; where its scope comes from.
fn unsealed(
    ctx: &ChangeContext,
    info: &EntityInfo,
    change: PendingChange,
) -> (HistoryRow, String, ScopeSource) {
    let row = HistoryRow {
        id: Uuid::now_v7(),
        object_id: change.object_id,
        version: 0,
        kind: change.kind,
        at: now(),
        actor: ctx.user.clone(),
        app: ctx.app.clone(),
        assignation_id: ctx.assignation.to_string(),
        step: 0,
        reason: ctx.reason.clone(),
        snapshot: change.snapshot,
        hash: String::new(),
        scope_id: None,
        trace_id: ctx.trace.as_ref().map(|t| t.trace_id().to_owned()),
        span_id: ctx.trace.as_ref().map(|t| t.span_id().to_owned()),
    };
    let content = content_hash(&info.name, &row);
    let scope = scope_source(ctx, info, &row.object_id, &row.snapshot);
    (row, content, scope)
}

/// Tells the context's tally, if any, of the record written.
fn tally(ctx: &ChangeContext, info: &EntityInfo, row: &HistoryRow, written: Option<WrittenScope>) {
    if let (Some(scope_id), Some(tally)) = (written, &ctx.tally) {
        tally.add_one(&info.name, &row.object_id, row.kind, scope_id);
    }
}

/// `sql` with each placeholder `$n` renumbered `$(n + by)`. `sql` holds no `$` but its placeholders
/// (the writer's own statements, before identifiers are put in).
fn shift_placeholders(sql: &str, by: usize) -> String {
    if by == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// The SQL and the values of the live row's statement, if any (no SQL and no values without one).
fn split_live(live: Option<Statement>) -> (Option<String>, Vec<Value>) {
    match live {
        Some(statement) => (
            Some(statement.sql),
            statement.values.map(|v| v.0).unwrap_or_default(),
        ),
        None => (None, Vec::new()),
    }
}

/// The scope of the written record: `Some(known)`, or `None` when it was taken from the parent's
/// records in the statement and is not known here.
type WrittenScope = Option<Option<String>>;

/// The tree columns of a new assignation row: parent, root, on behalf of, arguments hash and its
/// algorithm.
fn lineage_values(ctx: &ChangeContext) -> [Value; 5] {
    [
        ctx.lineage.parent.as_ref().map(|p| p.to_string()).into(),
        ctx.root_id().to_owned().into(),
        ctx.on_behalf_of().map(str::to_owned).into(),
        ctx.lineage.args_hash.clone().into(),
        ctx.lineage.args_hash_alg.clone().into(),
    ]
}

/// The PostgreSQL write: one statement, after `live` (the row's own `INSERT`/`UPDATE … RETURNING`)
/// when there is one. Returns what was recorded and the row `live` returned (`None` when it matched
/// no row, and then nothing is recorded).
async fn postgres<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    ctx: &ChangeContext,
    row: &HistoryRow,
    content: &str,
    scope: &ScopeSource,
    live: Option<Statement>,
) -> HistoryResult<(Option<WrittenScope>, Option<sea_orm::QueryResult>)> {
    // The live row's values come first, as its statement numbers them; the record's follow.
    let (live_sql, mut values) = split_live(live);
    let offset = values.len();
    values.extend::<[Value; 10]>([
        row.object_id.clone().into(),                      // $1
        row.assignation_id.clone().into(),                 // $2
        row.actor.clone().into(),                          // $3
        row.app.clone().into(),                            // $4
        row.at.into(),                                     // $5
        row.kind.as_str().into(),                          // $6
        Value::Json(Some(Box::new(row.snapshot.clone()))), // $7
        row.id.into(),                                     // $8
        row.reason.clone().into(),                         // $9
        content.into(),                                    // $10
    ]);
    values.extend(lineage_values(ctx)); // $11 to $15
    values.extend([row.trace_id.clone().into(), row.span_id.clone().into()]); // $16, $17
    let scope_sql = match scope {
        ScopeSource::Known(known) => {
            values.push(known.clone().into());
            "$18::text".to_owned()
        }
        ScopeSource::ParentRecords(_, id) => {
            values.push(id.clone().into());
            latest_scope(DbBackend::Postgres, PARENT_TABLE, "$18")
        }
    };
    // The reservation (and so the record) only when the live row was written.
    let gate = if live_sql.is_some() {
        "AND EXISTS (SELECT 1 FROM \"_h_w\")"
    } else {
        ""
    };
    let ctes = shift_placeholders(
        &format!(
            r#""_h_p" AS (
  SELECT "version", "hash", "snapshot", "scope_id" FROM "_h_table"
  WHERE "object_id" = $1 ORDER BY "version" DESC LIMIT 1
), "_h_a" AS (
  INSERT INTO "assignation" ("id", "actor", "app", "started_at", "change_count", "parent_id",
                             "root_id", "on_behalf_of", "args_hash", "args_hash_alg")
  SELECT $2, $3, $4, $5, 1, $11, $12, $13, $14, $15
  WHERE NOT EXISTS (SELECT 1 FROM "_h_p" p WHERE $6 = 'UPDATE' AND p."snapshot" = $7) {gate}
  ON CONFLICT ("id") DO UPDATE SET "change_count" = "assignation"."change_count" + 1
  RETURNING "actor", "on_behalf_of", "parent_id", "change_count", "reverted_by"
), "_h_h" AS (
  INSERT INTO "_h_table" ("id", "object_id", "version", "kind", "at", "actor", "app",
                   "assignation_id", "step", "reason", "snapshot", "hash", "scope_id", "trace_id",
                   "span_id")
  SELECT $8, $1, COALESCE(p."version", 0) + 1, $6, $5, $3, $4, $2, a."change_count" - 1, $9, $7,
         encode(sha256(convert_to(COALESCE(p."hash", '') || '|' || (COALESCE(p."version", 0) + 1)::text
           || '|' || (a."change_count" - 1)::text || '|' || $10, 'UTF8')), 'hex'),
         COALESCE(p."scope_id", {scope_sql}), $16, $17
  FROM "_h_a" a LEFT JOIN "_h_p" p ON true
  WHERE (a."actor" IS NOT DISTINCT FROM $3 OR a."on_behalf_of" = $13) AND a."reverted_by" IS NULL
    AND ($11::text IS NULL OR a."parent_id" = $11)
  RETURNING "scope_id"
)"#
        ),
        offset,
    );
    let ctes = with_names(DbBackend::Postgres, ctes, info, scope);
    let outcome = r#"(SELECT COUNT(*) FROM "_h_a") AS "_h_reserved",
       (SELECT COUNT(*) FROM "_h_h") AS "_h_written", (SELECT "scope_id" FROM "_h_h") AS "_h_scope_id",
       (SELECT "reverted_by" FROM "_h_a") AS "_h_reverted_by",
       (SELECT "parent_id" FROM "_h_a") AS "_h_parent_id""#;
    let sql = match &live_sql {
        Some(live) => {
            format!("WITH \"_h_w\" AS ({live}), {ctes}\nSELECT \"_h_w\".*, {outcome} FROM \"_h_w\"")
        }
        None => format!("WITH {ctes}\nSELECT {outcome}"),
    };
    let result = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    let result = match (result, &live_sql) {
        (Some(result), _) => result,
        (None, Some(_)) => return Ok((None, None)),
        (None, None) => {
            return Err(HistoryError::Malformed(
                "the history write answered nothing".into(),
            ));
        }
    };
    let reserved: i64 = result.try_get("", "_h_reserved")?;
    let written: i64 = result.try_get("", "_h_written")?;
    let reverted_by: Option<String> = result.try_get("", "_h_reverted_by")?;
    let parent: Option<String> = result.try_get("", "_h_parent_id")?;
    let recorded = match (reserved, written, reverted_by) {
        (0, _, _) => None,
        (_, 0, Some(by)) => return Err(reverted(&row.assignation_id, &by)),
        (_, 0, None) => return Err(refused(ctx, parent.as_deref())),
        _ => Some(Some(result.try_get("", "_h_scope_id")?)),
    };
    Ok((recorded, Some(result)))
}

async fn mysql<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    ctx: &ChangeContext,
    row: &HistoryRow,
    content: &str,
    scope: &ScopeSource,
) -> HistoryResult<Option<WrittenScope>> {
    let q = |name: &str| quote(DbBackend::MySql, name);
    let h = q(&info.history_table);
    let snapshot = Value::Json(Some(Box::new(row.snapshot.clone())));
    // The reservation: nothing for an update that changes nothing. A create or a delete always
    // changes something, and its reservation is a plain `INSERT … VALUES`, which MariaDB executes
    // with less work than an `INSERT … SELECT`.
    let columns = "INSERT INTO `assignation` (`id`, `actor`, `app`, `started_at`, `change_count`,
                       `parent_id`, `root_id`, `on_behalf_of`, `args_hash`, `args_hash_alg`)";
    let counted = "ON DUPLICATE KEY UPDATE `change_count` = `change_count` + 1";
    let mut values: Vec<Value> = vec![
        row.assignation_id.clone().into(),
        row.actor.clone().into(),
        row.app.clone().into(),
        row.at.into(),
    ];
    values.extend(lineage_values(ctx));
    let reserve = if row.kind == HistoryKind::Update {
        values.extend([
            row.object_id.clone().into(),
            snapshot.clone(),
            row.object_id.clone().into(),
        ]);
        format!(
            "{columns}
             SELECT ?, ?, ?, ?, 1, ?, ?, ?, ?, ? FROM DUAL
             WHERE NOT EXISTS (
               SELECT 1 FROM {h} AS p
               WHERE p.`object_id` = ? AND p.`snapshot` = ?
                 AND p.`version` = (SELECT MAX(`version`) FROM {h} WHERE `object_id` = ?))
             {counted}"
        )
    } else {
        format!("{columns} VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?) {counted}")
    };
    let reserved = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::MySql,
            reserve,
            values,
        ))
        .await?
        .rows_affected();
    if reserved == 0 {
        return Ok(None);
    }
    let (scope_sql, scope_value, known) = match scope {
        ScopeSource::Known(known) => ("?".to_owned(), known.clone(), Some(known.clone())),
        ScopeSource::ParentRecords(table, id) => (
            latest_scope(DbBackend::MySql, &q(table), "?"),
            Some(id.clone()),
            None,
        ),
    };
    let parent = ctx.lineage.parent.as_ref().map(|p| p.to_string());
    // The record, from the assignation row the reservation locked and counted.
    let insert = format!(
        "INSERT INTO {h} (`id`, `object_id`, `version`, `kind`, `at`, `actor`, `app`, `assignation_id`,
                          `step`, `reason`, `snapshot`, `hash`, `scope_id`, `trace_id`, `span_id`)
         SELECT ?, ?, COALESCE(p.`version`, 0) + 1, ?, ?, ?, ?, a.`id`, a.`change_count` - 1, ?, ?,
                SHA2(CONCAT(COALESCE(p.`hash`, ''), '|', COALESCE(p.`version`, 0) + 1, '|',
                            a.`change_count` - 1, '|', ?), 256),
                COALESCE(p.`scope_id`, {scope_sql}), ?, ?
         FROM `assignation` AS a
         LEFT JOIN {h} AS p ON p.`object_id` = ?
           AND p.`version` = (SELECT MAX(`version`) FROM {h} WHERE `object_id` = ?)
         WHERE a.`id` = ? AND (a.`actor` <=> ? OR a.`on_behalf_of` = ?) AND a.`reverted_by` IS NULL
           AND (? IS NULL OR a.`parent_id` = ?)"
    );
    let written = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::MySql,
            insert,
            [
                row.id.into(),
                row.object_id.clone().into(),
                row.kind.as_str().into(),
                row.at.into(),
                row.actor.clone().into(),
                row.app.clone().into(),
                row.reason.clone().into(),
                snapshot,
                content.into(),
                scope_value.into(),
                row.trace_id.clone().into(),
                row.span_id.clone().into(),
                row.object_id.clone().into(),
                row.object_id.clone().into(),
                row.assignation_id.clone().into(),
                row.actor.clone().into(),
                ctx.on_behalf_of().map(str::to_owned).into(),
                parent.clone().into(),
                parent.into(),
            ],
        ))
        .await?
        .rows_affected();
    if written == 0 {
        // Which of the two refusals: read the assignation (on this error path only).
        let found = db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::MySql,
                "SELECT `reverted_by`, `parent_id` FROM `assignation` WHERE `id` = ?",
                [row.assignation_id.clone().into()],
            ))
            .await?;
        let (by, parent) = match found {
            Some(r) => (
                r.try_get::<Option<String>>("", "reverted_by")?,
                r.try_get::<Option<String>>("", "parent_id")?,
            ),
            None => (None, None),
        };
        return Err(match by {
            Some(by) => reverted(&row.assignation_id, &by),
            None => refused(ctx, parent.as_deref()),
        });
    }
    Ok(Some(known))
}

/// The SQLite write: in one hop where the connection has `sea_orm_history_sha256`
/// ([`sqlite_chained`]), else in two ([`sqlite_two_hops`]). `live` is the row's own statement, whose
/// placeholders are `?` in order. Returns what was recorded and the row `live` returned (`None` when
/// it matched no row).
async fn sqlite<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    ctx: &ChangeContext,
    row: HistoryRow,
    content: &str,
    scope: &ScopeSource,
    live: Option<Statement>,
) -> HistoryResult<(Option<WrittenScope>, Option<sea_orm::QueryResult>)> {
    if !sqlite_sha256_missing() {
        match sqlite_chained(db, info, ctx, &row, content, scope, live.clone()).await {
            Err(HistoryError::Database(e)) if lacks_sha256(&e) => {
                SQLITE_SHA256_MISSING.store(true, Ordering::Relaxed);
                tracing::warn!(
                    "a SQLite connection lacks sea_orm_history_sha256 (see sea_orm_history::sqlite::install): \
                     history is written with a round trip more per change from now on"
                );
            }
            outcome => return outcome,
        }
    }
    sqlite_two_hops(db, info, ctx, row, content, scope, live).await
}

/// Set once a SQLite connection was found without `sea_orm_history_sha256`: from then on the writer
/// takes the two-hop path (see [`crate::sqlite`](mod@crate::sqlite)'s docs).
/// Without the `sqlite` feature nothing registers the function: missing from the start.
static SQLITE_SHA256_MISSING: AtomicBool = AtomicBool::new(!cfg!(feature = "sqlite"));

/// Whether a SQLite connection was found without `sea_orm_history_sha256`.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn sqlite_sha256_missing() -> bool {
    SQLITE_SHA256_MISSING.load(Ordering::Relaxed)
}

/// Whether `error` is SQLite refusing a statement that names `sea_orm_history_sha256`, which the
/// connection does not have.
fn lacks_sha256(error: &sea_orm::DbErr) -> bool {
    error
        .to_string()
        .contains("no such function: sea_orm_history_sha256")
}

/// The SQLite write in one hop, for connections with `sea_orm_history_sha256`: a statement naming
/// the function (so that a connection without it fails before anything runs), the row's own
/// statement when there is one, the reservation, and the record computed and chained from the
/// assignation row the reservation counted and the object's latest record, each gated on the one
/// before it having changed a row (`changes() > 0`).
async fn sqlite_chained<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    ctx: &ChangeContext,
    row: &HistoryRow,
    content: &str,
    scope: &ScopeSource,
    live: Option<Statement>,
) -> HistoryResult<(Option<WrittenScope>, Option<sea_orm::QueryResult>)> {
    let (live_sql, mut values) = split_live(live);
    let offset = values.len();
    let scope_sql = match scope {
        ScopeSource::Known(_) => "$14".to_owned(),
        // The parent's id is `$13`.
        ScopeSource::ParentRecords(..) => latest_scope(DbBackend::Sqlite, PARENT_TABLE, "$13"),
    };
    let statements = with_names(
        DbBackend::Sqlite,
        shift_placeholders(
            &format!(
                r#"{};
INSERT INTO "_h_table" ("id", "object_id", "version", "kind", "at", "actor", "app", "assignation_id",
                        "step", "reason", "snapshot", "hash", "scope_id", "trace_id", "span_id")
SELECT $15, $1, COALESCE(p."version", 0) + 1, $11, $5, $3, $4, $2, a."change_count" - 1, $16, $12,
       sea_orm_history_sha256(COALESCE(p."hash", '') || '|' || (COALESCE(p."version", 0) + 1) || '|'
                              || (a."change_count" - 1) || '|' || $17),
       COALESCE(p."scope_id", {scope_sql}), $18, $19
FROM "assignation" AS a
LEFT JOIN (SELECT "version", "hash", "scope_id" FROM "_h_table" WHERE "object_id" = $1
           ORDER BY "version" DESC LIMIT 1) AS p ON 1
WHERE a."id" = $2 AND changes() > 0 AND (a."actor" IS $3 OR a."on_behalf_of" = $8)
  AND a."reverted_by" IS NULL AND ($6 IS NULL OR a."parent_id" = $6)
RETURNING "scope_id""#,
                sqlite_reservation(live_sql.is_some(), ""),
            ),
            offset,
        ),
        info,
        scope,
    );
    sqlite_reservation_values(ctx, row, scope, &mut values);
    values.extend::<[Value; 6]>([
        match scope {
            ScopeSource::Known(known) => known.clone().into(),
            ScopeSource::ParentRecords(..) => Value::String(None),
        }, // $14
        row.id.into(),               // $15
        row.reason.clone().into(),   // $16
        content.into(),              // $17
        row.trace_id.clone().into(), // $18
        row.span_id.clone().into(),  // $19
    ]);
    let sql = match &live_sql {
        Some(live) => format!("SELECT sea_orm_history_sha256('') WHERE 0;\n{live};\n{statements}"),
        None => format!("SELECT sea_orm_history_sha256('') WHERE 0;\n{statements}"),
    };
    // Each statement answers at most one row, and each runs only if the one before it changed a
    // row: the row's own (or nothing), then the reservation's, then the record's.
    let mut answers = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await?
        .into_iter();
    let live = match live_sql {
        Some(_) => match answers.next() {
            Some(live) => Some(live),
            None => return Ok((None, None)),
        },
        None => None,
    };
    let Some(reserved) = answers.next() else {
        return Ok((None, live));
    };
    admitted(ctx, &reserved)?;
    let Some(written) = answers.next() else {
        return Err(HistoryError::Malformed(
            "the history record was not written for an admitted change".into(),
        ));
    };
    Ok((Some(Some(written.try_get("", "scope_id")?)), live))
}

/// The SQLite write on a connection without `sea_orm_history_sha256`: the reservation, then the
/// record, hashed here. With `live`, the row's statement and the reservation go as one round trip,
/// the reservation only when the row's statement changed a row.
async fn sqlite_two_hops<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    ctx: &ChangeContext,
    mut row: HistoryRow,
    content: &str,
    scope: &ScopeSource,
    live: Option<Statement>,
) -> HistoryResult<(Option<WrittenScope>, Option<sea_orm::QueryResult>)> {
    // The live row's values come first, as its statement numbers them; the reservation's follow,
    // numbered `$n` from there.
    let (live_sql, mut values) = split_live(live);
    let offset = values.len();
    let latest = |column: &str| {
        format!(
            "(SELECT \"{column}\" FROM \"_h_table\" WHERE \"object_id\" = $1 ORDER BY \"version\" DESC LIMIT 1)"
        )
    };
    let scope_sql = match scope {
        ScopeSource::Known(_) => "NULL".to_owned(),
        ScopeSource::ParentRecords(..) => latest_scope(DbBackend::Sqlite, PARENT_TABLE, "$13"),
    };
    // The reservation, also returning what the record is computed from: the object's latest record.
    let reserve = with_names(
        DbBackend::Sqlite,
        shift_placeholders(
            &sqlite_reservation(
                live_sql.is_some(),
                &format!(
                    r#",
          {} AS "prev_version", {} AS "prev_hash", {} AS "prev_scope", {scope_sql} AS "parent_scope""#,
                    latest("version"),
                    latest("hash"),
                    latest("scope_id"),
                ),
            ),
            offset,
        ),
        info,
        scope,
    );
    sqlite_reservation_values(ctx, &row, scope, &mut values);
    let (live, reserved) = match &live_sql {
        None => {
            let reserved = db
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Sqlite,
                    reserve,
                    values,
                ))
                .await?;
            (None, reserved)
        }
        Some(live_sql) => {
            // The row's statement answers its row (or nothing), then the reservation its own.
            let mut answers = db
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Sqlite,
                    format!("{live_sql};\n{reserve}"),
                    values,
                ))
                .await?
                .into_iter();
            let Some(live) = answers.next() else {
                return Ok((None, None));
            };
            (Some(live), answers.next())
        }
    };
    let Some(reserved) = reserved else {
        return Ok((None, live));
    };
    let count = admitted(ctx, &reserved)?;
    let previous_version: Option<i32> = reserved.try_get("", "prev_version")?;
    let previous_hash: Option<String> = reserved.try_get("", "prev_hash")?;
    let previous_scope: Option<String> = reserved.try_get("", "prev_scope")?;
    row.version = previous_version.unwrap_or(0) + 1;
    row.step = count - 1;
    row.hash = chain_hash(previous_hash.as_deref(), row.version, row.step, content);
    // The previous record's scope, else the one known or the parent's (`COALESCE`, as the one-hop
    // path and PostgreSQL's statement have it).
    row.scope_id = match (previous_scope, scope) {
        (Some(previous), _) => Some(previous),
        (None, ScopeSource::Known(known)) => known.clone(),
        (None, ScopeSource::ParentRecords(..)) => reserved.try_get("", "parent_scope")?,
    };
    insert_records(db, info, std::slice::from_ref(&row)).await?;
    Ok((Some(Some(row.scope_id)), live))
}

/// SQLite's reservation of the record's step, its values numbered as [`sqlite_reservation_values`]
/// gives them: the assignation row created, or counted one more (and locked), returning what the
/// admission is checked on, then `returning`; nothing for an update that changes nothing, and with
/// `gated` nothing unless the statement before it in the batch (the row's own) changed a row.
fn sqlite_reservation(gated: bool, returning: &str) -> String {
    let gate = if gated { "AND changes() > 0" } else { "" };
    format!(
        r#"INSERT INTO "assignation" ("id", "actor", "app", "started_at", "change_count", "parent_id",
                           "root_id", "on_behalf_of", "args_hash", "args_hash_alg")
SELECT $2, $3, $4, $5, 1, $6, $7, $8, $9, $10
WHERE NOT EXISTS (SELECT 1 FROM (SELECT "snapshot" FROM "_h_table" WHERE "object_id" = $1
                                 ORDER BY "version" DESC LIMIT 1) AS p
                  WHERE $11 = 'UPDATE' AND json(p."snapshot") = json($12)) {gate}
ON CONFLICT ("id") DO UPDATE SET "change_count" = "assignation"."change_count" + 1
RETURNING "actor", "on_behalf_of", "parent_id", "change_count", "reverted_by"{returning}"#
    )
}

/// The values of [`sqlite_reservation`], `$1` to `$13`, appended to `values`.
fn sqlite_reservation_values(
    ctx: &ChangeContext,
    row: &HistoryRow,
    scope: &ScopeSource,
    values: &mut Vec<Value>,
) {
    values.extend::<[Value; 5]>([
        row.object_id.clone().into(),      // $1
        row.assignation_id.clone().into(), // $2
        row.actor.clone().into(),          // $3
        row.app.clone().into(),            // $4
        row.at.into(),                     // $5
    ]);
    values.extend(lineage_values(ctx)); // $6 to $10
    values.extend([
        row.kind.as_str().into(),                          // $11
        Value::Json(Some(Box::new(row.snapshot.clone()))), // $12
        match scope {
            ScopeSource::ParentRecords(_, id) => id.clone().into(),
            ScopeSource::Known(_) => Value::String(None),
        }, // $13
    ]);
}

/// Why a change may not join its assignation, which was not reverted: another parent than the one
/// recorded, or another user for another human.
fn refused(ctx: &ChangeContext, recorded_parent: Option<&str>) -> HistoryError {
    match &ctx.lineage.parent {
        Some(claimed) if recorded_parent != Some(claimed.as_str()) => {
            HistoryError::Forbidden(format!(
                "the assignation {} is not a child of {claimed}",
                ctx.assignation
            ))
        }
        _ => HistoryError::ForeignAssignation(ctx.assignation.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::{quote, shift_placeholders};
    use sea_orm::DbBackend;

    #[test]
    fn identifiers_are_quoted_for_their_backend() {
        assert_eq!(
            quote(DbBackend::Postgres, "order_history"),
            "\"order_history\""
        );
        assert_eq!(quote(DbBackend::MySql, "order`x"), "`order``x`");
    }

    #[test]
    fn placeholders_are_renumbered_after_the_rows_own() {
        assert_eq!(
            shift_placeholders("SELECT $1, $18 || $2 WHERE x = $10 AND '$' = $", 9),
            "SELECT $10, $27 || $11 WHERE x = $19 AND '$' = $"
        );
        assert_eq!(shift_placeholders("$1", 0), "$1");
    }
}
