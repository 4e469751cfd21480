//! Exports of history records and audit events, as NDJSON or CSV, for `chronicle export` and
//! `GET /export/history|events`. The rows are read in keyset pages and written as they come into a
//! bounded channel, so memory stays flat whatever the size; the bytes are hashed (SHA-256) and
//! counted on the way, and each export is recorded as an `EXPORT` audit event with who asked, the
//! filters, the row count and the output's hash.

pub mod http;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use entity::{HistoryEntity, audit_event};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sea_orm_history::snapshot::format_instant;
use sea_orm_history::{EntityInfo, EntitySet, HistoryRow};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::audit::query::EventFilter;
use crate::audit::{AuditKind, NewEvent};
use crate::error::{AppError, AppResult};

/// What the channel carries: bytes, or the error that ended the export (the reader then stops, and
/// an HTTP body is aborted instead of ending as if complete).
pub type Chunk = Result<Bytes, std::io::Error>;

/// Rows read per page.
const PAGE: u64 = 1_000;
/// Bytes gathered before a chunk is handed on.
const CHUNK: usize = 64 * 1024;

/// What is exported.
#[derive(Clone, Debug)]
pub enum Export {
    /// History records.
    History(HistoryFilter),
    /// Audit events.
    Events(EventFilter),
}

impl Export {
    /// `history` or `events`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::History(_) => "history",
            Self::Events(_) => "events",
        }
    }
}

/// The output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Ndjson,
    /// Comma-separated values with a header row; JSON fields as JSON text.
    Csv,
}

impl Format {
    /// The media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::Csv => "csv",
        }
    }

    /// Parses `ndjson` or `csv`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ndjson" => Some(Self::Ndjson),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// The historized entity named `name` (`TASK`, …).
///
/// # Errors
/// `BAD_INPUT` naming it when there is none.
pub fn entity_named(name: &str) -> AppResult<HistoryEntity> {
    HistoryEntity::from_name(name)
        .ok_or_else(|| AppError::BadInput(format!("entity {name:?} is not a historized entity")))
}

/// Which history records.
#[derive(Clone, Debug, Default)]
pub struct HistoryFilter {
    /// Of this entity (all when none).
    pub entity: Option<HistoryEntity>,
    /// Of this object.
    pub object_id: Option<String>,
    /// In this assignation.
    pub assignation_id: Option<String>,
    /// By this user.
    pub user: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
    /// Made in this W3C trace (32 hex digits).
    pub trace_id: Option<String>,
}

/// A trace id filter as a user typed it, as stored (lowercase hex).
///
/// # Errors
/// `BAD_INPUT` for anything but 32 hex digits, not all zeros.
pub fn trace_id(text: &str) -> AppResult<String> {
    sea_orm_history::Trace::parse_trace_id(text).ok_or_else(|| {
        crate::error::AppError::BadInput("traceId must be 32 hex digits, not all zeros".into())
    })
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

const HISTORY_FIELDS: [&str; 16] = [
    "entity",
    "id",
    "objectId",
    "version",
    "kind",
    "at",
    "user",
    "app",
    "assignationId",
    "step",
    "reason",
    "snapshot",
    "hash",
    "scopeId",
    "traceId",
    "spanId",
];

const EVENT_FIELDS: [&str; 21] = [
    "id",
    "kind",
    "action",
    "status",
    "at",
    "durationMs",
    "user",
    "app",
    "assignationId",
    "ip",
    "userAgent",
    "input",
    "output",
    "error",
    "logs",
    "entity",
    "objectId",
    "scopeId",
    "details",
    "traceId",
    "spanId",
];

fn history_json(entity: &str, row: HistoryRow) -> Json {
    json!({
        "entity": entity, "id": row.id, "objectId": row.object_id, "version": row.version,
        "kind": row.kind.as_str(), "at": format_instant(row.at),
        "user": row.actor, "app": row.app, "assignationId": row.assignation_id, "step": row.step,
        "reason": row.reason, "snapshot": row.snapshot, "hash": row.hash, "scopeId": row.scope_id,
        "traceId": row.trace_id, "spanId": row.span_id,
    })
}

fn event_json(row: audit_event::Model) -> Json {
    json!({
        "id": row.id, "kind": row.kind, "action": row.action, "status": row.status,
        "at": format_instant(row.at), "durationMs": row.duration_ms,
        "user": row.actor, "app": row.app, "assignationId": row.assignation_id, "ip": row.ip,
        "userAgent": row.user_agent, "input": row.input, "output": row.output, "error": row.error,
        "logs": row.logs, "entity": row.entity, "objectId": row.object_id, "scopeId": row.scope_id,
        "details": row.details, "traceId": row.trace_id, "spanId": row.span_id,
    })
}

/// Writes rows in a format, hashing and counting, and hands full chunks to the channel.
struct Writer {
    fields: &'static [&'static str],
    sink: Sink,
    hasher: Sha256,
    written: Written,
    out: mpsc::Sender<Chunk>,
}

