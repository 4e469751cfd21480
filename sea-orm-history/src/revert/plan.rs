//! Planning a revert: for every object the reverted assignations touched, the state to go back to
//! (absent for an object they created, the snapshot before their first change otherwise), diffed
//! against the live row. Undoing every change in reverse order ends in exactly those targets, so a
//! plan holds each object's net change once.
//!
//! Records are streamed in step order and kept as one entry per object, so memory grows with the
//! objects touched, not with the changes. An object changed by another assignation after, or between,
//! the reverted changes is a conflict.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::sea_query::{Alias, ColumnType, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, FromQueryResult};
use serde_json::Value as Json;

use super::{PlannedChange, RevertPlan};
use crate::capture::latest_rows;
use crate::entity::EntityInfo;
use crate::error::{Conflict, ConflictReason, HistoryError, HistoryResult};
use crate::query::snapshots_at;
use crate::record::{HistoryKind, diff, now};
use crate::registry::Registry;
use crate::rows;
use crate::snapshot::value_to_json;
use crate::tables::assignation;

/// Records of the reverted assignations read per round trip.
const READ_CHUNK: u64 = 1000;

/// What the reverted assignations did to one object.
struct Touched {
    first_version: i32,
    first_kind: HistoryKind,
    last_version: i32,
    /// How many of the object's records they hold (fewer than `last - first + 1`: another assignation
    /// changed it in between).
    records: i32,
}

/// One record, without its snapshot: what planning reads for every change.
#[derive(FromQueryResult)]
struct TouchRow {
    object_id: String,
    version: i32,
    kind: String,
    step: i32,
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// The objects `assignation_id` touched in `info`'s table, streamed in step order; also how many
/// records it read.
async fn touched_by<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    assignation_id: &str,
    touched: &mut BTreeMap<String, Touched>,
) -> HistoryResult<u64> {
    let mut seen = 0;
    let mut after: Option<i32> = None;
    loop {
        let mut select = Query::select();
        select
            .columns(["object_id", "version", "kind", "step"].map(col))
            .from(col(&info.history_table))
            .and_where(Expr::col(col("assignation_id")).eq(assignation_id));
        if let Some(step) = after {
            select.and_where(Expr::col(col("step")).gt(step));
        }
        select.order_by(col("step"), Order::Asc).limit(READ_CHUNK);
        let stmt = db.get_database_backend().build(&select);
        let rows = TouchRow::find_by_statement(stmt).all(db).await?;
        let done = (rows.len() as u64) < READ_CHUNK;
        seen += rows.len() as u64;
        for row in rows {
            after = Some(row.step);
            let kind = HistoryKind::parse(&row.kind)
                .ok_or_else(|| HistoryError::Malformed(format!("history kind {:?}", row.kind)))?;
            let entry = touched.entry(row.object_id).or_insert(Touched {
                first_version: row.version,
                first_kind: kind,
                last_version: row.version,
                records: 0,
            });
            entry.records += 1;
            if row.version < entry.first_version {
                entry.first_version = row.version;
                entry.first_kind = kind;
            }
            entry.last_version = Ord::max(entry.last_version, row.version);
        }
        if done {
            return Ok(seen);
        }
    }
}

/// A conflict on each of `ids`, naming the assignation that changed it last (one batched read).
pub(super) async fn conflicts_on<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    ids: Vec<String>,
    reason: ConflictReason,
) -> HistoryResult<Vec<Conflict>> {
    let latest = latest_rows(db, info, &ids).await?;
    Ok(ids
        .into_iter()
        .map(|id| Conflict {
            entity: info.name.clone(),
            assignation_id: latest
                .get(&id)
                .map(|row| row.assignation_id.clone())
                .unwrap_or_default(),
            object_id: id,
            reason,
        })
        .collect())
}

