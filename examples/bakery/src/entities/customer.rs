//! `customer`: someone who orders.

use sea_orm::entity::prelude::*;

/// A customer.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customer")]
pub struct Model {
    /// Auto-increment key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Their name.
    pub name: String,
    /// Anything worth knowing.
    #[sea_orm(column_type = "Text", nullable)]
    pub notes: Option<String>,
}

/// A customer places orders.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Their orders.
    #[sea_orm(has_many = "super::order::Entity")]
    Order,
}

sea_orm_history::historized!();
