//! The running server: [`Application::build`] connects to and migrates the database, sets up
//! authentication and metrics and binds the listener (port 0 in tests); [`router`] wires `/graphql`,
//! `/health`, `/metrics` and the history browser at `/ui`, observes every request (access log, metrics) and turns a panic into a
//! JSON `INTERNAL` answer; [`Application::run_until_stopped`] also runs scheduled pruning; shutdown is
//! graceful on SIGTERM and Ctrl-C.
//!
//! The `/graphql` handler refuses, before anything runs: an oversized body (413), a malformed
//! `X-Assignation-Id`, refused credentials, and a body that is not a GraphQL request (400). Every
//! refusal is a JSON body with `errors[].extensions.code`.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::GraphiQLSource;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Router, middleware};
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::audit::{AuditKind, NewEvent};
use crate::auth::Authenticator;
use crate::auth::jwt::KeyError;
use crate::config::{AuthMode, DatabaseSettings, Limits, RetentionSettings, Settings, SqliteSync};
use crate::context::{self, RequestContext};
use crate::error::AppError;
use crate::graphql::extension::{RequestVariables, SelectedOperation, expanded_nodes};
use crate::graphql::{AppSchema, build_schema};
use crate::operations::access::{AccessUser, Observer, observe};
use crate::operations::metrics::Metrics;
use crate::operations::schedule;

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
    /// The metrics registry could not be set up.
    #[error("metrics: {0}")]
    Metrics(String),
    /// The retention settings cannot be used.
    #[error("retention: {0}")]
    Retention(String),
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
    /// The request limits.
    pub limits: Limits,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
    /// The metrics, when `/metrics` is on.
    pub metrics: Option<Arc<Metrics>>,
    /// Whether requests are written to the access log.
    pub access_log: bool,
}

/// A server bound to its address, ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
    db: DatabaseConnection,
    database: DatabaseSettings,
    retention: RetentionSettings,
}

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
    let synchronous = match settings.sqlite_synchronous {
        SqliteSync::Normal => SqliteSynchronous::Normal,
        SqliteSync::Full => SqliteSynchronous::Full,
    };
    // SQLite: write-ahead log (readers never block the writer, one fsync per checkpoint rather than per
    // commit with `normal`), and a wait instead of `database is locked` when another process writes.
    options.map_sqlx_sqlite_opts(move |sqlite| {
        sqlite
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(30))
    });
    // MySQL: READ COMMITTED, as PostgreSQL's default. Each statement then reads the latest committed
    // rows without locking reads, and InnoDB takes no gap locks, which under REPEATABLE READ made
    // concurrent history writers of different objects deadlock.
    options.map_sqlx_mysql_pool_opts(|pool| {
        pool.after_connect(|connection, _| {
            Box::pin(async move {
                use sea_orm::sqlx::Executor;
                connection
                    .execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    .await
                    .map(|_| ())
            })
        })
    });
    Database::connect(options).await
}