/// The assignation of the first record of each `(object, from..to)` range not made by `ours`: who
/// changed an object between the reverted changes.
async fn interleaved<C: ConnectionTrait>(
    db: &C,
    info: &EntityInfo,
    ranges: &[(String, i32, i32)],
    ours: &BTreeSet<String>,
) -> HistoryResult<HashMap<String, String>> {
    let mut found = HashMap::new();
    for chunk in ranges.chunks(rows::ID_CHUNK) {
        let any = chunk
            .iter()
            .fold(sea_orm::Condition::any(), |any, (id, from, to)| {
                any.add(
                    sea_orm::Condition::all()
                        .add(Expr::col(col("object_id")).eq(id.as_str()))
                        .add(Expr::col(col("version")).gt(*from))
                        .add(Expr::col(col("version")).lt(*to)),
                )
            });
        let select = Query::select()
            .columns(["object_id", "assignation_id"].map(col))
            .from(col(&info.history_table))
            .cond_where(any)
            .order_by(col("version"), Order::Asc)
            .to_owned();
        for row in db.query_all(&select).await? {
            let object: String = row.try_get("", "object_id")?;
            let by: String = row.try_get("", "assignation_id")?;
            if !ours.contains(&by) {
                found.entry(object).or_insert(by);
            }
        }
    }
    Ok(found)
}

/// Plans the revert of `reverted` (one assignation, or a tree of them) as one.
///
/// # Errors
/// [`HistoryError::NotFound`] when history the plan needs was pruned; database errors.
pub(crate) async fn plan_assignations<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    reverted: &[assignation::Model],
    force: bool,
) -> HistoryResult<RevertPlan> {
    let ours: BTreeSet<String> = reverted.iter().map(|a| a.id.clone()).collect();
    let mut plan = RevertPlan::default();
    let mut records = 0;
    for info in registry.entities() {
        let mut touched = BTreeMap::new();
        for a in reverted {
            records += touched_by(db, info, &a.id, &mut touched).await?;
        }
        if touched.is_empty() {
            continue;
        }
        let ids: Vec<String> = touched.keys().cloned().collect();
        // The live rows are locked before their history is read: a change committed in between
        // cannot slip past the check below.
        let live = rows::snapshots_of(db, info, &ids, true).await?;
        let latest = latest_rows(db, info, &ids).await?;
        let mut later = Vec::new();
        for (id, t) in &touched {
            if let Some(row) = latest.get(id)
                && row.version > t.last_version
            {
                later.push((id.clone(), row.assignation_id.clone()));
            }
        }
        let ranges: Vec<(String, i32, i32)> = touched
            .iter()
            .filter(|(_, t)| t.records < t.last_version - t.first_version + 1)
            .map(|(id, t)| (id.clone(), t.first_version, t.last_version))
            .collect();
        let between = interleaved(db, info, &ranges, &ours).await?;
        for (id, by) in later.into_iter().chain(between) {
            if !plan
                .conflicts
                .iter()
                .any(|c| c.entity == info.name && c.object_id == id)
            {
                plan.conflicts.push(Conflict {
                    entity: info.name.clone(),
                    object_id: id,
                    assignation_id: by,
                    reason: ConflictReason::ChangedSince,
                });
            }
        }
        // A DELETE's snapshot is the row to bring back; an UPDATE's target is the version before it.
        let wanted: Vec<(String, i32)> = touched
            .iter()
            .filter_map(|(id, t)| match t.first_kind {
                HistoryKind::Create => None,
                HistoryKind::Delete => Some((id.clone(), t.first_version)),
                HistoryKind::Update => Some((id.clone(), t.first_version - 1)),
            })
            .collect();
        let snapshots = snapshots_at(db, info, &wanted).await?;
        let mut targets = BTreeMap::new();
        for (id, t) in touched {
            let target = match t.first_kind {
                HistoryKind::Create => None,
                kind => {
                    let version = if kind == HistoryKind::Delete {
                        t.first_version
                    } else {
                        t.first_version - 1
                    };
                    Some(
                        snapshots
                            .get(&(id.clone(), version))
                            .map(|row| row.snapshot.clone())
                            .ok_or_else(|| {
                                HistoryError::NotFound(format!(
                                    "version {version} of {} {id}, which this revert would restore \
                                     (pruned, or the row existed before its history was kept),",
                                    info.name
                                ))
                            })?,
                    )
                }
            };
            targets.insert(id, target);
        }
        plan_objects(info, targets, &live, &mut plan)?;
    }
    let expected: u64 = reverted
        .iter()
        .map(|a| u64::try_from(a.change_count).unwrap_or(0))
        .sum();
    if records < expected {
        return Err(HistoryError::NotFound(format!(
            "{} of the {expected} history records of the reverted assignations (removed by \
             pruning), which a revert needs,",
            expected - records
        )));
    }
    super::references::check(db, registry, &mut plan, force).await?;
    Ok(plan)
}

