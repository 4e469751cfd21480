//! The bakery's one migration: its tables, from the entities, then with `sea-orm-history`'s helpers
//! the library's own tables and a history table for each entity.

use sea_orm::{EntityTrait, Schema};
use sea_orm_migration::prelude::*;

use crate::entities::{baker, bakery, cake, cakes_bakers, customer, lineitem, order};

/// The bakery's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateBakery)]
    }
}

/// Creates every table.
struct CreateBakery;

impl MigrationName for CreateBakery {
    fn name(&self) -> &str {
        "m20261130_000001_create_bakery"
    }
}

async fn table<E: EntityTrait>(manager: &SchemaManager<'_>, entity: E) -> Result<(), DbErr> {
    let schema = Schema::new(manager.get_database_backend());
    manager
        .create_table(schema.create_table_from_entity(entity))
        .await?;
    sea_orm_history::migration::create_history_table(manager, entity.table_name()).await
}

#[async_trait::async_trait]
impl MigrationTrait for CreateBakery {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sea_orm_history::migration::create_history_support(manager).await?;
        table(manager, bakery::Entity).await?;
        table(manager, customer::Entity).await?;
        table(manager, baker::Entity).await?;
        table(manager, cake::Entity).await?;
        table(manager, cakes_bakers::Entity).await?;
        table(manager, order::Entity).await?;
        table(manager, lineitem::Entity).await
    }
}
