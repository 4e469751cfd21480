//! What a history record is: its kind, its row in a history table ([`HistoryRow`]), the field diff
//! between two snapshots, and the hash that chains each record to the previous record of the same
//! object.
//!
//! The hash is two-level so that a database can chain a record in the statement that writes it:
//! `content` is SHA-256 over a canonical JSON encoding (sorted keys) of the record's entity, id, object,
//! kind, time, user, app, assignation, reason and snapshot; the record's `hash` is SHA-256 over
//! `"<previous hash>|<version>|<step>|<content>"` (an empty previous hash for version 1). Verification
//! recomputes both from the stored row.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{DbErr, FromQueryResult, QueryResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What a history record says happened to its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HistoryKind {
    /// The object was inserted.
    Create,
    /// The object's values changed.
    Update,
    /// The object was deleted; the snapshot is the row as it was before.
    Delete,
}

impl HistoryKind {
    /// The value stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }

    /// Parses the value stored in the `kind` column.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CREATE" => Some(Self::Create),
            "UPDATE" => Some(Self::Update),
            "DELETE" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// One row of any history table (serialized with the table's column names, as prune archives hold
/// it, and read back the same way).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// Unique across all history (UUIDv7).
    pub id: Uuid,
    /// The object's id: its primary key (`"<a>:<b>"` for a composite key).
    pub object_id: String,
    /// 1, 2, 3 … per object.
    pub version: i32,
    /// What happened.
    pub kind: HistoryKind,
    /// When the change was made.
    pub at: DateTime<Utc>,
    /// The acting user.
    pub actor: Option<String>,
    /// The app the user acted through.
    pub app: Option<String>,
    /// The assignation the change belongs to.
    pub assignation_id: String,
    /// Order of this change inside its assignation, from 0.
    pub step: i32,
    /// Why the change was made.
    pub reason: Option<String>,
    /// The whole row after the change (before it, for a DELETE).
    pub snapshot: Json,
    /// Hex SHA-256 chaining this record to the previous record of the same object.
    pub hash: String,
    /// The scope the object belongs to (see [`crate::Declaration::scope`]); derived, not hashed.
    pub scope_id: Option<String>,
    /// The W3C trace the change was made in (32 lowercase hex digits; see [`crate::Trace`]); not
    /// hashed.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// The span of that trace that made the change (16 lowercase hex digits); not hashed.
    #[serde(default)]
    pub span_id: Option<String>,
}

/// The columns of every history table, in the order [`HistoryRow`] lists them.
pub const HISTORY_COLUMNS: [&str; 15] = [
    "id",
    "object_id",
    "version",
    "kind",
    "at",
    "actor",
    "app",
    "assignation_id",
    "step",
    "reason",
    "snapshot",
    "hash",
    "scope_id",
    "trace_id",
    "span_id",
];

impl FromQueryResult for HistoryRow {
    fn from_query_result(row: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        let kind: String = row.try_get(pre, "kind")?;
        Ok(Self {
            id: row.try_get(pre, "id")?,
            object_id: row.try_get(pre, "object_id")?,
            version: row.try_get(pre, "version")?,
            kind: HistoryKind::parse(&kind)
                .ok_or_else(|| DbErr::Type(format!("unknown history kind {kind:?}")))?,
            at: row.try_get(pre, "at")?,
            actor: row.try_get(pre, "actor")?,
            app: row.try_get(pre, "app")?,
            assignation_id: row.try_get(pre, "assignation_id")?,
            step: row.try_get(pre, "step")?,
            reason: row.try_get(pre, "reason")?,
            snapshot: row.try_get(pre, "snapshot")?,
            hash: row.try_get(pre, "hash")?,
            scope_id: row.try_get(pre, "scope_id")?,
            trace_id: row.try_get(pre, "trace_id")?,
            span_id: row.try_get(pre, "span_id")?,
        })
    }
}

/// One field's change between two snapshots.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    /// The field, as the snapshot names it.
    pub field: String,
    /// The value before (null for a created object).
    pub old: Json,
    /// The value after (null for a deleted object).
    pub new: Json,
}

