//! `lineitem`: one cake of an order.

use sea_orm::entity::prelude::*;

/// A line item.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "lineitem")]
pub struct Model {
    /// Auto-increment key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The price of one.
    #[sea_orm(column_type = "Decimal(Some((16, 4)))")]
    pub price: Decimal,
    /// How many.
    pub quantity: i32,
    /// The order.
    pub order_id: i32,
    /// The cake.
    pub cake_id: i32,
}

/// A line item belongs to an order and names a cake.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The order.
    #[sea_orm(
        belongs_to = "super::order::Entity",
        from = "Column::OrderId",
        to = "super::order::Column::Id",
        on_delete = "Cascade",
        on_update = "Cascade"
    )]
    Order,
    /// The cake.
    #[sea_orm(
        belongs_to = "super::cake::Entity",
        from = "Column::CakeId",
        to = "super::cake::Column::Id",
        on_delete = "Cascade",
        on_update = "Cascade"
    )]
    Cake,
}

impl Related<super::order::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Order.def()
    }
}

impl Related<super::cake::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Cake.def()
    }
}

sea_orm_history::historized!(scope = Relation::Order);
