//! Snapshots and object ids. A snapshot is a row as a JSON object, one field per column (the column's
//! name in camelCase), built from sea-orm's own values so that the same row gives the same snapshot
//! whether it comes from a model in a hook or from a row read by the engine. The encoding per type:
//!
//! | column | JSON |
//! | --- | --- |
//! | integers, floats, booleans | numbers, booleans |
//! | text, enums, chars | strings |
//! | decimals | strings (exact: `"12.50"`) |
//! | UUIDs | strings (`"0192…"`, hyphenated) |
//! | dates, times, naive date-times | `"2026-11-23"`, `"09:00:00"`, `"2026-11-23T09:00:00"` |
//! | instants (with a time zone) | RFC 3339 in UTC with `Z` (`"2026-11-23T09:00:00.123456Z"`) |
//! | JSON | the value itself |
//! | bytes | base64 strings |
//!
//! An object id is the primary key as text: its value for a one-column key, the values joined by `:`
//! for a composite key (a `:` or `%` inside a part is escaped as `%3A` or `%25`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use sea_orm::sea_query::ColumnType;
use sea_orm::{DbErr, QueryResult, Value};
use serde_json::Value as Json;

use crate::error::HistoryError;

/// Whether the library can keep a column of type `ty` in snapshots.
pub(crate) fn supported(ty: &ColumnType) -> bool {
    !matches!(
        ty,
        ColumnType::Array(_) | ColumnType::Vector(_) | ColumnType::Interval(..)
    )
}

/// An instant in snapshots and answers: RFC 3339 in UTC with `Z`, as many sub-second digits as it has.
pub fn format_instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A sea-orm value as JSON (see the module's table).
///
/// # Errors
/// [`HistoryError::Malformed`] for a type snapshots cannot hold (arrays, vectors, …).
pub fn value_to_json(value: Value) -> Result<Json, HistoryError> {
    Ok(match value {
        Value::Bool(v) => v.map(Json::from).unwrap_or_default(),
        Value::TinyInt(v) => v.map(Json::from).unwrap_or_default(),
        Value::SmallInt(v) => v.map(Json::from).unwrap_or_default(),
        Value::Int(v) => v.map(Json::from).unwrap_or_default(),
        Value::BigInt(v) => v.map(Json::from).unwrap_or_default(),
        Value::TinyUnsigned(v) => v.map(Json::from).unwrap_or_default(),
        Value::SmallUnsigned(v) => v.map(Json::from).unwrap_or_default(),
        Value::Unsigned(v) => v.map(Json::from).unwrap_or_default(),
        Value::BigUnsigned(v) => v.map(Json::from).unwrap_or_default(),
        Value::Float(v) => v.map(Json::from).unwrap_or_default(),
        Value::Double(v) => v.map(Json::from).unwrap_or_default(),
        Value::String(v) => v.map(Json::from).unwrap_or_default(),
        Value::Char(v) => v.map(|c| Json::from(c.to_string())).unwrap_or_default(),
        Value::Enum(v) => match v {
            sea_orm::sea_query::OptionEnum::Some(e) => Json::from(e.value.to_string()),
            sea_orm::sea_query::OptionEnum::None(_) => Json::Null,
        },
        Value::Bytes(v) => v
            .map(|b| Json::from(STANDARD.encode(b)))
            .unwrap_or_default(),
        Value::Json(v) => v.map(|j| *j).unwrap_or_default(),
        Value::ChronoDate(v) => v.map(|d| Json::from(d.to_string())).unwrap_or_default(),
        Value::ChronoTime(v) => v
            .map(|t| Json::from(t.format("%H:%M:%S%.f").to_string()))
            .unwrap_or_default(),
        Value::ChronoDateTime(v) => v
            .map(|t| Json::from(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()))
            .unwrap_or_default(),
        Value::ChronoDateTimeUtc(v) => v.map(|t| format_instant(t).into()).unwrap_or_default(),
        Value::ChronoDateTimeLocal(v) => v
            .map(|t| format_instant(t.with_timezone(&Utc)).into())
            .unwrap_or_default(),
        Value::ChronoDateTimeWithTimeZone(v) => v
            .map(|t| format_instant(t.with_timezone(&Utc)).into())
            .unwrap_or_default(),
        Value::Uuid(v) => v.map(|u| Json::from(u.to_string())).unwrap_or_default(),
        Value::Decimal(v) => v.map(|d| Json::from(d.to_string())).unwrap_or_default(),
        #[allow(unreachable_patterns)]
        other => {
            return Err(HistoryError::Malformed(format!(
                "a value of an unsupported type in a snapshot: {other:?}"
            )));
        }
    })
}

fn bad(ty: &ColumnType, value: &Json) -> HistoryError {
    HistoryError::Malformed(format!("{value} is not a value of a {ty:?} column"))
}

fn integer<T: TryFrom<i64>>(ty: &ColumnType, value: &Json) -> Result<Option<T>, HistoryError> {
    if value.is_null() {
        return Ok(None);
    }
    value
        .as_i64()
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| bad(ty, value))
}

