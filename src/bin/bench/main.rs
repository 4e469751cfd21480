//! `bench`: Chronicle's benchmarks. Prints a table and, with `--json FILE`, writes every number.
//!
//! ```sh
//! cargo run --release --bin bench -- [--quick] [--json FILE] [--database-url URL]...
//! ```
//!
//! Each `--database-url` names a server (`postgres://…/db`, `mysql://…/db`) or `sqlite` (a temporary
//! file); without one, SQLite, the PostgreSQL at `postgres://postgres@127.0.0.1:5432/test` and the
//! MariaDB at `mysql://root@127.0.0.1:3306/test`. Every measurement creates a fresh database there and
//! drops it afterwards. Measured (see `suite`): `write_overhead_ratio` (create+update, and create,
//! update and delete apart), `mutations_per_s` with p50/p99 of `createTask`/`updateTask` over HTTP at
//! concurrency 1, 8 and 32, each beside its `ceiling_per_s` (the same database work without HTTP) and
//! `http_over_ceiling`, the server's RSS, `scale_ratio` (the write figures on a database of a million history
//! records against one nearly empty, measured in turns), the verifiable log's cost (`log_throughput_ratio` with the
//! sequencer on and off, how far it trails, `log_sequence_per_s`, `log_verify_s` of 1M records),
//! `history_p50_ms` at 10k/100k/1M history records, and `revert_10k_s`. `--quick` does a fraction of each, for a look in a few minutes.

mod ceiling;
mod http;
mod scratch;
mod server;
mod suite;

use std::future::Future;
use std::process::ExitCode;

use chronicle::config::{DatabaseSettings, Settings};
use chronicle::database::{connect_and_migrate, spawn_sqlite_checkpointer};
use chronicle::startup::Application;
use clap::{Parser, Subcommand};
use sea_orm::DatabaseConnection;
use serde_json::json;

use scratch::{Scratch, backend_name};
use suite::Measure;

/// The command line.
#[derive(Parser)]
#[command(name = "bench", about = "Chronicle's benchmarks")]
struct Args {
    /// A fraction of the work, for a quick look.
    #[arg(long)]
    quick: bool,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Servers to measure on (`sqlite`, `postgres://…`, `mysql://…`); SQLite and the local
    /// PostgreSQL when omitted.
    #[arg(long = "database-url")]
    database_urls: Vec<String>,
    /// Only these measurements (`write`, `http`, `scale`, `log`, `history`, `revert`); all when
    /// omitted.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    #[command(subcommand)]
    internal: Option<Internal>,
}

#[derive(Subcommand)]
enum Internal {
    /// Serve as `chronicle serve` does, on port 0, printing `listening ADDR` first (used by the bench).
    #[command(hide = true)]
    ServeForBench {
        #[arg(long)]
        database_url: String,
        /// The sequencer's period (0: off).
        #[arg(long, default_value_t = 1_000)]
        sequence_every_ms: u64,
    },
}

/// Serves until killed.
async fn serve_for_bench(url: String, sequence_every_ms: u64) -> ExitCode {
    let mut settings = Settings::for_database(&url);
    database_settings_from_env(&mut settings.database);
    settings.log.sequence_every_ms = sequence_every_ms;
    if let Some(batch) = env_setting("CHRONICLE_SEQUENCER_BATCH") {
        settings.log.sequencer_batch = batch;
    }
    settings.operations.access_log = false;
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening {}", app.addr());
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The pool's release ping, PostgreSQL's pipelined `BEGIN` and SQLite's checkpoint settings from
/// the variables `chronicle serve` reads (`CHRONICLE_PING_ON_RELEASE`, `CHRONICLE_PIPELINE_BEGIN`,
/// `CHRONICLE_SQLITE_CHECKPOINT_MS`,
/// `CHRONICLE_SQLITE_WAL_AUTOCHECKPOINT`), for the bench's own connection and its server alike:
/// `CHRONICLE_SQLITE_CHECKPOINT_MS=0 CHRONICLE_SQLITE_WAL_AUTOCHECKPOINT=1000` measures SQLite's own
/// checkpoints, `CHRONICLE_PING_ON_RELEASE=true` sqlx's ping of every connection back in its pool,
/// `CHRONICLE_PIPELINE_BEGIN=false` a round trip of its own for every `BEGIN`.
pub(crate) fn database_settings_from_env(settings: &mut DatabaseSettings) {
    if let Some(ping) = env_setting("CHRONICLE_PING_ON_RELEASE") {
        settings.ping_on_release = ping;
    }
    if let Some(pipeline) = env_setting("CHRONICLE_PIPELINE_BEGIN") {
        settings.pipeline_begin = pipeline;
    }
    if let Some(ms) = env_setting("CHRONICLE_SQLITE_CHECKPOINT_MS") {
        settings.sqlite_checkpoint_ms = ms;
    }
    if let Some(pages) = env_setting("CHRONICLE_SQLITE_WAL_AUTOCHECKPOINT") {
        settings.sqlite_wal_autocheckpoint = pages;
    }
}

/// The environment variable `name` parsed, when it is set (to something else: said, ignored).
fn env_setting<T: std::str::FromStr>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok()?;
    let parsed = value.parse().ok();
    if parsed.is_none() {
        eprintln!("bench: {name}={value} is not a valid value, ignored");
    }
    parsed
}

