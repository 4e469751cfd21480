//! `baker`: a baker of a bakery, with a manager who is a baker too.

use sea_orm::entity::prelude::*;

/// A baker.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "baker")]
pub struct Model {
    /// Auto-increment key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Their name.
    pub name: String,
    /// How to reach them.
    pub contact_details: Json,
    /// Where they work (none after the bakery closed).
    pub bakery_id: Option<i32>,
    /// Who manages them.
    pub manager_id: Option<i32>,
}

/// A baker works in a bakery and may have a manager.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The bakery (a baker stays when it closes).
    #[sea_orm(
        belongs_to = "super::bakery::Entity",
        from = "Column::BakeryId",
        to = "super::bakery::Column::Id",
        on_delete = "SetNull",
        on_update = "Cascade"
    )]
    Bakery,
    /// The manager (their reports stay when they leave).
    #[sea_orm(
        belongs_to = "Entity",
        from = "Column::ManagerId",
        to = "Column::Id",
        on_delete = "SetNull"
    )]
    Manager,
}

impl Related<super::bakery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Bakery.def()
    }
}

sea_orm_history::historized!(scope = Relation::Bakery);
