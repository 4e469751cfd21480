//! `provenance_token`: each provenance token's `jti` seen, bound to the first token that carried it,
//! so that another token with a seen `jti` is refused (a replay), and with single use on, the same
//! token too. Rows past their token's expiry are removed by retention.

use sea_orm::entity::prelude::*;

/// A seen `jti`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "provenance_token")]
pub struct Model {
    /// The token's `jti`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub jti: String,
    /// Hex SHA-256 of the whole token that first carried it.
    pub token_hash: String,
    /// The assignation it named (`tsk`).
    pub assignation_id: String,
    /// When it was first seen.
    pub first_seen_at: DateTimeUtc,
    /// When the token expires (`exp`): after that it is refused anyway, and the row may go.
    pub expires_at: DateTimeUtc,
    /// How many requests carried it.
    pub uses: i32,
}

/// Seen tokens stand alone.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
