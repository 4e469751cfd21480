//! Chronicle: a GraphQL server whose every change is history that can be listed and reverted.
//!
//! # Layout
//! - [`config`]: typed settings from CLI flags and `CHRONICLE_*` environment variables.
//! - [`startup`]: [`startup::Application`] (migrate, bind, serve), the router, shutdown.
//! - [`database`]: connecting (pool settings per backend) and migrating.
//! - `http`: the handlers of `/graphql`, `/health`, `/metrics`, and the origin rules every request
//!   passes first.
//! - [`error`]: [`error::AppError`], the one error type, mapped to the API's `extensions.code`.
//! - [`audit`]: the audit trail: the event writer (also a Rust API), masking, log capture, queries.
//! - [`auth`]: who a request acts as (header or JWT mode) and what it may do.
//! - [`commands`]: command-line tasks besides `serve` (`migrate`, `verify`, `checkpoint`, `export`,
//!   `prune`, `token`).
//! - [`data_migrations`]: changes to historized rows that ship with a release, each run once under an
//!   assignation named after it.
//! - [`export`]: history and events as NDJSON or CSV, streamed, each export an `EXPORT` event.
//! - [`context`]: the request's principal and assignation, carried to the history hooks.
//! - [`graphql`]: the schema, one file per entity, history types, the context extension.
//! - [`service`]: the work behind the resolvers, each mutation in one transaction.
//! - [`telemetry`]: the `tracing` subscriber (text or JSON), with the layer that captures a mutation's
//!   log lines.
//! - [`operations`]: what operators read: the access log and the Prometheus metrics at `/metrics`.
//! - [`retention`]: pruning old audit events and history, with an archive.
//! - [`ui`]: the history browser at `/ui`, static assets embedded in the binary.
//!
//! History itself — capture, reading, revert, verification, retention of records — is the
//! `sea-orm-history` library, used as any application would use it; the entities, each historized by
//! one declaration, live in the `entity` crate, the schema's migrations in `migration`.

pub mod audit;
pub(crate) mod auth;
pub mod commands;
pub mod config;
pub(crate) mod context;
pub mod data_migrations;
pub mod database;
pub(crate) mod error;
pub mod export;
pub mod graphql;
pub(crate) mod http;
pub(crate) mod operations;
pub(crate) mod retention;
pub mod service;
pub mod startup;
pub mod telemetry;
pub(crate) mod ui;