/// Plans bringing one object to the state of `version` (absent if that record is a DELETE).
///
/// # Errors
/// [`HistoryError::NotFound`] when the object has no such version; database errors.
pub(crate) async fn plan_object<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    info: &EntityInfo,
    object_id: &str,
    version: i32,
) -> HistoryResult<RevertPlan> {
    let record = snapshots_at(db, info, &[(object_id.to_owned(), version)])
        .await?
        .remove(&(object_id.to_owned(), version))
        .ok_or_else(|| {
            HistoryError::NotFound(format!("version {version} of {} {object_id}", info.name))
        })?;
    let target = (record.kind != HistoryKind::Delete).then_some(record.snapshot);
    let mut plan = RevertPlan::default();
    let live = rows::snapshots_of(db, info, &[object_id.to_owned()], true).await?;
    plan_objects(
        info,
        BTreeMap::from([(object_id.to_owned(), target)]),
        &live,
        &mut plan,
    )?;
    super::references::check(db, registry, &mut plan, false).await?;
    Ok(plan)
}

/// Whether `a` and `b` hold the same values, the fields `touched` aside.
fn same_values(a: &Json, b: &Json, touched: &[&str]) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            let kept = |k: &String| !touched.contains(&k.as_str());
            a.iter()
                .filter(|(k, _)| kept(k))
                .all(|(k, v)| b.get(k) == Some(v))
                && b.keys().filter(|k| kept(k)).all(|k| a.contains_key(k))
        }
        _ => a == b,
    }
}

/// Adds the net change of each object of `targets` to `plan`, against `current`, its live rows (read
/// under lock). A target laid over a live row keeps the live values of fields it does not hold (a
/// column added since it was taken), and the entity's touch columns become the revert's own time.
fn plan_objects(
    info: &EntityInfo,
    targets: BTreeMap<String, Option<Json>>,
    current: &HashMap<String, Json>,
    plan: &mut RevertPlan,
) -> HistoryResult<()> {
    let touched: Vec<&str> = info
        .touch
        .iter()
        .map(|&i| info.columns[i].field.as_str())
        .collect();
    let at = now();
    let mut stamps = Vec::with_capacity(info.touch.len());
    for &i in &info.touch {
        let column = &info.columns[i];
        let value = match column.ty {
            ColumnType::DateTime | ColumnType::Timestamp => {
                sea_orm::Value::ChronoDateTime(Some(at.naive_utc()))
            }
            ColumnType::Date => sea_orm::Value::ChronoDate(Some(at.date_naive())),
            _ => sea_orm::Value::ChronoDateTimeUtc(Some(at)),
        };
        stamps.push((column.field.clone(), value_to_json(value)?));
    }
    for (object_id, mut target) in targets {
        if let (Some(Json::Object(live)), Some(Json::Object(fields))) =
            (current.get(&object_id), target.as_mut())
        {
            for (field, value) in live {
                fields.entry(field.clone()).or_insert_with(|| value.clone());
            }
        }
        if let Some(Json::Object(fields)) = target.as_mut() {
            for (field, stamp) in &stamps {
                fields.insert(field.clone(), stamp.clone());
            }
        }
        let live = current.get(&object_id);
        let (kind, changes) = match (live, &target) {
            (Some(live), None) => (HistoryKind::Delete, diff(HistoryKind::Delete, None, live)),
            (None, Some(target)) => (HistoryKind::Create, diff(HistoryKind::Create, None, target)),
            (Some(live), Some(target)) if !same_values(live, target, &touched) => (
                HistoryKind::Update,
                diff(HistoryKind::Update, Some(live), target),
            ),
            _ => continue,
        };
        plan.changes.push(PlannedChange {
            entity: info.name.clone(),
            object_id,
            kind,
            changes,
            current: live.cloned(),
            target,
        });
    }
    Ok(())
}
