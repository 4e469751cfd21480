//! Data migrations: changes to historized rows that ship with a release (a backfill, a cleanup), run
//! once by `chronicle migrate` (and by `serve`'s start-up migration) after the schema migrations.
//!
//! Each runs in one transaction inside a change context whose assignation is named after it
//! (`migration:<name>`, app `chronicle migrate`, reason its description), so every row it changes goes
//! through the same history hooks as a mutation's: it can be listed with `assignation(id:
//! "migration:<name>")` and undone with `revertAssignation`. It is an audited call (a `FUNCTION`
//! event named `data_migration`), and `data_migration` keeps which ran, when, and how many history
//! records each wrote. Schema migrations write neither history nor events.
//!
//! Chronicle's own list, [`DATA_MIGRATIONS`], is empty today; an application on the library declares
//! its own and passes them to [`apply`].

use std::future::Future;
use std::pin::Pin;

use entity::HistoryEntity;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
use sea_orm_history::{AssignationId, ChangeContext, EntitySet, Tally, now};
use serde_json::json;

use crate::audit::audited::Audited;
use crate::error::AppError;

/// The work of a data migration, given its transaction.
pub type MigrationFn = for<'c> fn(
    &'c DatabaseTransaction,
) -> Pin<Box<dyn Future<Output = Result<(), DbErr>> + Send + 'c>>;

/// One data migration.
#[derive(Clone, Copy, Debug)]
pub struct DataMigration {
    /// Its name, unique and never changed: `mYYYYMMDD_NNNNNN_what` (letters, digits, `_`, `-`, `.`),
    /// at most 100 characters. Its assignation is `migration:<name>`.
    pub name: &'static str,
    /// What it does (the reason on each history record it writes).
    pub description: &'static str,
    /// The work, through historized entities' active models.
    pub run: MigrationFn,
}

/// The longest data migration name.
pub const MAX_NAME: usize = 100;

/// The mark of the data migration `name`.
fn marked(name: &str) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(Alias::new("name"))
        .from(Alias::new("data_migration"))
        .and_where(Expr::col(Alias::new("name")).eq(name))
        .to_owned()
}

/// Chronicle's own data migrations, in order.
pub const DATA_MIGRATIONS: &[DataMigration] = &[];

/// A data migration that ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// Its name.
    pub name: String,
    /// Its assignation.
    pub assignation_id: String,
    /// How many history records it wrote.
    pub records: u64,
}

/// Runs each of `migrations` that has not run yet, in order, as `user` (if given), each an audited
/// call; those that ran before are skipped. A migration that fails rolls back (its rows, its history
/// and its mark) and stops the rest; one that another replica is running is waited for (up to the
/// database's lock timeout) and then skipped.
///
/// # Errors
/// `BAD_INPUT` for a malformed name (before anything runs), a migration's own error, or the
/// database's.
pub async fn apply(
    db: &DatabaseConnection,
    migrations: &[DataMigration],
    user: Option<&str>,
) -> Result<Vec<Applied>, AppError> {
    let registry = HistoryEntity::registry()?;
    for migration in migrations {
        let name = migration.name;
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(AppError::BadInput(format!(
                "data migration {name:?}: a name is 1 to {MAX_NAME} letters, digits, '_', '-' or '.'"
            )));
        }
    }
    let mut applied = Vec::new();
    for migration in migrations {
        // Those that ran before are skipped without an event; the check is made again under the
        // mark's key, for a replica that gets there at the same time.
        if db.query_one(&marked(migration.name)).await?.is_some() {
            continue;
        }
        let assignation = AssignationId::parse(format!("migration:{}", migration.name))?;
        let tally = Tally::default();
        let mut context = ChangeContext::new(registry, assignation.clone())
            .app("chronicle migrate")
            .reason(migration.description);
        if let Some(user) = user {
            context = context.user(user);
        }
        context.tally = Some(tally.clone());
        let mut call = Audited::new("data_migration").args(json!({
            "name": migration.name, "description": migration.description,
        }));
        if let Some(user) = user {
            call = call.user(user);
        }
        let ran = context
            .scope(call.run(db, run_once(db, migration, &assignation, &tally)))
            .await?;
        if let Some(records) = ran {
            tracing::info!(
                migration = migration.name,
                records,
                "data migration applied"
            );
            applied.push(Applied {
                name: migration.name.to_owned(),
                assignation_id: assignation.to_string(),
                records,
            });
        }
    }
    Ok(applied)
}

/// Runs `migration` in one transaction unless its mark is there; returns how many history records it
/// wrote, or `None` when it had run before.
async fn run_once(
    db: &DatabaseConnection,
    migration: &DataMigration,
    assignation: &AssignationId,
    tally: &Tally,
) -> Result<Option<u64>, AppError> {
    let table = Alias::new("data_migration");
    let txn = sea_orm_history::capture::begin_write(db).await?;
    let seen = marked(migration.name);
    if txn.query_one(&seen).await?.is_some() {
        txn.rollback().await?;
        return Ok(None);
    }
    // The mark first: a replica running the same migration waits on its key, then fails on it.
    let mark = Query::insert()
        .into_table(table.clone())
        .columns(["name", "applied_at", "assignation_id", "records"].map(Alias::new))
        .values_panic([
            migration.name.into(),
            now().into(),
            assignation.to_string().into(),
            0.into(),
        ])
        .to_owned();
    if let Err(e) = txn.execute(&mark).await {
        txn.rollback().await.ok();
        // Another replica's mark: it ran there. Anything else is this error.
        return match db.query_one(&seen).await {
            Ok(Some(_)) => Ok(None),
            _ => Err(e.into()),
        };
    }
    (migration.run)(&txn).await?;
    let records: u64 = tally.take().values().sum();
    let count = Query::update()
        .table(table)
        .value(
            Alias::new("records"),
            i64::try_from(records).unwrap_or(i64::MAX),
        )
        .and_where(Expr::col(Alias::new("name")).eq(migration.name))
        .to_owned();
    txn.execute(&count).await?;
    txn.commit().await?;
    Ok(Some(records))
}