/// Where a chunk gathers: bytes for NDJSON, and for CSV a `csv` writer made once per chunk (not per
/// row, as its 8 KiB buffer would be), flushed into its bytes after each row.
enum Sink {
    Ndjson(Vec<u8>),
    Csv(Box<csv::Writer<Vec<u8>>>),
}

impl Sink {
    fn csv() -> Box<csv::Writer<Vec<u8>>> {
        Box::new(
            csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(Vec::with_capacity(CHUNK * 2)),
        )
    }

    /// How many bytes are gathered.
    fn len(&self) -> usize {
        match self {
            Self::Ndjson(bytes) => bytes.len(),
            Self::Csv(csv) => csv.get_ref().len(),
        }
    }

    /// The gathered bytes, leaving an empty sink in their place.
    fn take(&mut self) -> AppResult<Vec<u8>> {
        match self {
            Self::Ndjson(bytes) => Ok(std::mem::replace(bytes, Vec::with_capacity(CHUNK * 2))),
            Self::Csv(csv) => std::mem::replace(csv, Self::csv())
                .into_inner()
                .map_err(|e| AppError::internal(format!("writing an export row: {e}"))),
        }
    }
}

impl Writer {
    fn new(format: Format, fields: &'static [&'static str], out: mpsc::Sender<Chunk>) -> Self {
        let sink = match format {
            Format::Ndjson => Sink::Ndjson(Vec::with_capacity(CHUNK * 2)),
            Format::Csv => Sink::Csv(Sink::csv()),
        };
        let mut writer = Self {
            fields,
            sink,
            hasher: Sha256::new(),
            written: Written::default(),
            out,
        };
        if let Sink::Csv(csv) = &mut writer.sink {
            // Writing into memory cannot fail.
            let _ = csv.write_record(fields);
            let _ = csv.flush();
        }
        writer
    }

    async fn row(&mut self, row: &Json) -> AppResult<()> {
        match &mut self.sink {
            Sink::Ndjson(bytes) => {
                serde_json::to_writer(&mut *bytes, row)
                    .map_err(|e| AppError::internal(format!("writing an export row: {e}")))?;
                bytes.push(b'\n');
            }
            Sink::Csv(csv) => {
                // Writing into memory cannot fail.
                for field in self.fields {
                    let _ = match &row[*field] {
                        Json::Null => csv.write_field(""),
                        Json::String(s) => csv.write_field(s),
                        other => csv.write_field(other.to_string()),
                    };
                }
                let _ = csv.write_record(None::<&[u8]>);
                let _ = csv.flush();
            }
        }
        self.written.rows += 1;
        if self.sink.len() >= CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> AppResult<()> {
        if self.sink.len() == 0 {
            return Ok(());
        }
        let chunk = self.sink.take()?;
        self.hasher.update(&chunk);
        self.written.bytes += chunk.len() as u64;
        self.out
            .send(Ok(Bytes::from(chunk)))
            .await
            .map_err(|_| AppError::BadInput("the export's reader went away".into()))
    }

    async fn finish(mut self) -> AppResult<Written> {
        self.flush().await?;
        let mut written = self.written;
        written.sha256 = hex::encode(self.hasher.finalize());
        Ok(written)
    }
}

fn history_condition(filter: &HistoryFilter) -> sea_orm::Condition {
    let col = |name: &str| Expr::col(Alias::new(name));
    let mut c = sea_orm::Condition::all();
    if let Some(v) = &filter.object_id {
        c = c.add(col("object_id").eq(v.as_str()));
    }
    if let Some(v) = &filter.assignation_id {
        c = c.add(col("assignation_id").eq(v.as_str()));
    }
    if let Some(v) = &filter.user {
        c = c.add(col("actor").eq(v.as_str()));
    }
    if let Some(v) = &filter.trace_id {
        c = c.add(col("trace_id").eq(v.as_str()));
    }
    if let Some(v) = filter.since {
        c = c.add(col("at").gte(v));
    }
    if let Some(v) = filter.until {
        c = c.add(col("at").lt(v));
    }
    c
}

fn tables(filter: &HistoryFilter) -> AppResult<Vec<&'static EntityInfo>> {
    let registry = HistoryEntity::registry()?;
    Ok(match filter.entity {
        Some(entity) => registry.get(entity.name()).into_iter().collect(),
        None => registry.entities().iter().collect(),
    })
}

