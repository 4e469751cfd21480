//! The running server: [`Application::build`] connects to and migrates the database and binds the
//! listener (port 0 in tests); [`router`] wires `/graphql`, `/health`; shutdown is graceful on SIGTERM
//! and Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use async_graphql::http::GraphiQLSource;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;

use crate::config::{DatabaseSettings, Settings};
use crate::context::RequestContext;
use crate::error::AppError;
use crate::graphql::{AppSchema, build_schema};

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
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The GraphQL schema, with the database in its data.
    pub schema: AppSchema,
    /// The database, for `/health`.
    pub db: DatabaseConnection,
}

/// A server bound to its address, ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
    db: DatabaseConnection,
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
    Database::connect(options).await
}

/// Connects to the database of `settings` and applies pending migrations.
///
/// # Errors
/// The database is unreachable or a migration fails.
pub async fn connect_and_migrate(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let db = connect(settings).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}

impl Application {
    /// Connects, migrates and binds.
    ///
    /// # Errors
    /// See [`StartupError`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
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
        let schema = build_schema(db.clone(), settings.limits.clone());
        let state = AppState {
            schema,
            db: db.clone(),
        };
        let router = router(state, settings.limits.max_body_bytes);
        Ok(Self {
            listener,
            router,
            addr,
            db,
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
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        self.db.close_by_ref().await.ok();
        Ok(())
    }
}

/// The HTTP routes.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/health", get(health))
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .with_state(state)
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

async fn graphql(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let context = match RequestContext::from_headers(&headers) {
        Ok(context) => context,
        Err(e) => return refuse(StatusCode::OK, &e),
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let error = AppError::BadInput(format!("the body is not a GraphQL request: {e}"));
            return with_assignation(refuse(StatusCode::BAD_REQUEST, &error), &context);
        }
    };
    let mut response = state.schema.execute(request.data(context.clone())).await;
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", code_of_unclassified(&error.message));
        }
    }
    let body = match serde_json::to_string(&response) {
        Ok(body) => body,
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                &AppError::internal(format!("serializing a response: {e}")),
            );
        }
    };
    let response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    with_assignation(response, &context)
}

/// The code of an error async-graphql raised itself (parsing, validation, limits).
fn code_of_unclassified(message: &str) -> &'static str {
    if message.contains("nested too deep") || message.contains("too complex") {
        "LIMIT_EXCEEDED"
    } else {
        "BAD_INPUT"
    }
}

fn with_assignation(mut response: Response, context: &RequestContext) -> Response {
    if let Ok(value) = HeaderValue::from_str(&context.assignation_id) {
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
