//! The database connection: pool settings per backend (one connection for SQLite, WAL mode; READ
//! COMMITTED on MySQL; sqlx's release ping only where it matters; PostgreSQL's `BEGIN` with the
//! transaction's first statement), SQLite's background checkpointer, migrations on start, the check `verify` and `prune` make that a database is
//! a migrated Chronicle database before they touch it, and [`timed`], the database time of a request.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
};

use crate::config::{DatabaseSettings, SqliteSync};

/// Connects to the database of `settings`.
///
/// # Errors
/// The database is unreachable.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(settings.url.clone());
    let connections = if settings.url.starts_with("sqlite:") {
        1
    } else {
        settings.max_connections.max(1)
    };
    options
        .max_connections(connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .sqlx_logging(false);
    // sqlx pings every connection as it leaves the pool by default, a round trip on every request's
    // path: only a connection that sat idle is pinged at checkout here.
    if settings.ping_after_idle_ms == 0 {
        options.test_before_acquire(true);
    } else {
        options.test_before_acquire_if_idle_for(Duration::from_millis(settings.ping_after_idle_ms));
    }
    let synchronous = match settings.sqlite_synchronous {
        SqliteSync::Normal => SqliteSynchronous::Normal,
        SqliteSync::Full => SqliteSynchronous::Full,
    };
    // SQLite: write-ahead log (readers never block the writer, one fsync per checkpoint rather than per
    // commit with `normal`), and a wait instead of `database is locked` when another process writes.
    // The commits checkpoint a long log only (see `spawn_sqlite_checkpointer`).
    let autocheckpoint = settings.sqlite_wal_autocheckpoint.to_string();
    options.map_sqlx_sqlite_opts(move |sqlite| {
        sqlite
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(30))
            .pragma("wal_autocheckpoint", autocheckpoint.clone())
    });
    // And as it comes back, by default: a round trip per request, off its path but CPU on both
    // sides. With `ping_on_release` off only a connection not in step with its server is pinged
    // (`test_on_release`, a patch of sqlx: see `vendor/README.md`). sea-orm keeps one
    // pool-options hook per backend, so the MySQL hook sets it along with what else it does.
    // SQLite keeps its ping (a hop to the connection's worker thread): its driver cannot tell a
    // connection whose worker is gone on the way back without it.
    // PostgreSQL: a transaction's `BEGIN` sent with its first statement, a round trip less per
    // transaction (`pipeline_begin`, a patch of sqlx too).
    let pipeline_begin = settings.pipeline_begin;
    options.map_sqlx_postgres_opts(move |pg| pg.pipeline_begin(pipeline_begin));
    let ping_on_release = settings.ping_on_release;
    options.map_sqlx_postgres_pool_opts(move |pool| pool.test_on_release(ping_on_release));
    // MySQL: READ COMMITTED, as PostgreSQL's default. Each statement then reads the latest committed
    // rows without locking reads, and InnoDB takes no gap locks, which under REPEATABLE READ made
    // concurrent history writers of different objects deadlock (what `sea_orm_history::mysql::install`
    // does, in this hook).
    options.map_sqlx_mysql_pool_opts(move |pool| {
        pool.test_on_release(ping_on_release)
            .after_connect(|connection, _| {
                Box::pin(sea_orm_history::mysql::set_read_committed(connection))
            })
    });
    // SQLite: the SHA-256 function that lets the history writer chain a record in the database, a
    // round trip less per change (see `sea_orm_history::sqlite`).
    sea_orm_history::sqlite::install(&mut options);
    let mut db = Database::connect(options).await?;
    db.set_metric_callback(|info| add_database_time(info.elapsed));
    Ok(db)
}

