//! `bench`: Chronicle's benchmarks. Prints a table and, with `--json FILE`, writes the numbers.
//!
//! ```sh
//! cargo run --release --bin bench -- [--quick] [--json FILE] [--database-url URL]...
//! ```
//!
//! Each `--database-url` names a server (or `sqlite`, a temporary file, the default); the bench creates
//! a fresh database there and drops it afterwards. Measured now: `revert_10k_s`, the revert of one
//! assignation of 10,000 changes over 2,000 objects (`--quick`: 1,000 over 200).

use std::process::ExitCode;
use std::time::Instant;

use chronicle::auth::{Principal, Source};
use chronicle::config::DatabaseSettings;
use chronicle::history::revert::revert_assignation;
use chronicle::startup::connect_and_migrate;
use clap::Parser;
use entity::context::ChangeContext;
use entity::history::{insert_with_history, now};
use entity::task::TaskStatus;
use entity::{project, task};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, Database, DatabaseConnection, IntoActiveModel, Set,
    TransactionTrait,
};
use serde_json::json;

/// The command line.
#[derive(Parser)]
#[command(name = "bench", about = "Chronicle's benchmarks")]
struct Args {
    /// A tenth of the work, for a quick look.
    #[arg(long)]
    quick: bool,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Servers to measure on (`sqlite`, `postgres://…`, `mysql://…`); SQLite when omitted.
    #[arg(long = "database-url")]
    database_urls: Vec<String>,
}

/// A database made for one run and removed after it.
struct Scratch {
    url: String,
    server: Option<String>,
    name: String,
}

impl Scratch {
    async fn create(server: &str) -> Result<Self, String> {
        let name = format!("chronicle_bench_{}", uuid::Uuid::now_v7().simple());
        if server == "sqlite" || server.starts_with("sqlite:") {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            return Ok(Self {
                url: format!("sqlite://{}?mode=rwc", path.display()),
                server: None,
                name: path.display().to_string(),
            });
        }
        let admin = Database::connect(server).await.map_err(|e| e.to_string())?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| e.to_string())?;
        admin.close().await.ok();
        let base = server
            .rsplit_once('/')
            .map(|(base, _)| base)
            .ok_or("a server URL ends in /DATABASE")?;
        Ok(Self {
            url: format!("{base}/{name}"),
            server: Some(server.to_owned()),
            name,
        })
    }

    async fn drop(self) {
        match self.server {
            None => {
                std::fs::remove_file(&self.name).ok();
            }
            Some(server) => {
                if let Ok(admin) = Database::connect(&server).await {
                    admin
                        .execute_unprepared(&format!("DROP DATABASE {}", self.name))
                        .await
                        .ok();
                }
            }
        }
    }
}

fn backend_name(url: &str) -> &'static str {
    if url.starts_with("postgres") {
        "postgres"
    } else if url.starts_with("mysql") {
        "mysql"
    } else {
        "sqlite"
    }
}

/// Creates `objects` tasks, then changes each `changes / objects` times in one assignation, and times
/// the revert of that assignation.
async fn revert_bench(
    db: &DatabaseConnection,
    objects: usize,
    changes: usize,
) -> Result<f64, String> {
    let err = |e: sea_orm::DbErr| e.to_string();
    let setup = ChangeContext::new("bench-setup");
    let tasks = setup
        .scope(async {
            let txn = db.begin().await.map_err(err)?;
            let at = now();
            let project = project::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                name: Set("bench".into()),
                description: Set(None),
                archived: Set(false),
                created_at: Set(at),
                updated_at: Set(at),
            }
            .insert(&txn)
            .await
            .map_err(err)?;
            let tasks: Vec<task::Model> = (0..objects)
                .map(|i| task::Model {
                    id: uuid::Uuid::now_v7(),
                    project_id: project.id,
                    title: format!("task {i}"),
                    description: None,
                    status: TaskStatus::Todo,
                    priority: 0,
                    due_date: None,
                    created_at: at,
                    updated_at: at,
                })
                .collect();
            insert_with_history::<task::Entity, _>(&txn, tasks.clone())
                .await
                .map_err(err)?;
            txn.commit().await.map_err(err)?;
            Ok::<_, String>(tasks)
        })
        .await?;
    let rounds = changes / objects.max(1);
    ChangeContext::new("bench-bulk")
        .scope(async {
            let txn = db.begin().await.map_err(err)?;
            for round in 0..rounds {
                for task in &tasks {
                    let mut active = task.clone().into_active_model();
                    active.title = Set(format!("{} r{round}", task.title));
                    active.priority = Set(i32::try_from(round % 6).unwrap_or(0));
                    active.update(&txn).await.map_err(err)?;
                }
            }
            txn.commit().await.map_err(err)?;
            Ok::<_, String>(())
        })
        .await?;
    let admin = Principal {
        user: Some("bench-revert".into()),
        app: None,
        scopes: Vec::new(),
        source: Source::Header,
    };
    let started = Instant::now();
    ChangeContext::new("bench-revert")
        .scope(revert_assignation(db, "bench-bulk", false, None, &admin))
        .await
        .map_err(|e| format!("revert: {e:?}"))?;
    Ok(started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let urls = if args.database_urls.is_empty() {
        vec!["sqlite".to_owned()]
    } else {
        args.database_urls.clone()
    };
    let (objects, changes) = if args.quick {
        (200, 1_000)
    } else {
        (2_000, 10_000)
    };
    let mut results = Vec::new();
    println!("| backend | metric | value |");
    println!("| --- | --- | --- |");
    for server in urls {
        let scratch = match Scratch::create(&server).await {
            Ok(scratch) => scratch,
            Err(e) => {
                eprintln!("{server}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let settings = DatabaseSettings {
            url: scratch.url.clone(),
            max_connections: 4,
            acquire_timeout_secs: 30,
        };
        let outcome = match connect_and_migrate(&settings).await {
            Ok(db) => revert_bench(&db, objects, changes).await,
            Err(e) => Err(e.to_string()),
        };
        scratch.drop().await;
        match outcome {
            Ok(seconds) => {
                let backend = backend_name(&server);
                let metric = if args.quick {
                    "revert_1k_s"
                } else {
                    "revert_10k_s"
                };
                println!("| {backend} | {metric} | {seconds:.3} |");
                results.push(
                    json!({"backend": backend, "metric": metric, "value": seconds,
                    "changes": changes, "objects": objects}),
                );
            }
            Err(e) => {
                eprintln!("{server}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(path) = args.json {
        let body = json!({"results": results}).to_string();
        if let Err(e) = std::fs::write(&path, body) {
            eprintln!("writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