/// How many rows `export` will write (for a progress bar).
///
/// # Errors
/// Database errors.
pub async fn count(db: &DatabaseConnection, export: &Export) -> AppResult<u64> {
    match export {
        Export::History(filter) => {
            let mut total = 0;
            for info in tables(filter)? {
                let mut select = sea_orm_history::query::records_select(info);
                select.cond_where(history_condition(filter));
                total += sea_orm_history::query::count(db, select).await?;
            }
            Ok(total)
        }
        Export::Events(filter) => Ok(sea_orm::PaginatorTrait::count(
            audit_event::Entity::find().filter(filter.condition()),
            db,
        )
        .await?),
    }
}

/// Writes `export` in `format` into `out`, oldest first (history: table by table); `progress` is
/// told how many rows each page held.
///
/// Rows are read in pages of their primary key, a UUIDv7 (creation order to the millisecond), so
/// each page is one index range however many rows share a timestamp.
///
/// # Errors
/// Database errors; `BAD_INPUT` when `out`'s reader went away.
pub async fn write(
    db: &DatabaseConnection,
    export: &Export,
    format: Format,
    out: mpsc::Sender<Chunk>,
    progress: impl FnMut(u64),
) -> AppResult<Written> {
    let outcome = write_rows(db, export, format, out.clone(), progress).await;
    if let Err(e) = &outcome {
        let _ = out
            .send(Err(std::io::Error::other(format!(
                "the export failed: {}",
                e.code()
            ))))
            .await;
    }
    outcome
}

async fn write_rows(
    db: &DatabaseConnection,
    export: &Export,
    format: Format,
    out: mpsc::Sender<Chunk>,
    mut progress: impl FnMut(u64),
) -> AppResult<Written> {
    match export {
        Export::History(filter) => {
            let mut writer = Writer::new(format, &HISTORY_FIELDS, out);
            for info in tables(filter)? {
                let mut after: Option<uuid::Uuid> = None;
                loop {
                    let mut select = sea_orm_history::query::records_select(info);
                    select.cond_where(history_condition(filter));
                    if let Some(id) = after {
                        select.cond_where(Expr::col(Alias::new("id")).gt(id));
                    }
                    select.order_by(Alias::new("id"), Order::Asc).limit(PAGE);
                    let rows = sea_orm_history::query::fetch_rows(db, &select).await?;
                    let n = rows.len() as u64;
                    after = rows.last().map(|r| r.id);
                    for row in rows {
                        writer.row(&history_json(&info.name, row)).await?;
                    }
                    progress(n);
                    if n < PAGE {
                        break;
                    }
                }
            }
            writer.finish().await
        }
        Export::Events(filter) => {
            let mut writer = Writer::new(format, &EVENT_FIELDS, out);
            let mut after: Option<uuid::Uuid> = None;
            loop {
                let mut select = audit_event::Entity::find().filter(filter.condition());
                if let Some(id) = after {
                    select = select.filter(audit_event::Column::Id.gt(id));
                }
                let rows = select
                    .order_by(audit_event::Column::Id, Order::Asc)
                    .limit(PAGE)
                    .all(db)
                    .await?;
                let n = rows.len() as u64;
                after = rows.last().map(|r| r.id);
                for row in rows {
                    writer.row(&event_json(row)).await?;
                }
                progress(n);
                if n < PAGE {
                    break;
                }
            }
            writer.finish().await
        }
    }
}

/// The filters of `export`, for its event.
pub fn filters_json(export: &Export) -> Json {
    let time = |t: &Option<DateTime<Utc>>| t.map(format_instant);
    match export {
        Export::History(f) => json!({
            "entity": f.entity.map(|e| e.name()), "objectId": f.object_id,
            "assignationId": f.assignation_id, "user": f.user,
            "since": time(&f.since), "until": time(&f.until), "traceId": f.trace_id,
        }),
        Export::Events(f) => json!({
            "kind": f.kind.map(AuditKind::as_str), "action": f.action,
            "status": f.status.map(crate::audit::AuditStatus::as_str), "user": f.user,
            "app": f.app, "assignationId": f.assignation_id,
            "entity": f.entity.map(|e| e.name()), "objectId": f.object_id,
            "since": time(&f.since), "until": time(&f.until), "traceId": f.trace_id,
        }),
    }
}

/// The `EXPORT` event of an export: what, in which format, the filters, and what was written (or why
/// it stopped).
pub fn event(export: &Export, format: Format, via: &str, outcome: &AppResult<Written>) -> NewEvent {
    let mut details = json!({
        "what": export.name(), "format": format.extension(), "via": via,
        "filters": filters_json(export),
    });
    let event = NewEvent::new(AuditKind::Export, export.name());
    match outcome {
        Ok(written) => {
            details["rows"] = json!(written.rows);
            details["bytes"] = json!(written.bytes);
            details["sha256"] = json!(written.sha256);
            event.details(details)
        }
        Err(e) => event.details(details).failed(format!("{}: {e}", e.code())),
    }
}
