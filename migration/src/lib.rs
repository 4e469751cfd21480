//! Chronicle's schema migrations.
//!
//! # Layout
//! - [`columns`]: column helpers that pick the right type per backend (microsecond timestamps on MySQL).
//! - History tables come from `sea-orm-history`'s helpers (`create_history_table`, one call per
//!   historized table, with its indexes and append-only triggers).
//! - `mYYYYMMDD_NNNNNN_*`: the migrations, in order.

pub use sea_orm_migration::prelude::*;

pub mod columns;
mod m20261123_000001_create_domain_tables;
mod m20261123_000002_create_history_tables;
mod m20261123_000003_protect_history;
mod m20261123_000004_create_audit_events;
mod m20261123_000005_create_prune_anchors;
mod m20261130_000006_adopt_history_library;
mod m20261130_000007_assignation_trees;
mod m20261130_000008_data_migrations;
mod m20261130_000009_trace_context;
mod m20261202_000010_sparse_indexes;
mod m20261202_000011_sparse_root_index;

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_domain_tables::Migration),
            Box::new(m20261123_000002_create_history_tables::Migration),
            Box::new(m20261123_000003_protect_history::Migration),
            Box::new(m20261123_000004_create_audit_events::Migration),
            Box::new(m20261123_000005_create_prune_anchors::Migration),
            Box::new(m20261130_000006_adopt_history_library::Migration),
            Box::new(m20261130_000007_assignation_trees::Migration),
            Box::new(m20261130_000008_data_migrations::Migration),
            Box::new(m20261130_000009_trace_context::Migration),
            Box::new(m20261202_000010_sparse_indexes::Migration),
            Box::new(m20261202_000011_sparse_root_index::Migration),
        ]
    }
}
