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
    /// Log lines as `text` (for people) or `json` (one object per line, for log collectors).
    #[arg(
        long,
        env = "CHRONICLE_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
    /// Export tracing spans (each request's, with the trace and span ids its history records and
    /// events keep) to this OpenTelemetry collector over OTLP/HTTP, e.g. `http://127.0.0.1:4318`
    /// (`/v1/traces` is appended unless the URL names a path). Off when unset.
    #[arg(long, env = "CHRONICLE_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database and serve the API (the default).
    Serve(Box<Settings>),
    /// Apply pending schema migrations, then data migrations, and exit (an audited `FUNCTION` event).
    Migrate(MigrateSettings),
    /// Print the GraphQL schema and exit: `chronicle schema > schema.graphql`, or the Markdown
    /// reference with `--format markdown > docs/reference.md`.
    Schema(SchemaSettings),
    /// Check every history record's hash chain; exits non-zero when a link is broken.
    Verify(VerifySettings),
    /// Issue a signed JWT for trying `--auth jwt` (production tokens come from your identity provider).
    Token(Box<TokenSettings>),
    /// Remove audit events (and, with `--history`, history records) older than an age.
    Prune(PruneSettings),
    /// Sequence every committed history record into the verifiable log, sign a checkpoint of it,
    /// and print the checkpoint.
    Checkpoint(CheckpointSettings),
    /// Export history records or audit events as NDJSON or CSV (recorded as an `EXPORT` event).
    Export(ExportSettings),
}

/// What `chronicle export` writes.
#[derive(Clone, Debug, Args)]
pub struct ExportSettings {
    /// `history` or `events`.
    #[command(subcommand)]
    pub what: ExportWhat,
}

/// The two exports.
#[derive(Clone, Debug, Subcommand)]
pub enum ExportWhat {
    /// History records, oldest first, table by table.
    History {
        /// Only this entity (`TASK`, …).
        #[arg(long)]
        entity: Option<String>,
        /// Only this object.
        #[arg(long)]
        object_id: Option<String>,
        /// Only this assignation.
        #[arg(long)]
        assignation_id: Option<String>,
        /// Only changes by this user.
        #[arg(long)]
        user: Option<String>,
        /// Only changes made in this W3C trace (32 hex digits).
        #[arg(long)]
        trace_id: Option<String>,
        /// The rest.
        #[command(flatten)]
        common: ExportCommon,
    },
    /// Audit events, oldest first.
    Events {
        /// Only this kind (`MUTATION`, …).
        #[arg(long)]
        kind: Option<String>,
        /// Only this action.
        #[arg(long)]
        action: Option<String>,
        /// Only this user.
        #[arg(long)]
        user: Option<String>,
        /// Only this app.
        #[arg(long)]
        app: Option<String>,
        /// Only events of this W3C trace (32 hex digits).
        #[arg(long)]
        trace_id: Option<String>,
        /// The rest.
        #[command(flatten)]
        common: ExportCommon,
    },
}

/// What both exports take.
#[derive(Clone, Debug, Args)]
pub struct ExportCommon {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// `ndjson` or `csv`.
    #[arg(long, value_enum, default_value_t = crate::export::Format::Ndjson)]
    pub format: crate::export::Format,
    /// Write here (a new file; an existing one is refused) instead of stdout.
    #[arg(long)]
    pub output: Option<std::path::PathBuf>,
    /// At or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Who the `EXPORT` event names (default: `$USER`).
    #[arg(long, env = "USER")]
    pub actor: Option<String>,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// How `chronicle schema` prints the schema.
#[derive(Clone, Copy, Debug, Args)]
pub struct SchemaSettings {
    /// `sdl` (GraphQL schema language) or `markdown` (the API reference).
    #[arg(long, value_enum, default_value_t = SchemaFormat::Sdl)]
    pub format: SchemaFormat,
}

/// The forms `chronicle schema` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaFormat {
    /// GraphQL schema language, as `schema.graphql` holds it.
    #[default]
    Sdl,
    /// The Markdown reference, as `docs/reference.md` holds it.
    Markdown,
}

