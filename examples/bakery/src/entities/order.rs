//! `order`: a customer's order at a bakery (a table named after an SQL keyword).

use sea_orm::entity::prelude::*;

/// An order.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "order")]
pub struct Model {
    /// Auto-increment key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// What it costs.
    #[sea_orm(column_type = "Decimal(Some((16, 4)))")]
    pub total: Decimal,
    /// The bakery.
    pub bakery_id: i32,
    /// The customer.
    pub customer_id: i32,
    /// When it was placed (local time, no zone).
    pub placed_at: DateTime,
}

/// An order belongs to a bakery and a customer, and has line items.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The bakery (its orders go when it closes).
    #[sea_orm(
        belongs_to = "super::bakery::Entity",
        from = "Column::BakeryId",
        to = "super::bakery::Column::Id",
        on_delete = "Cascade",
        on_update = "Cascade"
    )]
    Bakery,
    /// The customer.
    #[sea_orm(
        belongs_to = "super::customer::Entity",
        from = "Column::CustomerId",
        to = "super::customer::Column::Id",
        on_delete = "Cascade",
        on_update = "Cascade"
    )]
    Customer,
    /// Its line items.
    #[sea_orm(has_many = "super::lineitem::Entity")]
    Lineitem,
}

impl Related<super::bakery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Bakery.def()
    }
}

impl Related<super::customer::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Customer.def()
    }
}

sea_orm_history::historized!(scope = Relation::Bakery);
