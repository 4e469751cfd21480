//! `history_prune_anchor`: for each object whose oldest history records were pruned, the version and
//! hash of the last record removed. Hash-chain verification of the object starts from it.

use sea_orm::entity::prelude::*;

/// An anchor row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "history_prune_anchor")]
pub struct Model {
    /// The entity (`crate::history::HistoryEntity::as_str`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub entity: String,
    /// The object.
    #[sea_orm(primary_key, auto_increment = false)]
    pub object_id: String,
    /// The last version removed: the object's first remaining record is the next one.
    pub version: i32,
    /// The hash of the last record removed, which the next record chains to.
    pub hash: String,
    /// When it was pruned.
    pub pruned_at: DateTimeUtc,
}

/// Anchors reference objects by id only.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

/// Written by the retention command only.
impl ActiveModelBehavior for ActiveModel {}
