//! The input rules of the API: lengths in characters, ranges, formats. Each returns `BAD_INPUT` with a
//! message naming the field.

use crate::error::{AppError, AppResult};

/// A required text of `min..=max` characters that is not blank.
///
/// # Errors
/// `BAD_INPUT` naming `field`.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> AppResult<()> {
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
