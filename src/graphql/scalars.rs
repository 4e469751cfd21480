//! Scalars the API names that async-graphql does not: `Date` (`YYYY-MM-DD`).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::NaiveDate;

/// A calendar date, `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

/// A calendar date, `YYYY-MM-DD`.
#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom("a Date is YYYY-MM-DD")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// An instant: RFC 3339 in UTC with `Z`, to the microsecond (`2026-11-23T09:00:00.123456Z`), the
/// format history snapshots use too. Input may carry any offset; it is read as the same instant in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub chrono::DateTime<chrono::Utc>);

impl Timestamp {
    /// The instant in UTC.
    pub fn utc(self) -> chrono::DateTime<chrono::Utc> {
        self.0
    }
}

impl From<chrono::DateTime<chrono::Utc>> for Timestamp {
    fn from(at: chrono::DateTime<chrono::Utc>) -> Self {
        Self(at)
    }
}

/// An instant, RFC 3339 (`2026-11-23T09:00:00.123456Z`); answers are always in UTC with `Z`.
#[Scalar(
    name = "DateTime",
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339"
)]
impl ScalarType for Timestamp {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|at| Timestamp(at.with_timezone(&chrono::Utc)))
                .map_err(|_| {
                    InputValueError::custom(
                        "a DateTime is RFC 3339, like 2026-11-23T09:00:00Z or 2026-11-23T10:00:00+01:00",
                    )
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(format_instant(self.0))
    }
}

/// The one text form of an instant in answers: RFC 3339, UTC, `Z`, as many sub-second digits as it
/// has (what `chrono`'s serde writes into snapshots).
pub fn format_instant(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_reads_any_offset_and_answers_in_utc_with_z() {
        let Ok(at) =
            <Timestamp as ScalarType>::parse(Value::String("2026-11-23T10:00:00.5+01:00".into()))
        else {
            panic!("refused");
        };
        assert_eq!(
            at.to_value(),
            Value::String("2026-11-23T09:00:00.500Z".into())
        );
    }
}
