//! `assignation`: one row per correlation id, created by the first change made under it. It counts the
//! changes (the next step), remembers which entities they touched, who started it, and links reverts.

use sea_orm::entity::prelude::*;

/// An assignation row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "assignation")]
pub struct Model {
    /// The correlation id (client-chosen or a UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The user who started it; only they may add changes to it.
    pub actor: Option<String>,
    /// The app it was started through.
    pub app: Option<String>,
    /// When it was started.
    pub started_at: DateTimeUtc,
    /// How many history records it holds (also the next step).
    pub change_count: i32,
    /// Bits of [`crate::history::HistoryEntity::bit`] for the entities it touched.
    pub entity_mask: i32,
    /// The assignation this one reverted.
    pub reverts: Option<String>,
    /// The assignation that reverted this one.
    pub reverted_by: Option<String>,
}

/// Assignations have no foreign keys: history rows reference them by id.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

/// Assignation rows are written by the history writer and the revert engine only.
impl ActiveModelBehavior for ActiveModel {}
