//! `cakes_bakers`: which baker bakes which cake (a composite key).

use sea_orm::entity::prelude::*;

/// A link between a cake and a baker.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cakes_bakers")]
pub struct Model {
    /// The cake.
    #[sea_orm(primary_key, auto_increment = false)]
    pub cake_id: i32,
    /// The baker.
    #[sea_orm(primary_key, auto_increment = false)]
    pub baker_id: i32,
}

/// A link belongs to a cake and a baker.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The cake.
    #[sea_orm(
        belongs_to = "super::cake::Entity",
        from = "Column::CakeId",
        to = "super::cake::Column::Id",
        on_delete = "Cascade",
        on_update = "Cascade"
    )]
    Cake,
    /// The baker.
    #[sea_orm(
        belongs_to = "super::baker::Entity",
        from = "Column::BakerId",
        to = "super::baker::Column::Id",
        on_delete = "Cascade",
        on_update = "Cascade"
    )]
    Baker,
}

impl Related<super::cake::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Cake.def()
    }
}

impl Related<super::baker::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Baker.def()
    }
}

sea_orm_history::historized!(scope = Relation::Cake);