/// What `chronicle prune` removes.
#[derive(Clone, Debug, Args)]
pub struct PruneSettings {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// Remove what is older than this age: a number and `s`, `m`, `h`, `d` or `w` (`90d`).
    #[arg(long, value_parser = parse_age)]
    pub older_than: std::time::Duration,
    /// Also remove history records older than the age, except each object's latest record.
    #[arg(long)]
    pub history: bool,
    /// Write everything removed to this new gzip'd NDJSON file first (an existing file is refused).
    #[arg(long)]
    pub archive: Option<std::path::PathBuf>,
    /// Count what would be removed, as the prune would choose it, and remove nothing.
    #[arg(long, conflicts_with = "archive")]
    pub dry_run: bool,
    /// Audit events, or objects, removed per batch (each batch is one transaction).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch_size: u64,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// Who the command's `FUNCTION` audit event names (default: `$USER`).
    #[arg(long, env = "USER")]
    pub actor: Option<String>,
}

/// What `chronicle token` puts in the token and signs it with.
#[derive(Clone, Debug, Args)]
pub struct TokenSettings {
    /// The user (`sub`).
    #[arg(long)]
    pub sub: String,
    /// The app (`azp`).
    #[arg(long)]
    pub app: Option<String>,
    /// Space-separated permissions (`scope`), e.g. `history:revert-any`.
    #[arg(long)]
    pub scope: Option<String>,
    /// `iss`, when the server checks it.
    #[arg(long)]
    pub issuer: Option<String>,
    /// `aud`, when the server checks it (repeat it for several; a provenance token's is a list).
    #[arg(long)]
    pub audience: Vec<String>,
    /// Seconds until `exp`.
    #[arg(long, default_value_t = 3600)]
    pub ttl_secs: u64,
    /// Mint a provenance token (`Rekuest-Task`) for this assignation (`tsk`) instead of a bearer
    /// token; `--sub` is then the causer of this hop.
    #[arg(long)]
    pub tsk: Option<String>,
    /// The parent assignation (`ptk`; none at a root).
    #[arg(long, requires = "tsk")]
    pub ptk: Option<String>,
    /// The root assignation (`rtk`; default: `--tsk` at a root, else `--ptk`).
    #[arg(long, requires = "tsk")]
    pub rtk: Option<String>,
    /// The human at the root of the tree (`rcb`; default: `--sub`).
    #[arg(long, requires = "tsk")]
    pub rcb: Option<String>,
    /// The agent that presents it (`act.sub`; default: `--sub`).
    #[arg(long, requires = "tsk")]
    pub act_sub: Option<String>,
    /// The agent's OAuth client (`act.cid`; default: `--app`).
    #[arg(long, requires = "tsk")]
    pub act_cid: Option<String>,
    /// The token's unique id (`jti`; default: a fresh UUIDv7).
    #[arg(long, requires = "tsk")]
    pub jti: Option<String>,
    /// SHA-256 of the canonicalized arguments (`ahs`).
    #[arg(long, requires = "tsk")]
    pub ahs: Option<String>,
    /// The canonicalization of the arguments (`aha`).
    #[arg(long, requires = "tsk")]
    pub aha: Option<String>,
    /// The HS256 secret the server was given.
    #[arg(long, env = "CHRONICLE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// A PEM private key: RSA (RS256) or Ed25519 (EdDSA).
    #[arg(long)]
    pub private_key: Option<std::path::PathBuf>,
}

