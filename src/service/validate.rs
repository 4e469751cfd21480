//! The input rules of the API: lengths in characters, ranges, formats. Each returns `BAD_INPUT` with a
//! message naming the field.

use crate::error::{AppError, AppResult};

/// A required text of `min..=max` characters that is not blank.
///
/// # Errors
/// `BAD_INPUT` naming `field`.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> AppResult<()> {
    no_nul(field, value)?;
    let len = value.chars().count();
    if value.trim().is_empty() && min > 0 {
        return Err(AppError::BadInput(format!("{field} may not be empty")));
    }
    if len < min || len > max {
        return Err(AppError::BadInput(format!(
            "{field} must be {min} to {max} characters (got {len})"
        )));
    }
    Ok(())
}

/// An optional text of at most `max` characters.
///
/// # Errors
/// `BAD_INPUT` naming `field`.
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> AppResult<()> {
    if let Some(value) = value {
        no_nul(field, value)?;
    }
    match value {
        Some(v) if v.chars().count() > max => Err(AppError::BadInput(format!(
            "{field} may not exceed {max} characters"
        ))),
        _ => Ok(()),
    }
}

/// A task priority, 0 to 5.
///
/// # Errors
/// `BAD_INPUT`.
pub fn priority(value: i32) -> AppResult<()> {
    if (0..=5).contains(&value) {
        Ok(())
    } else {
        Err(AppError::BadInput(format!(
            "priority must be 0 to 5 (got {value})"
        )))
    }
}

/// A colour `#rrggbb`.
///
/// # Errors
/// `BAD_INPUT`.
pub fn color(value: &str) -> AppResult<()> {
    let ok = value.len() == 7
        && value.starts_with('#')
        && value[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(AppError::BadInput(format!(
            "color must be #rrggbb (got {value:?})"
        )))
    }
}

/// A UUID given as an `ID`.
///
/// # Errors
/// `BAD_INPUT` naming `field`.
pub fn uuid(field: &str, value: &str) -> AppResult<uuid::Uuid> {
    uuid::Uuid::parse_str(value)
        .map_err(|_| AppError::BadInput(format!("{field} is not a valid id")))
}

/// NUL is never part of real text, and PostgreSQL cannot store it: refused everywhere, so that every
/// backend answers the same.
fn no_nul(field: &str, value: &str) -> AppResult<()> {
    if value.contains('\0') {
        return Err(AppError::BadInput(format!(
            "{field} may not contain NUL characters"
        )));
    }
    Ok(())
}

/// JSON (a custom event's details) whose keys and strings hold no NUL (see [`no_nul`]).
///
/// # Errors
/// `BAD_INPUT` naming `field`.
pub fn json_without_nul(field: &str, value: &serde_json::Value) -> AppResult<()> {
    use serde_json::Value;
    match value {
        Value::String(text) => no_nul(field, text),
        Value::Array(items) => items.iter().try_for_each(|v| json_without_nul(field, v)),
        Value::Object(map) => map.iter().try_for_each(|(key, v)| {
            no_nul(field, key)?;
            json_without_nul(field, v)
        }),
        _ => Ok(()),
    }
}

/// A lookup key (an object id, a user name to filter by): at most `max` characters, no control
/// characters.
///
/// # Errors
/// `BAD_INPUT` naming `field`.
pub fn key(field: &str, value: &str, max: usize) -> AppResult<()> {
    if value.chars().count() > max {
        return Err(AppError::BadInput(format!(
            "{field} may not exceed {max} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(AppError::BadInput(format!(
            "{field} may not contain control characters"
        )));
    }
    Ok(())
}