fn text<'a>(ty: &ColumnType, value: &'a Json) -> Result<Option<&'a str>, HistoryError> {
    match value {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s)),
        _ => Err(bad(ty, value)),
    }
}

fn parsed<T>(
    ty: &ColumnType,
    value: &Json,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, HistoryError> {
    text(ty, value)?
        .map(|s| parse(s).ok_or_else(|| bad(ty, value)))
        .transpose()
}

/// The sea-orm value of a column of type `ty` that a snapshot field holds.
///
/// # Errors
/// [`HistoryError::Malformed`] when `value` is not of that type.
pub fn json_to_value(ty: &ColumnType, value: &Json) -> Result<Value, HistoryError> {
    Ok(match ty {
        ColumnType::TinyInteger => Value::TinyInt(integer(ty, value)?),
        ColumnType::SmallInteger => Value::SmallInt(integer(ty, value)?),
        ColumnType::Integer | ColumnType::Year => Value::Int(integer(ty, value)?),
        ColumnType::BigInteger => Value::BigInt(integer(ty, value)?),
        ColumnType::TinyUnsigned => Value::TinyUnsigned(integer(ty, value)?),
        ColumnType::SmallUnsigned => Value::SmallUnsigned(integer(ty, value)?),
        ColumnType::Unsigned => Value::Unsigned(integer(ty, value)?),
        ColumnType::BigUnsigned => Value::BigUnsigned(match value {
            Json::Null => None,
            v => Some(v.as_u64().ok_or_else(|| bad(ty, v))?),
        }),
        ColumnType::Float => Value::Float(match value {
            Json::Null => None,
            #[allow(clippy::cast_possible_truncation)]
            v => Some(v.as_f64().ok_or_else(|| bad(ty, v))? as f32),
        }),
        ColumnType::Double => Value::Double(match value {
            Json::Null => None,
            v => Some(v.as_f64().ok_or_else(|| bad(ty, v))?),
        }),
        ColumnType::Decimal(_) | ColumnType::Money(_) => Value::Decimal(match value {
            Json::Null => None,
            Json::String(s) => Some(s.parse::<Decimal>().map_err(|_| bad(ty, value))?),
            Json::Number(n) => Some(
                n.to_string()
                    .parse::<Decimal>()
                    .map_err(|_| bad(ty, value))?,
            ),
            _ => return Err(bad(ty, value)),
        }),
        ColumnType::Boolean => Value::Bool(match value {
            Json::Null => None,
            Json::Bool(b) => Some(*b),
            _ => return Err(bad(ty, value)),
        }),
        ColumnType::Uuid => Value::Uuid(parsed(ty, value, |s| uuid::Uuid::parse_str(s).ok())?),
        ColumnType::Date => Value::ChronoDate(parsed(ty, value, |s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
        })?),
        ColumnType::Time => Value::ChronoTime(parsed(ty, value, |s| {
            NaiveTime::parse_from_str(s, "%H:%M:%S%.f").ok()
        })?),
        ColumnType::DateTime | ColumnType::Timestamp => {
            Value::ChronoDateTime(parsed(ty, value, |s| {
                NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()
            })?)
        }
        ColumnType::TimestampWithTimeZone => Value::ChronoDateTimeUtc(parsed(ty, value, |s| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })?),
        ColumnType::Json | ColumnType::JsonBinary => {
            Value::Json((!value.is_null()).then(|| Box::new(value.clone())))
        }
        ColumnType::Binary(_)
        | ColumnType::VarBinary(_)
        | ColumnType::Blob
        | ColumnType::Bit(_)
        | ColumnType::VarBit(_) => Value::Bytes(parsed(ty, value, |s| STANDARD.decode(s).ok())?),
        ColumnType::Char(_)
        | ColumnType::String(_)
        | ColumnType::Text
        | ColumnType::Enum { .. }
        | ColumnType::Custom(_)
        | ColumnType::Cidr
        | ColumnType::Inet
        | ColumnType::MacAddr
        | ColumnType::LTree => Value::String(text(ty, value)?.map(str::to_owned)),
        #[allow(unreachable_patterns)]
        other => {
            return Err(HistoryError::Malformed(format!(
                "columns of type {other:?} cannot be historized"
            )));
        }
    })
}

