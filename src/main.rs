//! The `chronicle` binary: parse the command line, set up logging, then serve or run one of the other
//! commands (migrate, schema, verify, checkpoint, export, prune, token).

// The server's future (axum, hyper, the sequencer, sea-orm) nests deeper than the default limit of
// 128 lets the optimizer lay it out in a release build.
#![recursion_limit = "256"]

use std::process::ExitCode;

use chronicle::config::{Cli, Command, SchemaFormat};
use chronicle::startup::Application;
use clap::Parser;

/// mimalloc: under load glibc's malloc and free took a fifth of the server's CPU time (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli
        .command
        .unwrap_or(Command::Serve(Box::new(cli.settings)));
    let telemetry = match chronicle::telemetry::init(
        cli.log_format,
        !matches!(command, Command::Serve(_)),
        cli.otlp_endpoint.as_deref(),
    ) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("chronicle: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = run(command).await;
    telemetry.shutdown();
    code
}

/// Runs `command`.
async fn run(command: Command) -> ExitCode {
    match command {
        Command::Schema(settings) => match settings.format {
            SchemaFormat::Sdl => {
                print!("{}", chronicle::graphql::sdl());
                ExitCode::SUCCESS
            }
            SchemaFormat::Markdown => {
                match chronicle::graphql::reference::markdown(&chronicle::graphql::sdl()) {
                    Ok(reference) => {
                        print!("{reference}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the schema");
                        ExitCode::FAILURE
                    }
                }
            }
        },
        Command::Token(settings) => chronicle::commands::token::run(&settings),
        Command::Verify(settings) => chronicle::commands::verify::run(&settings).await,
        Command::Prune(settings) => chronicle::commands::prune::run(&settings).await,
        Command::Checkpoint(settings) => chronicle::commands::checkpoint::run(&settings).await,
        Command::Export(settings) => chronicle::commands::export::run(&settings).await,
        Command::Migrate(settings) => chronicle::commands::migrate::run(&settings).await,
        Command::Serve(settings) => {
            let app = match Application::build(*settings).await {
                Ok(app) => app,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start");
                    return ExitCode::FAILURE;
                }
            };
            match app.run_until_stopped().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "server failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
