//! SQLite connections made ready for the one-hop writer (feature `sqlite`): SQLite has no `sha256`,
//! so the hash chain of a record could only be computed here, after a round trip that reads the
//! previous record. With `sea_orm_history_sha256(text)` registered on the connection, the writer
//! sends the row's statement, the step's reservation and the record as one batch, the record
//! chained in the database as PostgreSQL (`sha256`) and MySQL (`SHA2`) chain it: one hop to
//! sqlx's worker thread per change instead of two.
//!
//! Register it on every connection of a pool with [`install`] (or [`register`] from an
//! `after_connect` of your own). A connection without it is detected before anything is written
//! (the batch's first statement names the function, and SQLite refuses it when preparing it), and
//! the writer then takes the two-hop path for the rest of the process: nothing is ever wrong,
//! only slower.
//!
//! This is the library's only `unsafe` code: the C callback SQLite calls, and its registration
//! through the raw handle sqlx lends out (`LockedSqliteHandle`), as sqlx registers its own `REGEXP`.

#![allow(unsafe_code)]

use std::ffi::c_int;

use libsqlite3_sys as ffi;
use sea_orm::ConnectOptions;
use sea_orm::sqlx::sqlite::SqliteConnection;
use sha2::{Digest, Sha256};

/// The function's name, NUL-terminated for SQLite.
const NAME: &[u8] = b"sea_orm_history_sha256\0";

/// Registers `sea_orm_history_sha256` on every connection `options` opens (SQLite only; other
/// backends ignore it). It takes sea-orm's SQLite pool-options hook
/// ([`ConnectOptions::map_sqlx_sqlite_pool_opts`]): when you need that hook yourself, call
/// [`register`] from your pool's `after_connect` instead.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm::DbErr> {
/// let mut options = sea_orm::ConnectOptions::new("sqlite::memory:");
/// sea_orm_history::sqlite::install(&mut options);
/// let db = sea_orm::Database::connect(options).await?;
/// # Ok(()) }
/// ```
pub fn install(options: &mut ConnectOptions) -> &mut ConnectOptions {
    options.map_sqlx_sqlite_pool_opts(|pool| {
        pool.after_connect(|connection, _| Box::pin(register(connection)))
    })
}

/// Whether SQLite changes are written in one hop: true until a connection without
/// `sea_orm_history_sha256` is met, after which the process writes them in two.
pub fn one_hop_writes() -> bool {
    !crate::writer::sqlite_sha256_missing()
}

/// Registers `sea_orm_history_sha256(text)` (the SHA-256 of its UTF-8 text, in lowercase hex;
/// `NULL` for `NULL`) on `connection`.
///
/// # Errors
/// sqlx could not lend the handle (its worker thread is gone), or SQLite refused the function.
pub async fn register(connection: &mut SqliteConnection) -> Result<(), sea_orm::sqlx::Error> {
    let mut handle = connection.lock_handle().await?;
    // SAFETY: the handle is locked out of sqlx's worker thread for the call and is a live
    // connection; NAME is NUL-terminated; the callback matches SQLite's `xFunc` signature and
    // uses no user data, so there is nothing to destroy.
    let code = unsafe {
        ffi::sqlite3_create_function_v2(
            handle.as_raw_handle().as_ptr(),
            NAME.as_ptr().cast(),
            1,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC | ffi::SQLITE_INNOCUOUS,
            std::ptr::null_mut(),
            Some(sha256_hex),
            None,
            None,
            None,
        )
    };
    if code == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(sea_orm::sqlx::Error::Configuration(
            format!("registering sea_orm_history_sha256 failed: SQLite error {code}").into(),
        ))
    }
}

/// `sea_orm_history_sha256(text)`, as SQLite calls it.
///
/// # Safety
/// Called by SQLite only, with `args` pointing at `n_args` (here 1) values valid for the call.
unsafe extern "C" fn sha256_hex(
    context: *mut ffi::sqlite3_context,
    n_args: c_int,
    args: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite passes as many values as the function was registered with (one), valid until
    // the callback returns; the text pointer it gives is valid for `sqlite3_value_bytes` bytes
    // (asked after the text, as SQLite's documentation requires); the result is copied by SQLite
    // (`SQLITE_TRANSIENT`) before `hex` is dropped.
    unsafe {
        if n_args != 1 {
            ffi::sqlite3_result_null(context);
            return;
        }
        let value = *args;
        let text = ffi::sqlite3_value_text(value);
        if text.is_null() {
            // NULL for NULL; otherwise SQLite could not convert the value (out of memory).
            if ffi::sqlite3_value_type(value) == ffi::SQLITE_NULL {
                ffi::sqlite3_result_null(context);
            } else {
                ffi::sqlite3_result_error_nomem(context);
            }
            return;
        }
        let length = usize::try_from(ffi::sqlite3_value_bytes(value)).unwrap_or(0);
        let bytes = std::slice::from_raw_parts(text, length);
        let hex = hex::encode(Sha256::digest(bytes));
        ffi::sqlite3_result_text(
            context,
            hex.as_ptr().cast(),
            // 64 characters.
            c_int::try_from(hex.len()).unwrap_or(0),
            ffi::SQLITE_TRANSIENT(),
        );
    }
}
