//! The `DateTime` scalar: an instant as RFC 3339 in UTC with `Z` (`2026-11-23T09:00:00.123456Z`), the
//! text snapshots hold, so that a live field and the same field in history read alike. Input may carry
//! any offset; it is read as the same instant.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, Utc};

use crate::snapshot::format_instant;

/// An instant (the GraphQL `DateTime`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// The instant in UTC.
    pub fn utc(self) -> DateTime<Utc> {
        self.0
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Self {
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
            Value::String(s) => DateTime::parse_from_rfc3339(s)
                .map(|at| Timestamp(at.with_timezone(&Utc)))
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