/// Connects to the database of `settings` and applies pending migrations.
///
/// # Errors
/// The database is unreachable or a migration fails.
pub async fn connect_and_migrate(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    // Serving or migrating may create the SQLite file (`mode=rwc`) when the URL does not say.
    let mut settings = settings.clone();
    if settings.url.starts_with("sqlite:") && !settings.url.contains("mode=") {
        let separator = if settings.url.contains('?') { '&' } else { '?' };
        settings.url = format!("{}{separator}mode=rwc", settings.url);
    }
    let db = connect(&settings).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
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

impl Application {
    /// Connects, migrates and binds.
    ///
    /// # Errors
    /// See [`StartupError`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let authenticator = Authenticator::from_settings(&settings.auth, &settings.limits)?;
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
        let state = AppState {
            schema,
            db: db.clone(),
            authenticator: Arc::new(authenticator),
            limits: settings.limits.clone(),
            trusted_proxies: Arc::new(settings.audit.trusted_proxies.clone()),
            metrics,
            access_log: settings.operations.access_log,
        };
        let router = router(state);
        Ok(Self {
            listener,
            router,
            addr,
            db,
            database: settings.database,
            retention: settings.retention,
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
        let pruning = schedule::spawn(self.db.clone(), self.database, self.retention);
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await;
        if let Some(pruning) = pruning {
            pruning.abort();
        }
        self.db.close_by_ref().await.ok();
        served
    }
}

/// The HTTP routes, each observed (access log, metrics).
pub fn router(state: AppState) -> Router {
    let observer = Observer {
        metrics: state.metrics.clone(),
        access_log: state.access_log,
        trusted_proxies: state.trusted_proxies.clone(),
    };
    let mut router = Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/health", get(health))
        .merge(crate::ui::routes());
    if state.metrics.is_some() {
        router = router.route("/metrics", get(metrics));
    }
    router
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(observer, observe))
        .with_state(state)
}

/// The Prometheus text exposition of the server's metrics.
async fn metrics(State(state): State<AppState>) -> Response {
    let body = state
        .metrics
        .as_ref()
        .map(|m| m.render())
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// A panic anywhere in a handler: logged, answered with `INTERNAL`; the server keeps serving.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = crate::audit::panic_message(panic.as_ref());
    tracing::error!(panic = message, "a request panicked");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        &AppError::internal(message),
    )
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

async fn health(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// A GraphQL-shaped error body for requests refused before execution.
fn refuse(status: StatusCode, error: &AppError) -> Response {
    let body = serde_json::json!({
        "data": null,
        "errors": [{"message": error.to_string(), "extensions": {"code": error.code()}}],
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn graphql(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = context::client_ip(peer, &headers, &state.trusted_proxies);
    let refusal = Refusal {
        db: &state.db,
        ip: ip.clone(),
        user_agent: context::user_agent(&headers),
    };
    let assignation_id = match context::assignation_id(&headers) {
        Ok(id) => id,
        Err(e) => return refusal.answer(StatusCode::OK, &e, None).await,
    };
    let max_body = state.limits.max_body_bytes;
    let too_large =
        || AppError::LimitExceeded(format!("the request body may not exceed {max_body} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return refusal
            .answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                &too_large(),
                Some(&assignation_id),
            )
            .await;
    }
    let mut context = match RequestContext::from_headers(
        &state.authenticator,
        &headers,
        assignation_id.clone(),
    ) {
        Ok(context) => context,
        Err(e) => {
            return refusal
                .answer(StatusCode::OK, &e, Some(&assignation_id))
                .await;
        }
    };
    context.ip = ip;
    context.user_agent = refusal.user_agent.clone();
    let body = match axum::body::to_bytes(body, max_body).await {
        Ok(body) => body,
        Err(e) => {
            tracing::debug!(error = %e, "request body refused");
            return refusal
                .answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &too_large(),
                    Some(&assignation_id),
                )
                .await;
        }
    };
    let mut request = match graphql_request(&body) {
        Ok(request) => request,
        Err(e) => {
            return refusal
                .answer(StatusCode::BAD_REQUEST, &e, Some(&assignation_id))
                .await;
        }
    };
    // Parsed once here (async-graphql reuses it), to refuse fragment blow-ups before its own checks
    // expand them.
    let refused = match request.parsed_query() {
        Err(e) => Some((
            StatusCode::BAD_REQUEST,
            AppError::BadInput(format!("the query does not parse: {}", e.message)),
        )),
        Ok(document) if expanded_nodes(document) > state.limits.max_query_complexity => Some((
            StatusCode::OK,
            AppError::LimitExceeded(format!(
                "the query expands to more than {} fields",
                state.limits.max_query_complexity
            )),
        )),
        Ok(_) => None,
    };
    if let Some((status, e)) = refused {
        return refusal.answer(status, &e, Some(&assignation_id)).await;
    }
    let selected = SelectedOperation(request.operation_name.clone());
    let variables = RequestVariables(request.variables.clone());
    let user = context.principal.user.clone();
    let mut response = state
        .schema
        .execute(request.data(context).data(selected).data(variables))
        .await;
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", code_of_unclassified(&error.message));
        }
    }
    // Refused before anything ran (parse, validation, limits): a malformed request.
    let refused_whole = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let status = if refused_whole {
        let message = response
            .errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let mut event = NewEvent::new(AuditKind::Security, "refused_query").failed(message);
        event.user = user.clone();
        refusal.record(event, Some(&assignation_id)).await;
        let malformed = response.errors.iter().all(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .is_some_and(|c| *c == async_graphql::Value::from("BAD_INPUT"))
        });
        if malformed {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        }
    } else {
        StatusCode::OK
    };
    let body = match serde_json::to_string(&response) {
        Ok(body) => body,
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                &AppError::internal(format!("serializing a response: {e}")),
            );
        }
    };
    let mut response = with_assignation(
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        &assignation_id,
    );
    if let Some(user) = user {
        response.extensions_mut().insert(AccessUser(user));
    }
    response
}

