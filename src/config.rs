//! Typed settings. Every flag has an environment variable (`CHRONICLE_*`, `DATABASE_URL`) and a sane
//! default, so `chronicle` with no arguments serves `chronicle.db` on 127.0.0.1:8000.

use clap::{Args, Parser, Subcommand};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "chronicle",
    version,
    about = "A GraphQL server whose every change is history"
)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve` when no subcommand is given.
    #[command(flatten)]
    pub settings: Settings,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database and serve the API (the default).
    Serve(Settings),
    /// Apply pending migrations and exit.
    Migrate(DatabaseSettings),
    /// Print the GraphQL schema (SDL) and exit: `chronicle schema > schema.graphql`.
    Schema,
}

/// Where the database is and how many connections to keep.
#[derive(Clone, Debug, Args)]
pub struct DatabaseSettings {
    /// `sqlite://FILE?mode=rwc`, `postgres://…` or `mysql://…`.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "sqlite://chronicle.db?mode=rwc"
    )]
    pub url: String,
    /// Pool size for PostgreSQL and MySQL. SQLite always uses one connection: it has a single writer,
    /// and one connection avoids `database is locked` errors under concurrent writes.
    #[arg(long, env = "CHRONICLE_MAX_CONNECTIONS", default_value_t = 16)]
    pub max_connections: u32,
    /// Seconds to wait for a pooled connection.
    #[arg(long, env = "CHRONICLE_ACQUIRE_TIMEOUT_SECS", default_value_t = 10)]
    pub acquire_timeout_secs: u64,
}

/// Everything `serve` needs.
#[derive(Clone, Debug, Args)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "CHRONICLE_BIND", default_value = "127.0.0.1:8000")]
    pub bind: String,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// The limits.
    #[command(flatten)]
    pub limits: Limits,
}

/// Limits on what one request may ask for. Each is a setting with a sane default.
#[derive(Clone, Debug, Args)]
pub struct Limits {
    /// Page size when `first` is omitted.
    #[arg(long, env = "CHRONICLE_DEFAULT_PAGE_SIZE", default_value_t = 20)]
    pub default_page_size: u32,
    /// Largest `first` a list accepts (`LIMIT_EXCEEDED` above).
    #[arg(long, env = "CHRONICLE_MAX_PAGE_SIZE", default_value_t = 100)]
    pub max_page_size: u32,
    /// Largest request body in bytes (413 above).
    #[arg(long, env = "CHRONICLE_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Deepest query accepted (GraphiQL's introspection query needs 13).
    #[arg(long, env = "CHRONICLE_MAX_QUERY_DEPTH", default_value_t = 20)]
    pub max_query_depth: usize,
    /// Most complex query accepted (fields counted, lists weighted by their page size).
    #[arg(long, env = "CHRONICLE_MAX_QUERY_COMPLEXITY", default_value_t = 5000)]
    pub max_query_complexity: usize,
    /// Longest `description` of a project or task, in characters.
    #[arg(
        long,
        env = "CHRONICLE_MAX_DESCRIPTION_CHARS",
        default_value_t = 10_000
    )]
    pub max_description_chars: usize,
    /// Longest change `reason`, in characters.
    #[arg(long, env = "CHRONICLE_MAX_REASON_CHARS", default_value_t = 1_000)]
    pub max_reason_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            default_page_size: 20,
            max_page_size: 100,
            max_body_bytes: 2 * 1024 * 1024,
            max_query_depth: 20,
            max_query_complexity: 5000,
            max_description_chars: 10_000,
            max_reason_chars: 1_000,
        }
    }
}

impl Settings {
    /// Settings for `database_url` with every other value at its default and an OS-chosen port on
    /// loopback (what the tests use).
    pub fn for_database(database_url: &str) -> Self {
        Self {
            bind: "127.0.0.1:0".into(),
            database: DatabaseSettings {
                url: database_url.into(),
                max_connections: 16,
                acquire_timeout_secs: 10,
            },
            limits: Limits::default(),
        }
    }
}