/// What `chronicle verify` checks.
#[derive(Clone, Debug, Args)]
pub struct VerifySettings {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// Prove the history against this checkpoint (a signed note kept outside the database): every
    /// record it covers is still there, unchanged and in place, and the log extends it.
    #[arg(long)]
    pub checkpoint: Option<std::path::PathBuf>,
    /// The public key (PEM) the checkpoint must be signed with.
    #[arg(long, requires = "checkpoint")]
    pub public_key: Option<std::path::PathBuf>,
    /// Archives written by `prune`, for the records they removed (repeat for several).
    #[arg(long, requires = "checkpoint")]
    pub archive: Vec<std::path::PathBuf>,
    /// The sequencer's window (`serve --sequencer-window`).
    #[arg(long, default_value = "10m", value_parser = parse_age)]
    pub sequencer_window: std::time::Duration,
    /// Who the command's `FUNCTION` audit event names (default: `$USER`).
    #[arg(long, env = "USER")]
    pub actor: Option<String>,
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
    /// A pooled connection idle for at least this many milliseconds is pinged before a request gets
    /// it; 0 pings at every checkout. A connection in steady use is not pinged: it proved itself
    /// alive on its last request; one that died since fails the request that uses it and then
    /// leaves the pool.
    #[arg(long, env = "CHRONICLE_PING_AFTER_IDLE_MS", default_value_t = 1_000)]
    pub ping_after_idle_ms: u64,
    /// PostgreSQL and MySQL: ping every connection as it comes back to the pool (sqlx's own
    /// behaviour), a round trip per request. Off by default: only a connection not in step with its
    /// server is pinged (a `ROLLBACK` queued by a dropped transaction, a result left unread, an
    /// error just read, a dead connection), which sends, drains or drops it (see
    /// `vendor/README.md`). SQLite always pings (a hop to its connection's thread).
    #[arg(long, env = "CHRONICLE_PING_ON_RELEASE", default_value_t = false, action = clap::ArgAction::Set)]
    pub ping_on_release: bool,
    /// PostgreSQL only: a transaction's `BEGIN` travels with its first statement, in one round
    /// trip, instead of taking one of its own (as the PostgreSQL JDBC driver does; a patch of sqlx,
    /// see `vendor/README.md`). The `BEGIN` goes ahead of the statement in the same protocol
    /// pipeline, so the server skips the statement if the `BEGIN` fails. `false`: sqlx's own
    /// behaviour.
    #[arg(long, env = "CHRONICLE_PIPELINE_BEGIN", default_value_t = true, action = clap::ArgAction::Set)]
    pub pipeline_begin: bool,
    /// SQLite only (always in WAL mode): `normal` syncs the log at checkpoints, so a power cut may lose
    /// the last commits but never corrupts; `full` syncs every commit.
    #[arg(long, env = "CHRONICLE_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSync::Normal)]
    pub sqlite_synchronous: SqliteSync,
    /// SQLite only: every this many milliseconds, a connection of the server's own copies the
    /// write-ahead log into the database file (a passive checkpoint, which waits for no one), so
    /// that requests do not pay for it; 0 leaves checkpoints to the commits.
    #[arg(long, env = "CHRONICLE_SQLITE_CHECKPOINT_MS", default_value_t = 100)]
    pub sqlite_checkpoint_ms: u64,
    /// SQLite only: a commit that leaves the write-ahead log at least this many pages long
    /// checkpoints it itself (SQLite's `wal_autocheckpoint`; its default is 1000): with the
    /// background checkpointer on, only when that falls behind. The log's file keeps the largest
    /// size it reached (4 KiB pages).
    #[arg(
        long,
        env = "CHRONICLE_SQLITE_WAL_AUTOCHECKPOINT",
        default_value_t = 10_000
    )]
    pub sqlite_wal_autocheckpoint: u32,
}

/// How often SQLite syncs its write-ahead log to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SqliteSync {
    /// At checkpoints: durable across a process crash, not always across a power cut.
    #[default]
    Normal,
    /// At every commit.
    Full,
}