/// Runs `body` on a fresh migrated database of `server`, dropped afterwards.
async fn on_scratch<F, Fut>(server: &str, body: F) -> Result<Vec<Measure>, String>
where
    F: FnOnce(DatabaseConnection, String) -> Fut,
    Fut: Future<Output = Result<Vec<Measure>, String>>,
{
    let scratch = Scratch::create(server).await?;
    let mut settings = DatabaseSettings {
        max_connections: 4,
        acquire_timeout_secs: 60,
        ..DatabaseSettings::for_url(&scratch.url)
    };
    database_settings_from_env(&mut settings);
    let outcome = match connect_and_migrate(&settings).await {
        Ok(db) => {
            // The bench's own writes run as the server's do, checkpoints included.
            let checkpointer = spawn_sqlite_checkpointer(&settings);
            let outcome = body(db.clone(), scratch.url.clone()).await;
            if let Some(task) = checkpointer {
                task.abort();
            }
            db.close().await.ok();
            outcome
        }
        Err(e) => Err(e.to_string()),
    };
    scratch.drop().await;
    outcome
}

/// mimalloc: under load glibc's malloc and free took a fifth of the server's CPU time (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Internal::ServeForBench {
        database_url,
        sequence_every_ms,
    }) = args.internal
    {
        return serve_for_bench(database_url, sequence_every_ms).await;
    }
    let urls = if args.database_urls.is_empty() {
        vec![
            "sqlite".to_owned(),
            "postgres://postgres@127.0.0.1:5432/test".to_owned(),
            "mysql://root@127.0.0.1:3306/test".to_owned(),
        ]
    } else {
        args.database_urls.clone()
    };
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let quick = args.quick;
    let mut rows = Vec::new();
    for server in &urls {
        let backend = backend_name(server);
        let mut measures = Vec::new();
        let mut run = async |name: &str, result: Result<Vec<Measure>, String>| match result {
            Ok(found) => {
                for m in &found {
                    eprintln!("{backend} {} {} {:.3}", m.metric, m.params, m.value);
                }
                measures.extend(found);
                Ok(())
            }
            Err(e) => Err(format!("{backend} {name}: {e}")),
        };
        let outcome: Result<(), String> = async {
            if wanted("write") {
                let n = if quick { 200 } else { 2_000 };
                run(
                    "write",
                    on_scratch(server, |db, _| async move {
                        suite::write_overhead(&db, n).await
                    })
                    .await,
                )
                .await?;
            }
            if wanted("http") {
                let (seconds, seeded) = if quick { (2, 1_000) } else { (10, 10_000) };
                run(
                    "http",
                    on_scratch(server, |db, url| async move {
                        suite::http_mutations(&db, &url, &[1, 8, 32], seconds, seeded).await
                    })
                    .await,
                )
                .await?;
            }
            if wanted("scale") {
                let (n, seconds, records, rounds) = if quick {
                    (200, 2, 100_000, 2)
                } else {
                    (2_000, 5, 1_000_000, 3)
                };
                run(
                    "scale",
                    on_scratch(server, |empty, empty_url| async move {
                        on_scratch(server, |full, full_url| async move {
                            suite::scale(
                                (&empty, &empty_url),
                                (&full, &full_url),
                                n,
                                seconds,
                                records,
                                rounds,
                            )
                            .await
                        })
                        .await
                    })
                    .await,
                )
                .await?;
            }
            if wanted("log") {
                let (seconds, records) = if quick { (2, 100_000) } else { (10, 1_000_000) };
                run(
                    "log",
                    on_scratch(server, |db, url| async move {
                        suite::log(&db, &url, seconds, records).await
                    })
                    .await,
                )
                .await?;
            }
            if wanted("history") {
                let sizes: &[u64] = if quick {
                    &[10_000, 100_000]
                } else {
                    &[10_000, 100_000, 1_000_000]
                };
                run(
                    "history",
                    on_scratch(server, |db, url| async move {
                        suite::history_latency(&db, &url, sizes).await
                    })
                    .await,
                )
                .await?;
            }
            if wanted("revert") {
                let (objects, changes) = if quick { (200, 1_000) } else { (2_000, 10_000) };
                run(
                    "revert",
                    on_scratch(server, |db, _| async move {
                        suite::revert(&db, objects, changes).await
                    })
                    .await,
                )
                .await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        rows.extend(measures.into_iter().map(|m| (backend, m)));
    }

    println!("| backend | metric | parameters | value |");
    println!("| --- | --- | --- | --- |");
    for (backend, m) in &rows {
        let params = m
            .params
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        format!(
                            "{k}={}",
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        println!("| {backend} | {} | {params} | {:.3} |", m.metric, m.value);
    }
    if let Some(path) = args.json {
        let machine = json!({
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "os": std::env::consts::OS,
        });
        let results: Vec<_> = rows
            .iter()
            .map(|(backend, m)| json!({"backend": backend, "metric": m.metric, "params": m.params, "value": m.value}))
            .collect();
        let body = json!({"quick": quick, "machine": machine, "results": results}).to_string();
        if let Err(e) = std::fs::write(&path, body) {
            eprintln!("writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