/// Answers requests refused before execution, and records each refusal as an audit event:
/// `LOGIN_FAILED` for refused credentials (with the reason, never the token), `SECURITY` otherwise.
struct Refusal<'a> {
    db: &'a DatabaseConnection,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl Refusal<'_> {
    async fn record(&self, mut event: NewEvent, assignation_id: Option<&str>) {
        event.ip = self.ip.clone();
        event.user_agent = self.user_agent.clone();
        event.assignation_id = assignation_id.map(str::to_owned);
        if let Err(e) = crate::audit::record(self.db, event).await {
            tracing::error!(error = %e, "cannot write the audit event");
        }
    }

    async fn answer(
        &self,
        status: StatusCode,
        error: &AppError,
        assignation_id: Option<&str>,
    ) -> Response {
        let event = match error {
            AppError::Unauthenticated(reason) => {
                NewEvent::new(AuditKind::LoginFailed, "authenticate")
                    .failed(format!("{}: {error}", error.code()))
                    .details(serde_json::json!({ "reason": reason }))
            }
            _ => NewEvent::new(AuditKind::Security, "refused_request")
                .failed(format!("{}: {error}", error.code())),
        };
        self.record(event, assignation_id).await;
        let mut response = refuse(status, error);
        if matches!(error, AppError::Unauthenticated(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        match assignation_id {
            Some(id) => with_assignation(response, id),
            None => response,
        }
    }
}

/// The body as a GraphQL request: a JSON object with a `query` string, optional `variables` (an
/// object) and `operationName`.
fn graphql_request(body: &[u8]) -> Result<async_graphql::Request, AppError> {
    let bad = |why: &str| AppError::BadInput(format!("the body is not a GraphQL request: {why}"));
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(bad("expected a JSON object"));
    };
    if !object
        .get("query")
        .is_some_and(serde_json::Value::is_string)
    {
        return Err(bad("`query` must be a string"));
    }
    if object
        .get("variables")
        .is_some_and(|v| !v.is_object() && !v.is_null())
    {
        return Err(bad("`variables` must be an object"));
    }
    serde_json::from_value(value).map_err(|e| bad(&e.to_string()))
}

/// The code of an error async-graphql raised itself (parsing, validation, limits).
fn code_of_unclassified(message: &str) -> &'static str {
    if message.contains("nested too deep")
        || message.contains("too complex")
        || message.starts_with("The recursion depth of the query cannot be greater than")
    {
        "LIMIT_EXCEEDED"
    } else {
        "BAD_INPUT"
    }
}

fn with_assignation(mut response: Response, assignation_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(assignation_id) {
        response.headers_mut().insert("x-assignation-id", value);
    }
    response
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
