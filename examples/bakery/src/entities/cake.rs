//! `cake`: a cake of a bakery; names are unique.

use sea_orm::entity::prelude::*;

/// A cake.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "cake")]
pub struct Model {
    /// Auto-increment key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Unique.
    #[sea_orm(unique)]
    pub name: String,
    /// Its price.
    #[sea_orm(column_type = "Decimal(Some((16, 4)))")]
    pub price: Decimal,
    /// The bakery that makes it.
    pub bakery_id: Option<i32>,
    /// Whether it is gluten free.
    pub gluten_free: bool,
    /// Its serial number.
    pub serial: Uuid,
}

/// A cake belongs to a bakery and has bakers (through `cakes_bakers`) and line items.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The bakery (its cakes go when it closes).
    #[sea_orm(
        belongs_to = "super::bakery::Entity",
        from = "Column::BakeryId",
        to = "super::bakery::Column::Id",
        on_delete = "Cascade",
        on_update = "Cascade"
    )]
    Bakery,
    /// Its links to bakers.
    #[sea_orm(has_many = "super::cakes_bakers::Entity")]
    CakesBakers,
    /// Its line items.
    #[sea_orm(has_many = "super::lineitem::Entity")]
    Lineitem,
}

impl Related<super::bakery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Bakery.def()
    }
}

sea_orm_history::historized!(scope = Relation::Bakery);
