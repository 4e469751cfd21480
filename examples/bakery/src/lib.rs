//! The bakery: sea-orm's bakery schema served over GraphQL, every change historized by
//! `sea-orm-history` with nothing but the entities' declarations — the proof that the library is
//! generic (integer and composite keys, decimals, JSON, cascades, `SET NULL`, a key to its own table).
//!
//! - [`entities`]: the schema, each entity with its `historized!` line, and the registry.
//! - [`migration`]: the tables and their history tables.
//! - [`schema`]: the GraphQL API, the history library's queries and revert mutations merged in.
//! - [`app`]: the HTTP server — `POST /graphql`, whose `X-User`, `X-App` and `X-Assignation-Id`
//!   headers say who changes what in which assignation.

pub mod entities;
pub mod migration;
pub mod schema;

use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use sea_orm::{Database, DatabaseConnection, DbErr};
use sea_orm_history::{AssignationId, ChangeContext, EntitySet, HistoryError};
use sea_orm_migration::MigratorTrait;

use entities::HistoryEntity;
use schema::BakerySchema;

/// Why the bakery cannot start.
#[derive(Debug)]
pub enum StartError {
    /// The database.
    Database(DbErr),
    /// The historized entities do not check.
    History(HistoryError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Database(e) => write!(f, "database: {e}"),
            Self::History(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Connects to `url`, migrates it, and builds the router.
///
/// # Errors
/// The database is unreachable, a migration fails, or the registry does not check.
pub async fn app(url: &str) -> Result<(Router, DatabaseConnection), StartError> {
    HistoryEntity::registry().map_err(StartError::History)?;
    let mut options = sea_orm::ConnectOptions::new(url);
    // On SQLite: records chained inside the database, a round trip less per change.
    sea_orm_history::sqlite::install(&mut options);
    let db = Database::connect(options)
        .await
        .map_err(StartError::Database)?;
    migration::Migrator::up(&db, None)
        .await
        .map_err(StartError::Database)?;
    let router = Router::new()
        .route("/graphql", post(graphql))
        .with_state(schema::build(db.clone()));
    Ok((router, db))
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `POST /graphql`: runs the request in the change context its headers name.
async fn graphql(
    State(schema): State<BakerySchema>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let request = request.into_inner();
    let registry = match HistoryEntity::registry() {
        Ok(registry) => registry,
        Err(e) => return async_graphql::Response::from_errors(vec![e.extend_server()]).into(),
    };
    let mut context = match header(&headers, "x-assignation-id") {
        Some(id) => match AssignationId::parse(id) {
            Ok(id) => ChangeContext::new(registry, id),
            Err(e) => return async_graphql::Response::from_errors(vec![e.extend_server()]).into(),
        },
        None => ChangeContext::fresh(registry),
    };
    context.user = header(&headers, "x-user");
    context.app = header(&headers, "x-app");
    schema.execute(request.data(context)).await.into()
}

/// A history error as a server error (for requests refused before they run).
trait ExtendServer {
    fn extend_server(&self) -> async_graphql::ServerError;
}

impl ExtendServer for HistoryError {
    fn extend_server(&self) -> async_graphql::ServerError {
        use async_graphql::ErrorExtensions;
        self.extend()
            .into_server_error(async_graphql::Pos::default())
    }
}