/// Everything `serve` needs.
#[derive(Clone, Debug, Args)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "CHRONICLE_BIND", default_value = "127.0.0.1:8000")]
    pub bind: String,
    /// Serve on a non-loopback address in `--auth header` mode, where anyone who can reach the port
    /// can claim any user. Only behind a proxy that authenticates and sets `X-User`.
    #[arg(long, env = "CHRONICLE_INSECURE_BIND")]
    pub insecure_bind: bool,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// Who requests act as.
    #[command(flatten)]
    pub auth: AuthSettings,
    /// The limits.
    #[command(flatten)]
    pub limits: Limits,
    /// The audit trail.
    #[command(flatten)]
    pub audit: AuditSettings,
    /// Scheduled pruning.
    #[command(flatten)]
    pub retention: RetentionSettings,
    /// Access log and metrics.
    #[command(flatten)]
    pub operations: OperationsSettings,
    /// Which browsers' requests are served.
    #[command(flatten)]
    pub http: HttpSettings,
    /// The verifiable log.
    #[command(flatten)]
    pub log: LogSettings,
}

/// The verifiable log: `serve` sequences committed history records into it and signs checkpoints.
#[derive(Clone, Debug, Args)]
pub struct LogSettings {
    /// The Ed25519 private key that signs checkpoints (a PKCS#8 PEM file, or the PEM itself); without
    /// it the log is kept but no checkpoint is signed.
    #[arg(long, env = "CHRONICLE_CHECKPOINT_KEY", hide_env_values = true)]
    pub checkpoint_key: Option<String>,
    /// The log's origin: the first line of every checkpoint and the signature's key name.
    #[arg(long, env = "CHRONICLE_CHECKPOINT_ORIGIN", default_value = "chronicle")]
    pub checkpoint_origin: String,
    /// How often `serve` signs a checkpoint, when the log grew.
    #[arg(long, env = "CHRONICLE_CHECKPOINT_EVERY", default_value = "10m", value_parser = parse_age)]
    pub checkpoint_every: std::time::Duration,
    /// How often `serve` sequences committed history records into the log, in milliseconds (0: never;
    /// another replica, or `chronicle checkpoint`, does it).
    #[arg(long, env = "CHRONICLE_SEQUENCE_EVERY_MS", default_value_t = 1_000)]
    pub sequence_every_ms: u64,
    /// How long after its time a record may commit and still be sequenced without a full sweep (one
    /// runs at start-up and hourly).
    #[arg(long, env = "CHRONICLE_SEQUENCER_WINDOW", default_value = "10m", value_parser = parse_age)]
    pub sequencer_window: std::time::Duration,
    /// Records the sequencer appends per transaction. Smaller holds the transaction (on SQLite the
    /// database's one write lock, which writers then wait for) for less time; larger catches up
    /// faster after a backlog.
    #[arg(long, env = "CHRONICLE_SEQUENCER_BATCH", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub sequencer_batch: u64,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            checkpoint_key: None,
            checkpoint_origin: "chronicle".into(),
            checkpoint_every: std::time::Duration::from_secs(600),
            sequence_every_ms: 1_000,
            sequencer_window: std::time::Duration::from_secs(600),
            sequencer_batch: 1_000,
        }
    }
}

/// What `chronicle migrate` takes.
#[derive(Clone, Debug, Args)]
pub struct MigrateSettings {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// Who the `migrate` event and the data migrations' history name (default: `$USER`).
    #[arg(long, env = "USER")]
    pub actor: Option<String>,
}

/// What `chronicle checkpoint` signs with.
#[derive(Clone, Debug, Args)]
pub struct CheckpointSettings {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// The Ed25519 private key that signs checkpoints (a PKCS#8 PEM file, or the PEM itself).
    #[arg(long, env = "CHRONICLE_CHECKPOINT_KEY", hide_env_values = true)]
    pub checkpoint_key: String,
    /// The log's origin.
    #[arg(long, env = "CHRONICLE_CHECKPOINT_ORIGIN", default_value = "chronicle")]
    pub checkpoint_origin: String,
}

/// A PEM given as a file name, or as the PEM itself.
///
/// # Errors
/// The file cannot be read.
pub fn read_pem(value: &str) -> std::io::Result<String> {
    if value.trim_start().starts_with("-----BEGIN") {
        Ok(value.to_owned())
    } else {
        std::fs::read_to_string(value)
    }
}

