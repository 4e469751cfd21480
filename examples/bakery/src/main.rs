//! `bakery [DATABASE_URL] [ADDRESS]`: serves the bakery's GraphQL API (default: a SQLite file
//! `bakery.db`, on 127.0.0.1:8001).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "sqlite://bakery.db?mode=rwc".into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8001".into());
    let (router, _db) = match bakery::app(&url).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("bakery: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("bakery: binding {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("bakery listening on http://{addr}/graphql");
    match axum::serve(listener, router).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bakery: {e}");
            ExitCode::FAILURE
        }
    }
}
