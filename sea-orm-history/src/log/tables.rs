//! The log's tables: [`log_entry`] (which record is at which log index), [`log_hash`] (the tree's
//! stored hashes, in the dense order of RFC 6962 trees that `tlog_tiles` uses), [`log_state`] (the
//! tree's size, the one row sequencers lock) and [`log_checkpoint`] (signed tree heads). Created by
//! `migration::create_history_support`.

/// `history_log_entry`: the record at each log index.
pub mod log_entry {
    use sea_orm::entity::prelude::*;

    /// A leaf of the log.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "history_log_entry")]
    pub struct Model {
        /// The log index, from 0, without gaps.
        #[sea_orm(primary_key, auto_increment = false)]
        pub idx: i64,
        /// The record's entity name.
        pub entity: String,
        /// The record's id (unique across all history).
        #[sea_orm(unique)]
        pub record_id: Uuid,
        /// The record's object.
        pub object_id: String,
        /// The record's version.
        pub version: i32,
        /// The record's hash when it was logged.
        pub record_hash: String,
        /// The record's time, so that verification can tell a record dated before the log's
        /// newest ones but missing from it.
        pub at: DateTimeUtc,
    }

    /// Entries name records by id only.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    /// Written by the sequencer only.
    impl ActiveModelBehavior for ActiveModel {}
}

/// `history_log_hash`: the tree's stored hashes (the leaves' and every complete subtree's).
pub mod log_hash {
    use sea_orm::entity::prelude::*;

    /// One stored hash.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "history_log_hash")]
    pub struct Model {
        /// The stored hash index (`tlog_tiles::stored_hash_index`).
        #[sea_orm(primary_key, auto_increment = false)]
        pub idx: i64,
        /// Hex SHA-256.
        pub hash: String,
    }

    /// Hashes stand alone.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    /// Written by the sequencer only.
    impl ActiveModelBehavior for ActiveModel {}
}

/// `history_log_state`: one row (`id = 1`): the tree's size, and the newest record time sequenced.
pub mod log_state {
    use sea_orm::entity::prelude::*;

    /// The log's state.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "history_log_state")]
    pub struct Model {
        /// Always 1.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        /// How many records the log holds.
        pub size: i64,
        /// The newest `at` of a record sequenced so far.
        pub watermark: Option<DateTimeUtc>,
    }

    /// The state stands alone.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    /// Written by the sequencer only.
    impl ActiveModelBehavior for ActiveModel {}
}

/// `history_log_checkpoint`: the signed tree heads made so far.
pub mod log_checkpoint {
    use sea_orm::entity::prelude::*;

    /// A checkpoint.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "history_log_checkpoint")]
    pub struct Model {
        /// The tree size it covers.
        #[sea_orm(primary_key, auto_increment = false)]
        pub size: i64,
        /// The root hash at that size, base64 (as the note has it).
        pub root: String,
        /// The signed note (C2SP tlog-checkpoint).
        #[sea_orm(column_type = "Text")]
        pub note: String,
        /// When it was signed.
        pub at: DateTimeUtc,
    }

    /// Checkpoints stand alone.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    /// Written by checkpointing only.
    impl ActiveModelBehavior for ActiveModel {}
}