/// Which browsers may call the server: its own pages always, other sites' pages only when listed.
#[derive(Clone, Debug, Default, Args)]
pub struct HttpSettings {
    /// Origins (`https://app.example.com`) whose pages may call the API from a browser besides the
    /// server's own (CORS); none by default. A request carrying any other `Origin` is refused.
    #[arg(long, env = "CHRONICLE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Host names the server answers to (the `Host` header). Empty: any host, except that a server
    /// bound to a loopback address answers only to loopback names (`localhost`, `127.0.0.1`, `[::1]`),
    /// so that a web page cannot reach it through DNS rebinding.
    #[arg(long, env = "CHRONICLE_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
}

/// Scheduled pruning: what `chronicle prune` does, run by `serve` every `--prune-every`.
#[derive(Clone, Debug, Args)]
pub struct RetentionSettings {
    /// Prune audit events older than this age (`90d`); no scheduled pruning when unset.
    #[arg(long, env = "CHRONICLE_PRUNE_OLDER_THAN", value_parser = parse_age)]
    pub prune_older_than: Option<std::time::Duration>,
    /// Scheduled pruning also removes old history records (never an object's latest).
    #[arg(long, env = "CHRONICLE_PRUNE_HISTORY")]
    pub prune_history: bool,
    /// How often scheduled pruning runs (first at startup; at most once a second).
    #[arg(long, env = "CHRONICLE_PRUNE_EVERY", default_value = "1h", value_parser = parse_age)]
    pub prune_every: std::time::Duration,
    /// Scheduled pruning archives each run to `chronicle-prune-<time>.ndjson.gz` in this directory
    /// (which must exist).
    #[arg(long, env = "CHRONICLE_PRUNE_ARCHIVE_DIR")]
    pub prune_archive_dir: Option<std::path::PathBuf>,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            prune_older_than: None,
            prune_history: false,
            prune_every: std::time::Duration::from_secs(3_600),
            prune_archive_dir: None,
        }
    }
}

/// What the server tells operators.
#[derive(Clone, Debug, Args)]
pub struct OperationsSettings {
    /// Log one line per request in the combined log format (target `chronicle::access`).
    #[arg(long, env = "CHRONICLE_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    pub access_log: bool,
    /// Serve Prometheus metrics at `/metrics`.
    #[arg(long, env = "CHRONICLE_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub metrics: bool,
}

impl Default for OperationsSettings {
    fn default() -> Self {
        Self {
            access_log: true,
            metrics: true,
        }
    }
}

/// The argument names masked by default (`--audit-mask`'s default, and [`crate::audit::audited`]'s).
pub const DEFAULT_AUDIT_MASK: [&str; 5] =
    ["password", "token", "secret", "apiKey", "authorization"];

/// What the audit trail records.
#[derive(Clone, Debug, Args)]
pub struct AuditSettings {
    /// Argument names whose values are stored as `"***"` (case-insensitive, at any depth).
    #[arg(
        long = "audit-mask",
        env = "CHRONICLE_AUDIT_MASK",
        value_delimiter = ',',
        default_value = "password,token,secret,apiKey,authorization"
    )]
    pub mask: Vec<String>,
    /// Proxies (IP addresses) whose `X-Forwarded-For` names the client; from anyone else it is ignored.
    #[arg(long, env = "CHRONICLE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Lowest level of the log lines kept with a mutation's event: `error`, `warn` or `info`.
    #[arg(long, env = "CHRONICLE_AUDIT_LOG_LEVEL", default_value = "warn")]
    pub audit_log_level: tracing::level_filters::LevelFilter,
    /// A GraphQL request slower than this many milliseconds is recorded as a `PERFORMANCE` event.
    #[arg(long, env = "CHRONICLE_SLOW_REQUEST_MS", default_value_t = 1_000)]
    pub slow_request_ms: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            mask: DEFAULT_AUDIT_MASK.map(String::from).to_vec(),
            trusted_proxies: Vec::new(),
            audit_log_level: tracing::level_filters::LevelFilter::WARN,
            slow_request_ms: 1_000,
        }
    }
}

