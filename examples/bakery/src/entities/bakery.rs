//! `bakery`: a bakery, with bakers, cakes and orders.

use sea_orm::entity::prelude::*;

/// A bakery.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "bakery")]
pub struct Model {
    /// Auto-increment key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Its name.
    pub name: String,
    /// Its profit margin.
    pub profit_margin: f64,
}

/// A bakery has bakers, cakes and orders.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Its bakers.
    #[sea_orm(has_many = "super::baker::Entity")]
    Baker,
    /// Its cakes.
    #[sea_orm(has_many = "super::cake::Entity")]
    Cake,
    /// Its orders.
    #[sea_orm(has_many = "super::order::Entity")]
    Order,
}

sea_orm_history::historized!(scope_root = true);
