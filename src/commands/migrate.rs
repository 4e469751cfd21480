//! `chronicle migrate`: the pending schema migrations, then the data migrations that have not run
//! ([`crate::data_migrations`]), as one audited call (a `FUNCTION` event named `migrate` whose output
//! lists what was applied, or a `FAILURE` with the error). The schema migrations themselves write no
//! history and no events.

use std::process::ExitCode;

use sea_orm::DatabaseConnection;
use serde_json::json;

use crate::audit::audited::Audited;
use crate::config::MigrateSettings;
use crate::data_migrations::{DATA_MIGRATIONS, apply};
use crate::database::{connect_for_migration, migrate_schema};
use crate::error::AppError;

/// Runs the migrations.
pub async fn run(settings: &MigrateSettings) -> ExitCode {
    let db = match connect_for_migration(&settings.database).await {
        Ok(db) => db,
        Err(e) => {
            tracing::error!(error = %e, "cannot connect to the database");
            return ExitCode::FAILURE;
        }
    };
    let outcome = migrate(&db, settings.actor.as_deref()).await;
    db.close().await.ok();
    match outcome {
        Ok(()) => {
            tracing::info!("migrations applied");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "migration failed");
            ExitCode::FAILURE
        }
    }
}

/// Migrates as one audited call. Its event is recorded once the audit trail's table exists (a
/// failure before that, on a database this release never migrated, is only logged).
async fn migrate(db: &DatabaseConnection, actor: Option<&str>) -> Result<(), AppError> {
    let mut call = Audited::new("migrate").app("chronicle");
    if let Some(actor) = actor {
        call = call.user(actor);
    }
    call.run(db, async {
        let schema = migrate_schema(db).await?;
        let data = apply(db, DATA_MIGRATIONS, actor).await?;
        Ok::<_, AppError>(json!({
            "schema": schema,
            "data": data.iter().map(|a| json!({
                "name": a.name, "assignationId": a.assignation_id, "records": a.records,
            })).collect::<Vec<_>>(),
        }))
    })
    .await
    .map(|_| ())
}