/// How requests are authenticated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// `X-User` and `X-App` are trusted: local use, or behind an authenticating proxy.
    #[default]
    Header,
    /// Every request carries `Authorization: Bearer <JWT>`; `X-User`/`X-App` are ignored.
    Jwt,
}

/// Authentication settings.
#[derive(Clone, Debug, Args)]
pub struct AuthSettings {
    /// `header` (trust `X-User`/`X-App`) or `jwt` (verify a bearer token).
    #[arg(long = "auth", env = "CHRONICLE_AUTH", value_enum, default_value_t = AuthMode::Header)]
    pub mode: AuthMode,
    /// HS256 secret for `--auth jwt` (use 32 bytes or more: a shorter one is accepted with a warning).
    #[arg(long, env = "CHRONICLE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM file with the RSA (RS256), Ed25519 (EdDSA) or P-256 (ES256) public key for `--auth jwt`.
    #[arg(long, env = "CHRONICLE_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<std::path::PathBuf>,
    /// Required `iss` claim, when set.
    #[arg(long, env = "CHRONICLE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim (one of the token's audiences), when set.
    #[arg(long, env = "CHRONICLE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Seconds of clock skew allowed when checking `exp` and `nbf`.
    #[arg(long, env = "CHRONICLE_JWT_LEEWAY_SECS", default_value_t = 30)]
    pub jwt_leeway_secs: u64,
    /// In `--auth jwt` mode, let requests without a token run queries (never mutations).
    #[arg(long, env = "CHRONICLE_ALLOW_ANONYMOUS_READ")]
    pub allow_anonymous_read: bool,
    /// The public key that signs provenance tokens (Arkitekt's `Rekuest-Task`): a PEM file, or the PEM
    /// itself; Ed25519 (EdDSA), P-256 (ES256) or RSA (RS256), and only that algorithm is accepted.
    /// Without it, a request that carries a token is refused.
    #[arg(long, env = "CHRONICLE_PROVENANCE_PUBLIC_KEY")]
    pub provenance_public_key: Option<String>,
    /// The `iss` provenance tokens must carry (required with a key).
    #[arg(long, env = "CHRONICLE_PROVENANCE_ISSUER")]
    pub provenance_issuer: Option<String>,
    /// This service's name, which a token's `aud` must list (required with a key).
    #[arg(long, env = "CHRONICLE_PROVENANCE_AUDIENCE")]
    pub provenance_audience: Option<String>,
    /// The header a provenance token comes in (`X-` and the same name is read too).
    #[arg(
        long,
        env = "CHRONICLE_PROVENANCE_HEADER",
        default_value = "Rekuest-Task"
    )]
    pub provenance_header: String,
    /// Refuse mutations that carry no provenance token.
    #[arg(long, env = "CHRONICLE_REQUIRE_PROVENANCE")]
    pub require_provenance: bool,
    /// Accept each provenance token once (by default a token may be sent again until it expires, but
    /// its `jti` never by another token).
    #[arg(long, env = "CHRONICLE_PROVENANCE_SINGLE_USE")]
    pub provenance_single_use: bool,
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
    /// Most complex query accepted: fields counted, each list's selection times its page size.
    #[arg(long, env = "CHRONICLE_MAX_QUERY_COMPLEXITY", default_value_t = 20_000)]
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
    /// Most mutation fields one request may run (each is its own transaction).
    #[arg(long, env = "CHRONICLE_MAX_MUTATION_FIELDS", default_value_t = 25)]
    pub max_mutation_fields: usize,
    /// Longest `X-User` / `X-App` value, in characters (at most 200, the width of their columns).
    #[arg(long, env = "CHRONICLE_MAX_IDENTITY_CHARS", default_value_t = 200, value_parser = identity_chars)]
    pub max_identity_chars: usize,
    /// Longest `Authorization` header, in bytes.
    #[arg(long, env = "CHRONICLE_MAX_TOKEN_BYTES", default_value_t = 8 * 1024)]
    pub max_token_bytes: usize,
    /// Most assignations a tree may hold for its totals and for a tree revert (`BAD_INPUT` above).
    #[arg(long, env = "CHRONICLE_MAX_TREE_ASSIGNATIONS", default_value_t = 1_000)]
    pub max_tree_assignations: usize,
    /// Bytes of query text whose parsed documents are kept for the next request with the same text
    /// (least recently used dropped first; a text over a thirty-second of this is never kept, and a
    /// parsed document takes tens of times its text; 0: every request is parsed).
    #[arg(
        long,
        env = "CHRONICLE_PARSED_DOCUMENT_CACHE_BYTES",
        default_value_t = 256 * 1024
    )]
    pub parsed_document_cache_bytes: usize,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            mode: AuthMode::Header,
            jwt_secret: None,
            jwt_public_key: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway_secs: 30,
            allow_anonymous_read: false,
            provenance_public_key: None,
            provenance_issuer: None,
            provenance_audience: None,
            provenance_header: "Rekuest-Task".into(),
            require_provenance: false,
            provenance_single_use: false,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            default_page_size: 20,
            max_page_size: 100,
            max_body_bytes: 2 * 1024 * 1024,
            max_query_depth: 20,
            max_query_complexity: 20_000,
            max_description_chars: 10_000,
            max_reason_chars: 1_000,
            max_mutation_fields: 25,
            max_identity_chars: 200,
            max_token_bytes: 8 * 1024,
            max_tree_assignations: 1_000,
            parsed_document_cache_bytes: 256 * 1024,
        }
    }
}

