//! The library's own tables: [`assignation`] (one row per assignation) and [`prune_anchor`] (where
//! hash-chain verification resumes after old history was pruned). Create them with
//! `migration::create_history_support` (feature `migration`).

/// `assignation`: one row per assignation id, created by its first change. It counts the changes
/// (the next step), says who started it and for whom, links reverts, and places it in its tree
/// (parent and root).
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
        /// The assignation that started this one, when it runs inside a tree (it may live in another
        /// service, so it need not be a row here).
        pub parent_id: Option<String>,
        /// The top of its tree: its own id at a root (empty only on rows written before trees).
        pub root_id: Option<String>,
        /// The human on whose behalf the whole tree runs (a provenance token's `rcb`; else the user
        /// who started the root).
        pub on_behalf_of: Option<String>,
        /// The hash of the arguments that started it (a provenance token's `ahs`).
        pub args_hash: Option<String>,
        /// How those arguments were canonicalized before hashing (`aha`).
        pub args_hash_alg: Option<String>,
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
