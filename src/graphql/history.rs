//! History in Chronicle's API: `sea-orm-history`'s GraphQL types for Chronicle's entities
//! ([`HistoryEntity`]), and who may revert what ([`PrincipalAccess`]). The history queries and the
//! revert mutations are the library's `HistoryQuery` and `HistoryMutation`, merged into the roots.

use async_graphql::Context;
use entity::HistoryEntity;
use sea_orm_history::graphql::RevertAccess;
use sea_orm_history::tables::assignation;

/// One change of one object.
pub type HistoryRecord = sea_orm_history::graphql::types::HistoryRecord<HistoryEntity>;

/// A group of changes made under one correlation id.
pub type Assignation = sea_orm_history::graphql::types::Assignation<HistoryEntity>;

pub use sea_orm_history::graphql::types::object_history;

/// Revert permissions read from the request's principal: with auth on, only the user who made an
/// assignation, or a holder of `history:revert-any`, may revert it or preview its revert; anyone who
/// may write may restore one object.
pub struct PrincipalAccess;

impl RevertAccess for PrincipalAccess {
    fn may_revert(&self, ctx: &Context<'_>, assignation: &assignation::Model) -> bool {
        super::principal(ctx).is_ok_and(|p| p.may_revert(assignation.actor.as_deref()))
    }

    fn may_restore(&self, ctx: &Context<'_>, _entity: &str, _object_id: &str) -> bool {
        super::principal(ctx).is_ok_and(|p| p.may_write())
    }
}
