//! The API test binary: every test spawns the real server on port 0 against a fresh database and talks
//! to it over HTTP, then checks what the database holds. Each test runs on SQLite, and on PostgreSQL
//! and MariaDB when `CHRONICLE_TEST_POSTGRES_URL` / `CHRONICLE_TEST_MYSQL_URL` are set.

// A failed expectation is how a test fails: panicking on it is the point here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod helpers;

mod assignations;
mod audit;
mod auth;
mod bench;
mod capture;
mod crash;
mod docs;
mod domain;
mod export;
mod fuzz;
mod history;
mod integrity;
mod limits;
mod log;
mod model;
mod operations;
mod provenance;
mod replicas;
mod retention;
mod revert;
mod round_trips;
mod schema;
mod scripts;
mod trace;
mod transport;
