//! MySQL/MariaDB connections made ready for the history writer (feature `mysql`): every session at
//! `READ COMMITTED`, as PostgreSQL's default. The writer reads an object's latest record under the
//! lock of its live row, which a statement sees only at `READ COMMITTED` (at InnoDB's default,
//! `REPEATABLE READ`, it reads the snapshot its transaction began with), and InnoDB then takes no gap
//! locks, which under `REPEATABLE READ` deadlock concurrent writers of different objects.

use sea_orm::ConnectOptions;
use sea_orm::sqlx::Executor;
use sea_orm::sqlx::mysql::MySqlConnection;

/// The statement that puts a session at `READ COMMITTED` ([`set_read_committed`] runs it).
pub const READ_COMMITTED: &str = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// Opens every connection `options` makes at `READ COMMITTED` (MySQL only; other backends ignore
/// it). It takes sea-orm's MySQL pool-options hook
/// ([`ConnectOptions::map_sqlx_mysql_pool_opts`]): when you need that hook yourself, call
/// [`set_read_committed`] from your pool's `after_connect` instead.
///
/// ```
/// let mut options = sea_orm::ConnectOptions::new("mysql://root@127.0.0.1:3306/app");
/// sea_orm_history::mysql::install(&mut options);
/// // sea_orm::Database::connect(options).await?
/// ```
pub fn install(options: &mut ConnectOptions) {
    options.map_sqlx_mysql_pool_opts(|pool| {
        pool.after_connect(|connection, _| Box::pin(set_read_committed(connection)))
    });
}

/// Puts `connection`'s session at `READ COMMITTED`, for a pool's `after_connect` of your own:
///
/// ```no_run
/// # fn hook(options: &mut sea_orm::ConnectOptions) {
/// options.map_sqlx_mysql_pool_opts(|pool| {
///     pool.max_lifetime(None)
///         .after_connect(|c, _| Box::pin(sea_orm_history::mysql::set_read_committed(c)))
/// });
/// # }
/// ```
///
/// # Errors
/// The statement failed (the connection is gone).
pub async fn set_read_committed(
    connection: &mut MySqlConnection,
) -> Result<(), sea_orm::sqlx::Error> {
    connection.execute(READ_COMMITTED).await.map(|_| ())
}