/// The value of column `name` (of type `ty`) of a row read by the engine, as JSON.
///
/// # Errors
/// Database errors (a value that does not decode as `ty`).
pub(crate) fn read_column(
    row: &QueryResult,
    name: &str,
    ty: &ColumnType,
) -> Result<Json, HistoryError> {
    fn get<T: sea_orm::TryGetable>(row: &QueryResult, name: &str) -> Result<Option<T>, DbErr> {
        row.try_get::<Option<T>>("", name)
    }
    let value = match ty {
        ColumnType::TinyInteger => Value::TinyInt(get(row, name)?),
        ColumnType::SmallInteger => Value::SmallInt(get(row, name)?),
        ColumnType::Integer | ColumnType::Year => Value::Int(get(row, name)?),
        ColumnType::BigInteger => Value::BigInt(get(row, name)?),
        ColumnType::TinyUnsigned => Value::TinyUnsigned(get(row, name)?),
        ColumnType::SmallUnsigned => Value::SmallUnsigned(get(row, name)?),
        ColumnType::Unsigned => Value::Unsigned(get(row, name)?),
        ColumnType::BigUnsigned => Value::BigUnsigned(get(row, name)?),
        ColumnType::Float => Value::Float(get(row, name)?),
        ColumnType::Double => Value::Double(get(row, name)?),
        ColumnType::Decimal(_) | ColumnType::Money(_) => Value::Decimal(get(row, name)?),
        ColumnType::Boolean => Value::Bool(get(row, name)?),
        ColumnType::Uuid => Value::Uuid(get(row, name)?),
        ColumnType::Date => Value::ChronoDate(get(row, name)?),
        ColumnType::Time => Value::ChronoTime(get(row, name)?),
        ColumnType::DateTime | ColumnType::Timestamp => Value::ChronoDateTime(get(row, name)?),
        ColumnType::TimestampWithTimeZone => Value::ChronoDateTimeUtc(get(row, name)?),
        ColumnType::Json | ColumnType::JsonBinary => {
            Value::Json(get::<Json>(row, name)?.map(Box::new))
        }
        ColumnType::Binary(_)
        | ColumnType::VarBinary(_)
        | ColumnType::Blob
        | ColumnType::Bit(_)
        | ColumnType::VarBit(_) => Value::Bytes(get(row, name)?),
        _ => Value::String(get(row, name)?),
    };
    value_to_json(value)
}