impl DatabaseSettings {
    /// Settings for `url` with every other value at its default.
    pub fn for_url(url: &str) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            acquire_timeout_secs: 10,
            ping_after_idle_ms: 1_000,
            ping_on_release: false,
            pipeline_begin: true,
            sqlite_synchronous: SqliteSync::Normal,
            sqlite_checkpoint_ms: 100,
            sqlite_wal_autocheckpoint: 10_000,
        }
    }
}

impl Settings {
    /// Settings for `database_url` with every other value at its default and an OS-chosen port on
    /// loopback (what the tests use).
    pub fn for_database(database_url: &str) -> Self {
        Self {
            bind: "127.0.0.1:0".into(),
            insecure_bind: false,
            database: DatabaseSettings::for_url(database_url),
            auth: AuthSettings::default(),
            limits: Limits::default(),
            audit: AuditSettings::default(),
            retention: RetentionSettings::default(),
            operations: OperationsSettings::default(),
            http: HttpSettings::default(),
            log: LogSettings::default(),
        }
    }
}

/// `--max-identity-chars`: 1 to 200, the width of the `actor` and `app` columns.
fn identity_chars(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=200).contains(&n) => Ok(n),
        _ => Err("must be a number from 1 to 200".into()),
    }
}

/// Parses an age: a whole number and a unit, `s`, `m`, `h`, `d` or `w` (`90d`, `12h`).
///
/// # Errors
/// Anything else, with a message saying what is expected.
pub fn parse_age(value: &str) -> Result<std::time::Duration, String> {
    let expected = || format!("`{value}` is not an age like 90d, 12h, 30m, 2w or 45s");
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(expected)?;
    let (number, unit) = value.split_at(split);
    let number: u64 = number.parse().map_err(|_| expected())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(expected()),
    };
    number
        .checked_mul(seconds)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("`{value}` is more than 100 years"))
}

#[cfg(test)]
mod tests {
    use super::parse_age;
    use std::time::Duration;

    #[test]
    fn ages_read_as_a_number_and_a_unit() {
        assert_eq!(parse_age("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_age("0s"), Ok(Duration::ZERO));
        for bad in [
            "",
            "d",
            "90",
            "90 days",
            "-1d",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_age(bad).is_err(), "{bad} should be refused");
        }
    }
}