/// The current time at the precision every backend stores (microseconds), so that a value read back
/// equals the value written and snapshots equal live rows.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The field diff of a change: every field for a CREATE (from null) and a DELETE (to null), the fields
/// whose value differs for an UPDATE (against `previous`).
pub fn diff(kind: HistoryKind, previous: Option<&Json>, snapshot: &Json) -> Vec<FieldChange> {
    let empty = Map::new();
    let new = snapshot.as_object().unwrap_or(&empty);
    let change = |field: &str, old: &Json, new: &Json| FieldChange {
        field: field.to_owned(),
        old: old.clone(),
        new: new.clone(),
    };
    match kind {
        HistoryKind::Create => new.iter().map(|(f, v)| change(f, &Json::Null, v)).collect(),
        HistoryKind::Delete => new.iter().map(|(f, v)| change(f, v, &Json::Null)).collect(),
        HistoryKind::Update => {
            let old = previous.and_then(Json::as_object).unwrap_or(&empty);
            let mut out: Vec<FieldChange> = new
                .iter()
                .filter(|(f, v)| old.get(*f).unwrap_or(&Json::Null) != *v)
                .map(|(f, v)| change(f, old.get(f).unwrap_or(&Json::Null), v))
                .collect();
            out.extend(
                old.iter()
                    .filter(|(f, _)| !new.contains_key(*f))
                    .map(|(f, v)| change(f, v, &Json::Null)),
            );
            out
        }
    }
}

/// Formats a timestamp the way hashes see it.
fn canonical_time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The content hash of `row` of `entity`: hex SHA-256 over a canonical JSON encoding of everything
/// but its version, step and chain.
pub fn content_hash(entity: &str, row: &HistoryRow) -> String {
    // The object `{"app", "assignationId", "at", "entity", "id", "kind", "objectId", "reason",
    // "snapshot", "user"}`, written out in its keys' byte order: what `write_canonical` makes of it,
    // without building it (every change is hashed on the write path).
    let (at, id) = (canonical_time(&row.at), row.id.to_string());
    let mut text = Vec::with_capacity(512);
    let fields: [(&str, Leaf<'_>); 10] = [
        ("app", Leaf::Text(row.app.as_deref())),
        ("assignationId", Leaf::Text(Some(&row.assignation_id))),
        ("at", Leaf::Text(Some(&at))),
        ("entity", Leaf::Text(Some(entity))),
        ("id", Leaf::Text(Some(&id))),
        ("kind", Leaf::Text(Some(row.kind.as_str()))),
        ("objectId", Leaf::Text(Some(&row.object_id))),
        ("reason", Leaf::Text(row.reason.as_deref())),
        ("snapshot", Leaf::Json(&row.snapshot)),
        ("user", Leaf::Text(row.actor.as_deref())),
    ];
    text.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            text.push(b',');
        }
        write_json(key, &mut text);
        text.push(b':');
        match value {
            Leaf::Text(Some(s)) => write_json(s, &mut text),
            Leaf::Text(None) => text.extend_from_slice(b"null"),
            Leaf::Json(v) => write_canonical(v, &mut text),
        }
    }
    text.push(b'}');
    hex::encode(Sha256::digest(&text))
}

/// A value of the object [`content_hash`] encodes.
enum Leaf<'a> {
    /// A string, or `null`.
    Text(Option<&'a str>),
    /// JSON, encoded canonically.
    Json(&'a serde_json::Value),
}

/// Appends `value` as compact JSON (serde_json's encoding, whose escapes the hashes depend on).
fn write_json<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Writing into a Vec fails only for a value JSON cannot hold, which strings and the leaves of
    // a `serde_json::Value` are not.
    if let Err(e) = serde_json::to_writer(out, value) {
        debug_assert!(false, "a JSON value failed to encode: {e}");
    }
}

/// Writes `value` as compact JSON with every object's keys in byte order, whatever order the map
/// keeps them in (an application that turns on `serde_json/preserve_order` must hash the same).
fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(key.as_str(), out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        leaf => write_json(leaf, out),
    }
}