/// The text of one key part.
pub(crate) fn key_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The object id of a key made of `parts` (see the module docs).
pub fn object_id(parts: &[Json]) -> String {
    match parts {
        [one] => key_text(one),
        many => many
            .iter()
            .map(|p| key_text(p).replace('%', "%25").replace(':', "%3A"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// The key parts of `object_id` for a key of `arity` columns, or `None` when it has another shape.
pub fn key_parts(object_id: &str, arity: usize) -> Option<Vec<String>> {
    if arity == 1 {
        return Some(vec![object_id.to_owned()]);
    }
    let parts: Vec<String> = object_id
        .split(':')
        .map(|p| p.replace("%3A", ":").replace("%25", "%"))
        .collect();
    (parts.len() == arity).then_some(parts)
}

/// The JSON a key part of type `ty` holds when written as `text` in an object id.
pub(crate) fn key_json(ty: &ColumnType, text: &str) -> Option<Json> {
    match ty {
        ColumnType::TinyInteger
        | ColumnType::SmallInteger
        | ColumnType::Integer
        | ColumnType::BigInteger
        | ColumnType::Year => text.parse::<i64>().ok().map(Json::from),
        ColumnType::TinyUnsigned
        | ColumnType::SmallUnsigned
        | ColumnType::Unsigned
        | ColumnType::BigUnsigned => text.parse::<u64>().ok().map(Json::from),
        ColumnType::Boolean => text.parse::<bool>().ok().map(Json::from),
        ColumnType::Float | ColumnType::Double => text.parse::<f64>().ok().map(Json::from),
        _ => Some(Json::from(text)),
    }
}

/// `snake_case` as `camelCase`: how a column's name becomes a snapshot's field.
pub(crate) fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_supported_value_comes_back_from_its_json() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_700_000_000_120_000).unwrap_or_default();
        let cases = [
            (ColumnType::Integer, Value::Int(Some(7))),
            (ColumnType::BigInteger, Value::BigInt(None)),
            (ColumnType::Boolean, Value::Bool(Some(true))),
            (
                ColumnType::Decimal(None),
                Value::Decimal(Some(Decimal::new(1250, 2))),
            ),
            (ColumnType::Uuid, Value::Uuid(Some(uuid::Uuid::now_v7()))),
            (
                ColumnType::TimestampWithTimeZone,
                Value::ChronoDateTimeUtc(Some(at)),
            ),
            (
                ColumnType::Date,
                Value::ChronoDate(NaiveDate::from_ymd_opt(2026, 11, 23)),
            ),
            (ColumnType::Text, Value::String(Some("x:y".into()))),
            (
                ColumnType::Json,
                Value::Json(Some(Box::new(json!({"a": [1]})))),
            ),
            (ColumnType::Blob, Value::Bytes(Some(vec![0, 1, 255]))),
        ];
        for (ty, value) in cases {
            let encoded = value_to_json(value.clone()).unwrap_or_else(|e| panic!("{e}"));
            let decoded = json_to_value(&ty, &encoded).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(decoded, value, "{ty:?} via {encoded}");
        }
        assert_eq!(
            value_to_json(Value::ChronoDateTimeUtc(Some(at))).ok(),
            Some(json!("2023-11-14T22:13:20.120Z"))
        );
        assert_eq!(
            value_to_json(Value::Decimal(Some(Decimal::new(1250, 2)))).ok(),
            Some(json!("12.50"))
        );
    }

    #[test]
    fn composite_object_ids_escape_their_separator() {
        let id = object_id(&[json!(4), json!("a:b%")]);
        assert_eq!(id, "4:a%3Ab%25");
        assert_eq!(key_parts(&id, 2), Some(vec!["4".into(), "a:b%".into()]));
        assert_eq!(key_parts("x", 2), None);
        assert_eq!(object_id(&[json!("x:y")]), "x:y");
        assert_eq!(key_parts("x:y", 1), Some(vec!["x:y".into()]));
    }

    #[test]
    fn column_names_become_camel_case_fields() {
        assert_eq!(camel_case("updated_at"), "updatedAt");
        assert_eq!(camel_case("id"), "id");
        assert_eq!(camel_case("a_b_c"), "aBC");
    }
}
