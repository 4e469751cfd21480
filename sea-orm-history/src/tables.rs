//! The library's own tables: [`assignation`] (one row per assignation) and [`prune_anchor`] (where
//! hash-chain verification resumes after old history was pruned). Create them with
//! `migration::create_history_support` (feature `migration`).

/// `assignation`: one row per assignation id, created by its first change. It counts the changes
/// (the next step), says who started it, and links reverts.
pub mod assignation {
    use sea_orm::entity::prelude::*;

    /// An assignation row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "assignation")]
    pub struct Model {
        /// The assignation id (client-chosen, or a UUIDv7).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// The user who started it; only they may add changes to it.
        pub actor: Option<String>,
        /// The app it was started through.
        pub app: Option<String>,
        /// When it was started.
        pub started_at: DateTimeUtc,
        /// How many history records it holds (also its next step).
        pub change_count: i32,
        /// The assignation this one reverted.
        pub reverts: Option<String>,
        /// The assignation that reverted this one.
        pub reverted_by: Option<String>,
    }

    /// Assignations are referenced by id from history records; they have no foreign keys.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    /// Written by the history writer and the revert engine only.
    impl ActiveModelBehavior for ActiveModel {}
}

/// `history_prune_anchor`: for each object whose oldest history records were pruned, the version and
/// hash of the last record removed. Verification of the object's chain starts from it.
pub mod prune_anchor {
    use sea_orm::entity::prelude::*;

    /// An anchor row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "history_prune_anchor")]
    pub struct Model {
        /// The entity's name.
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

    /// Written by retention only.
    impl ActiveModelBehavior for ActiveModel {}
}