/// The chain hash of a record: hex SHA-256 over `"<previous>|<version>|<step>|<content>"`.
pub fn chain_hash(previous: Option<&str>, version: i32, step: i32, content: &str) -> String {
    let text = format!("{}|{version}|{step}|{content}", previous.unwrap_or(""));
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The hash `row` of `entity` must carry, given the previous record's hash of the same object.
pub fn record_hash(entity: &str, row: &HistoryRow, previous_hash: Option<&str>) -> String {
    chain_hash(
        previous_hash,
        row.version,
        row.step,
        &content_hash(entity, row),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(snapshot: Json) -> HistoryRow {
        HistoryRow {
            id: Uuid::nil(),
            object_id: "1".into(),
            version: 1,
            kind: HistoryKind::Create,
            at: DateTime::<Utc>::from_timestamp_micros(1_700_000_000_123_456).unwrap_or_default(),
            actor: Some("alice".into()),
            app: None,
            assignation_id: "a".into(),
            step: 0,
            reason: None,
            snapshot,
            hash: String::new(),
            scope_id: None,
            trace_id: None,
            span_id: None,
        }
    }

    #[test]
    fn an_update_diff_names_changed_added_and_removed_fields() {
        let before = json!({"a": 1, "b": 2, "gone": true});
        let after = json!({"a": 1, "b": 3, "new": "x"});
        let changes = diff(HistoryKind::Update, Some(&before), &after);
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["b", "new", "gone"]);
        assert_eq!(changes[0].old, json!(2));
        assert_eq!(changes[2].new, Json::Null);
        assert_eq!(diff(HistoryKind::Create, None, &after).len(), 3);
    }

    #[test]
    fn the_hash_covers_content_version_step_and_the_previous_hash() {
        let first = row(json!({"name": "a"}));
        let h1 = record_hash("THING", &first, None);
        assert_eq!(h1.len(), 64);
        let mut edited = first.clone();
        edited.snapshot = json!({"name": "b"});
        assert_ne!(record_hash("THING", &edited, None), h1);
        let mut moved = first.clone();
        moved.step = 1;
        assert_ne!(record_hash("THING", &moved, None), h1);
        assert_ne!(record_hash("THING", &first, Some("00")), h1);
        assert_ne!(record_hash("OTHER", &first, None), h1);
        // The formula a database can evaluate: sha256 of "prev|version|step|content".
        let content = content_hash("THING", &first);
        let expected = hex::encode(Sha256::digest(format!("|1|0|{content}").as_bytes()));
        assert_eq!(h1, expected);
    }

    #[test]
    fn the_content_hash_is_over_compact_json_with_sorted_keys_at_every_depth() {
        let mut text = Vec::new();
        write_canonical(
            &json!({"z": [{"b": 1, "a": "x\"y"}], "a": null, "m": {"d": 2.5, "c": true}}),
            &mut text,
        );
        assert_eq!(
            String::from_utf8_lossy(&text),
            r#"{"a":null,"m":{"c":true,"d":2.5},"z":[{"a":"x\"y","b":1}]}"#
        );
    }

    /// The content hash as it was first written (a JSON object built, then encoded through
    /// strings): the hashes stored by every earlier version must still verify.
    fn content_hash_as_first_written(entity: &str, row: &HistoryRow) -> String {
        fn canonical(value: &Json, out: &mut String) {
            match value {
                Json::Object(map) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    out.push('{');
                    for (i, key) in keys.into_iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&Json::String(key.clone()).to_string());
                        out.push(':');
                        canonical(&map[key], out);
                    }
                    out.push('}');
                }
                Json::Array(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        canonical(item, out);
                    }
                    out.push(']');
                }
                leaf => out.push_str(&leaf.to_string()),
            }
        }
        let object = json!({
            "entity": entity,
            "id": row.id.to_string(),
            "objectId": row.object_id,
            "kind": row.kind.as_str(),
            "at": canonical_time(&row.at),
            "user": row.actor,
            "app": row.app,
            "assignationId": row.assignation_id,
            "reason": row.reason,
            "snapshot": row.snapshot,
        });
        let mut text = String::new();
        canonical(&object, &mut text);
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    #[test]
    fn the_content_hash_is_the_one_earlier_versions_stored() {
        let mut tricky = row(json!({
            "title": "quote \" backslash \\ tab \t nul \u{0} \u{1f} é ✓ 😀 </script>",
            "nested": {"Zed": [1, -2.5, 1e300, 18446744073709551615u64, null, true], "alpha": {}},
            "empty": [],
            "Upper": "sorts before lower",
        }));
        tricky.app = Some("app \"x\"".into());
        tricky.reason = Some("line\nbreak".into());
        tricky.kind = HistoryKind::Update;
        tricky.id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let mut bare = row(json!(null));
        bare.actor = None;
        for (entity, r) in [
            ("TASK", &tricky),
            ("Ünïcode", &bare),
            ("THING", &row(json!({"name": "a"}))),
        ] {
            assert_eq!(
                content_hash(entity, r),
                content_hash_as_first_written(entity, r)
            );
        }
    }
}
