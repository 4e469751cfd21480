//! History in Chronicle's API: `sea-orm-history`'s GraphQL types for Chronicle's entities
//! ([`HistoryEntity`]), and who may revert what ([`PrincipalAccess`]). The history queries and the
//! revert mutations are the library's `HistoryQuery` and `HistoryMutation`, merged into the roots.

use async_graphql::Context;
use entity::HistoryEntity;
use sea_orm_history::graphql::RevertAccess;
use sea_orm_history::tables::assignation;

use crate::auth::Source;
use crate::context::RequestContext;

/// One change of one object.
pub type HistoryRecord = sea_orm_history::graphql::types::HistoryRecord<HistoryEntity>;

/// A group of changes made under one correlation id.
pub type Assignation = sea_orm_history::graphql::types::Assignation<HistoryEntity>;

pub use sea_orm_history::graphql::types::object_history;

/// Revert permissions read from the request's principal: with auth on, the user who made an
/// assignation, the human its tree runs for (or an agent whose provenance token acts for that human),
/// or a holder of `history:revert-any` may revert it or preview its revert; anyone who may write may
/// restore one object.
pub struct PrincipalAccess;

impl RevertAccess for PrincipalAccess {
    fn may_revert(&self, ctx: &Context<'_>, assignation: &assignation::Model) -> bool {
        let Ok(principal) = super::principal(ctx) else {
            return false;
        };
        if principal.may_revert(assignation.actor.as_deref()) {
            return true;
        }
        // The human a tree runs for may revert it, and so may an agent acting for them.
        let acting_for = ctx
            .data_opt::<RequestContext>()
            .and_then(|r| r.lineage.on_behalf_of.as_deref());
        principal.source != Source::Anonymous
            && assignation.on_behalf_of.as_deref().is_some_and(|human| {
                principal.user.as_deref() == Some(human) || acting_for == Some(human)
            })
    }

    fn may_restore(&self, ctx: &Context<'_>, _entity: &str, _object_id: &str) -> bool {
        super::principal(ctx).is_ok_and(|p| p.may_write())
    }
}
