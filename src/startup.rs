//! The running server: [`Application::build`] connects to and migrates the database, sets up
//! authentication, metrics and the origin rules, and binds the listener (port 0 in tests); [`router`]
//! wires the routes (handlers in `crate::http`, the history browser in `crate::ui`), refuses other
//! sites' pages first, observes every request (access log, metrics) and turns a panic into a JSON
//! `INTERNAL` answer; [`Application::run_until_stopped`] also runs scheduled pruning; shutdown is
//! graceful on SIGTERM and Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::{Router, middleware};
use entity::HistoryEntity;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_history::{EntitySet, Registry};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth::Authenticator;
use crate::auth::jwt::KeyError;
use crate::auth::provenance::ProvenancePolicy;
use crate::config::{AuthMode, DatabaseSettings, Limits, RetentionSettings, Settings};
use crate::database::connect_and_migrate;
use crate::graphql::{AppSchema, build_schema};
use crate::http::origin::{BadOrigin, OriginPolicy};
use crate::operations::access::{Observer, observe};
use crate::operations::metrics::Metrics;
use crate::operations::schedule;
use sea_orm_history::log::CheckpointKey;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be reached or migrated.
    #[error("database: {0}")]
    Database(#[from] DbErr),
    /// The address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Header auth on an address others can reach.
    #[error(
        "refusing to serve --auth header on {0}, where anyone could claim any user: bind to \
         127.0.0.1, use --auth jwt, or pass --insecure-bind behind an authenticating proxy"
    )]
    InsecureBind(SocketAddr),
    /// The jwt settings cannot be used.
    #[error("auth: {0}")]
    Auth(#[from] KeyError),
    /// The log's settings cannot be used.
    #[error("log: {0}")]
    Log(String),
    /// The provenance settings cannot be used.
    #[error("provenance: {0}")]
    Provenance(#[from] crate::auth::provenance::ProvenanceKeyError),
    /// The metrics registry could not be set up.
    #[error("metrics: {0}")]
    Metrics(String),
    /// The retention settings cannot be used.
    #[error("retention: {0}")]
    Retention(String),
    /// The origin settings cannot be used.
    #[error(transparent)]
    Origin(#[from] BadOrigin),
    /// The historized entities do not check (a forgotten registration, …).
    #[error(transparent)]
    History(#[from] sea_orm_history::HistoryError),
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The GraphQL schema, with the database in its data.
    pub schema: AppSchema,
    /// The database, for `/health`.
    pub db: DatabaseConnection,
    /// Establishes who each request acts as.
    pub authenticator: Arc<Authenticator>,
    /// Verifies provenance tokens.
    pub provenance: Arc<ProvenancePolicy>,
    /// A GraphQL request slower than this is a `PERFORMANCE` event.
    pub slow_request: std::time::Duration,
    /// The request limits.
    pub limits: Limits,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
    /// The metrics, when `/metrics` is on.
    pub metrics: Option<Arc<Metrics>>,
    /// Whether requests are written to the access log.
    pub access_log: bool,
    /// Which pages and hosts are served.
    pub(crate) origins: Arc<OriginPolicy>,
    /// The historized entities.
    pub registry: &'static Registry,
    /// The parsed GraphQL documents kept for the next request with the same text.
    pub(crate) documents: Arc<crate::http::documents::DocumentCache>,
}

/// A server bound to its address, ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
    db: DatabaseConnection,
    database: DatabaseSettings,
    retention: RetentionSettings,
    log: crate::config::LogSettings,
    checkpoint_key: Option<Arc<CheckpointKey>>,
    registry: &'static sea_orm_history::Registry,
}

impl Application {
    /// Connects, migrates and binds.
    ///
    /// # Errors
    /// See [`StartupError`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let registry = HistoryEntity::registry()?;
        let authenticator = Authenticator::from_settings(&settings.auth, &settings.limits)?;
        let provenance =
            ProvenancePolicy::from_settings(&settings.auth, settings.limits.max_identity_chars)?;
        let checkpoint_key = match &settings.log.checkpoint_key {
            None => None,
            Some(value) => {
                let pem = crate::config::read_pem(value)
                    .map_err(|e| StartupError::Log(format!("reading --checkpoint-key: {e}")))?;
                let key = CheckpointKey::from_pem(&pem, &settings.log.checkpoint_origin)
                    .map_err(|e| StartupError::Log(e.to_string()))?;
                Some(Arc::new(key))
            }
        };
        if let Some(dir) = &settings.retention.prune_archive_dir
            && !dir.is_dir()
        {
            return Err(StartupError::Retention(format!(
                "--prune-archive-dir {} is not a directory",
                dir.display()
            )));
        }
        if settings.retention.prune_history && settings.retention.prune_older_than.is_none() {
            tracing::warn!("--prune-history has no effect without --prune-older-than");
        }
        let db = connect_and_migrate(&settings.database).await?;
        let listener =
            TcpListener::bind(&settings.bind)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: settings.bind.clone(),
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.bind.clone(),
            source,
        })?;
        if settings.auth.mode == AuthMode::Header
            && !settings.insecure_bind
            && !addr.ip().is_loopback()
        {
            return Err(StartupError::InsecureBind(addr));
        }
        let metrics = if settings.operations.metrics {
            Some(Arc::new(
                Metrics::new().map_err(|e| StartupError::Metrics(e.to_string()))?,
            ))
        } else {
            None
        };
        let schema = build_schema(
            db.clone(),
            settings.limits.clone(),
            settings.audit.clone(),
            metrics.clone(),
        );
        let origins = OriginPolicy::new(&settings.http, addr.ip())?;
        let state = AppState {
            schema,
            db: db.clone(),
            authenticator: Arc::new(authenticator),
            provenance: Arc::new(provenance),
            slow_request: std::time::Duration::from_millis(settings.audit.slow_request_ms),
            limits: settings.limits.clone(),
            trusted_proxies: Arc::new(settings.audit.trusted_proxies.clone()),
            metrics,
            access_log: settings.operations.access_log,
            origins: Arc::new(origins),
            registry,
            documents: Arc::new(crate::http::documents::DocumentCache::new(
                settings.limits.parsed_document_cache_bytes,
            )),
        };
        let router = router(state);
        Ok(Self {
            listener,
            router,
            addr,
            db,
            database: settings.database,
            retention: settings.retention,
            log: settings.log,
            checkpoint_key,
            registry,
        })
    }

    /// The bound port (the one the OS chose for port 0).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The database connection the server uses.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes the requests in flight.
    ///
    /// # Errors
    /// I/O errors of the listener.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(addr = %self.addr, "chronicle listening");
        let checkpointing = crate::database::spawn_sqlite_checkpointer(&self.database);
        let pruning = schedule::spawn(self.db.clone(), self.database, self.retention);
        let sequencing = crate::operations::sequencer::spawn(
            self.db.clone(),
            self.registry,
            self.log,
            self.checkpoint_key,
        );
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await;
        for task in [pruning, sequencing, checkpointing].into_iter().flatten() {
            task.abort();
        }
        self.db.close_by_ref().await.ok();
        served
    }
}

/// The HTTP routes, each observed (access log, metrics) after the origin rules let it through.
pub fn router(state: AppState) -> Router {
    let observer = Observer {
        metrics: state.metrics.clone(),
        access_log: state.access_log,
        trusted_proxies: state.trusted_proxies.clone(),
    };
    let mut router = Router::new()
        .route("/", get(crate::http::root))
        .route(
            "/graphql",
            get(crate::http::graphql::get).post(crate::http::graphql::post),
        )
        .route("/health", get(crate::http::health))
        .route("/log/checkpoint", get(crate::http::checkpoint))
        .route("/export/history", get(crate::export::http::history))
        .route("/export/events", get(crate::export::http::events))
        .merge(crate::ui::routes())
        .merge(crate::ui::graphiql::routes());
    if state.metrics.is_some() {
        router = router.route("/metrics", get(crate::http::metrics));
    }
    if let Some(cors) = state.origins.cors_layer() {
        router = router.layer(cors);
    }
    router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::http::guard,
        ))
        .layer(CatchPanicLayer::custom(crate::http::panic_response))
        .layer(middleware::from_fn_with_state(observer, observe))
        .layer(middleware::from_fn(crate::operations::trace::trace))
        .with_state(state)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