/// Starts SQLite's background checkpointer when `settings` name a SQLite database and an interval:
/// every `sqlite_checkpoint_ms`, a connection of its own copies the write-ahead log into the
/// database file with a passive checkpoint, which waits for no reader or writer, and syncs the file.
///
/// Left to the commits (SQLite's automatic checkpoint, every 1000 pages of log by default), that
/// work, two `fsync`s included, falls on whichever request's commit crossed the threshold; a
/// historized change writes about four times the pages of a plain one (a page per B-tree it
/// touches), so it crosses it four times as often. Here the commits only append to the log, and
/// checkpoint it themselves only when it reaches `sqlite_wal_autocheckpoint` pages (when this
/// task falls behind, or is not running: the CLI's commands).
///
/// Abort the returned task when the server stops.
pub fn spawn_sqlite_checkpointer(
    settings: &DatabaseSettings,
) -> Option<tokio::task::JoinHandle<()>> {
    if !settings.url.starts_with("sqlite:") || settings.sqlite_checkpoint_ms == 0 {
        return None;
    }
    let settings = settings.clone();
    let every = Duration::from_millis(settings.sqlite_checkpoint_ms);
    Some(tokio::spawn(async move {
        let db = match connect(&settings).await {
            Ok(db) => db,
            Err(e) => {
                tracing::warn!(error = %e, "the SQLite checkpointer cannot connect; commits checkpoint instead");
                return;
            }
        };
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            ticks.tick().await;
            match checkpoint(&db).await {
                Ok((log, copied)) => {
                    failing = false;
                    tracing::trace!(log, copied, "SQLite checkpoint");
                }
                // Said once per run of failures, not every tick.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "SQLite background checkpoint failed");
                }
                Err(_) => {}
            }
        }
    }))
}

/// One passive checkpoint: the pages in the write-ahead log, and how many of them are now in the
/// database file.
async fn checkpoint(db: &DatabaseConnection) -> Result<(i64, i64), DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA wal_checkpoint(PASSIVE)",
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("wal_checkpoint answered nothing".into()))?;
    Ok((row.try_get_by_index(1)?, row.try_get_by_index(2)?))
}

tokio::task_local! {
    /// The database time of the running [`timed`] scope, in microseconds.
    static DATABASE_TIME: std::cell::Cell<u64>;
}

/// Adds a statement's time to the running [`timed`] scope, if any (sea-orm calls this after each
/// statement, in the task that ran it).
fn add_database_time(elapsed: Duration) {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let _ = DATABASE_TIME.try_with(|total| total.set(total.get().saturating_add(micros)));
}

/// Runs `fut` and also returns the time its statements spent in the database (those it ran in its
/// own task; work it spawned elsewhere, like the batched audit writer's, is not counted).
pub async fn timed<F: std::future::Future>(fut: F) -> (F::Output, Duration) {
    DATABASE_TIME
        .scope(std::cell::Cell::new(0), async {
            let output = fut.await;
            (
                output,
                Duration::from_micros(DATABASE_TIME.with(std::cell::Cell::get)),
            )
        })
        .await
}

/// Connects to the database of `settings`, applies pending schema migrations, then the data
/// migrations that have not run ([`crate::data_migrations`]).
///
/// # Errors
/// The database is unreachable or a migration fails.
pub async fn connect_and_migrate(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let db = connect_for_migration(settings).await?;
    migrate_schema(&db).await?;
    crate::data_migrations::apply(&db, crate::data_migrations::DATA_MIGRATIONS, None)
        .await
        .map_err(|e| DbErr::Custom(format!("a data migration failed: {e}")))?;
    Ok(db)
}

/// Connects to the database of `settings` to migrate it: a SQLite file is created when missing
/// (`mode=rwc`) unless the URL says otherwise.
///
/// # Errors
/// The database is unreachable.
pub async fn connect_for_migration(
    settings: &DatabaseSettings,
) -> Result<DatabaseConnection, DbErr> {
    let mut settings = settings.clone();
    if settings.url.starts_with("sqlite:") && !settings.url.contains("mode=") {
        let separator = if settings.url.contains('?') { '&' } else { '?' };
        settings.url = format!("{}{separator}mode=rwc", settings.url);
    }
    connect(&settings).await
}

/// Applies the pending schema migrations (they write no history and no audit events); returns the
/// names of those applied.
///
/// # Errors
/// A migration fails.
pub async fn migrate_schema(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    let pending: Vec<String> = Migrator::get_pending_migrations(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    Migrator::up(db, None).await?;
    Ok(pending)
}

/// Connects to an existing, migrated database (for `verify` and `prune`, which never create one).
///
/// # Errors
/// The database is unreachable, or has migrations pending (`chronicle migrate` applies them).
pub async fn connect_migrated(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let db = connect(settings).await?;
    let pending = Migrator::get_pending_migrations(&db).await?;
    if !pending.is_empty() {
        db.close().await.ok();
        return Err(DbErr::Custom(format!(
            "the database at {} is not a migrated Chronicle database ({} migration(s) pending): \
             check the URL, or run `chronicle migrate`",
            redact(&settings.url),
            pending.len()
        )));
    }
    Ok(db)
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
