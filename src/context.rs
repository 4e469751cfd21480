//! Who, through which app and in which assignation a request acts: the [`Principal`] the
//! [`Authenticator`] established, and the assignation read from `X-Assignation-Id` (or a fresh UUIDv7),
//! or from a verified provenance token, which also places it in a tree ([`Lineage`]). It becomes the
//! [`ChangeContext`] of every change the request makes.

use std::net::IpAddr;

use axum::http::HeaderMap;
use sea_orm_history::{AssignationId, ChangeContext, Lineage, Registry, Trace};

use sea_orm::{DatabaseConnection, EntityTrait};
use sea_orm_history::tables::assignation;

use crate::auth::provenance::{Provenance, ProvenancePolicy, remember};
use crate::auth::{Authenticator, Principal, Source};
use crate::error::AppError;

/// The validated context of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestContext {
    /// Who the request acts as.
    pub principal: Principal,
    /// The request's assignation: the client's `X-Assignation-Id`, or a fresh UUIDv7.
    pub assignation_id: AssignationId,
    /// Whether the server generated the assignation id (no `X-Assignation-Id`): then no other request
    /// can know it until this one has answered.
    pub assignation_generated: bool,
    /// The client's address (from the socket, or `X-Forwarded-For` of a trusted proxy).
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The assignation's place in a tree (from a provenance token, or `X-Parent-Assignation-Id`).
    pub lineage: Lineage,
    /// The `jti` of the verified provenance token the request carries.
    pub provenance: Option<String>,
    /// The W3C trace the request runs in (see `crate::operations::trace`).
    pub trace: Option<Trace>,
}

/// The request's assignation id: the client's, validated, or a fresh UUIDv7.
///
/// # Errors
/// `BAD_ASSIGNATION_ID` for a malformed or repeated `X-Assignation-Id`.
pub fn assignation_id(headers: &HeaderMap) -> Result<AssignationId, AppError> {
    let mut values = headers.get_all("x-assignation-id").iter();
    let Some(value) = values.next() else {
        return Ok(AssignationId::generate());
    };
    // A repeated header is ambiguous: which assignation? Refuse rather than pick one.
    if values.next().is_some() {
        return Err(AppError::BadAssignationId);
    }
    let value = value.to_str().map_err(|_| AppError::BadAssignationId)?;
    Ok(AssignationId::parse(value)?)
}

impl RequestContext {
    /// Authenticates the request and reads its assignation.
    ///
    /// # Errors
    /// See [`Authenticator::authenticate`] and [`assignation_id`].
    pub fn from_headers(
        authenticator: &Authenticator,
        headers: &HeaderMap,
        assignation_id: AssignationId,
    ) -> Result<Self, AppError> {
        Ok(Self {
            principal: authenticator.authenticate(headers)?,
            assignation_id,
            assignation_generated: !headers.contains_key("x-assignation-id"),
            ip: None,
            user_agent: None,
            lineage: Lineage::default(),
            provenance: None,
            trace: None,
        })
    }

    /// Reads the request's place in a tree: from a provenance token (verified, its agent checked
    /// against the request's user and client, its `jti` remembered), else in header mode from
    /// `X-Parent-Assignation-Id` (the parent's root and human read from the database when it is
    /// here).
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for a token that is invalid, replayed, or presented by another agent;
    /// `BAD_INPUT` when the token and `X-Assignation-Id` or `X-Parent-Assignation-Id` disagree, or for
    /// `X-Parent-Assignation-Id` in jwt mode; `BAD_ASSIGNATION_ID` for a malformed parent id;
    /// database errors.
    pub async fn place(
        &mut self,
        policy: &ProvenancePolicy,
        db: &DatabaseConnection,
        headers: &HeaderMap,
    ) -> Result<(), AppError> {
        let parent = parent_header(headers)?;
        let Some(token) = policy.token_of(headers)? else {
            let Some(parent) = parent else {
                return Ok(());
            };
            if self.principal.source != Source::Header {
                return Err(AppError::BadInput(
                    "X-Parent-Assignation-Id is read in header mode only; with --auth jwt a \
                     provenance token places a request in a tree"
                        .into(),
                ));
            }
            if parent == self.assignation_id {
                return Err(AppError::BadInput(
                    "an assignation cannot be its own parent".into(),
                ));
            }
            let known = assignation::Entity::find_by_id(parent.to_string())
                .one(db)
                .await?;
            let root = known
                .as_ref()
                .and_then(|p| p.root_id.clone())
                .map(AssignationId::parse)
                .transpose()?;
            self.lineage = Lineage {
                root: root.or_else(|| Some(parent.clone())),
                on_behalf_of: known.and_then(|p| p.on_behalf_of),
                parent: Some(parent),
                ..Lineage::default()
            };
            return Ok(());
        };
        let provenance = policy.verify(&token)?;
        self.accept_actor(&provenance)?;
        if headers.contains_key("x-assignation-id") && self.assignation_id != provenance.assignation
        {
            return Err(AppError::BadInput(format!(
                "X-Assignation-Id names {} but the provenance token is for {}",
                self.assignation_id, provenance.assignation
            )));
        }
        if let Some(parent) = parent
            && provenance.lineage.parent.as_ref() != Some(&parent)
        {
            return Err(AppError::BadInput(format!(
                "X-Parent-Assignation-Id names {parent} but the provenance token does not"
            )));
        }
        remember(db, &provenance, policy.single_use).await?;
        self.assignation_id = provenance.assignation;
        self.assignation_generated = false;
        self.lineage = provenance.lineage;
        self.provenance = Some(provenance.jti);
        Ok(())
    }

    /// Checks that the token's agent (`act`) is who the request acts as: the bearer token's user and
    /// client, or in header mode `X-User`/`X-App` (the token's agent when they are absent).
    fn accept_actor(&mut self, provenance: &Provenance) -> Result<(), AppError> {
        let mismatch = || {
            AppError::Unauthenticated(
                "provenance token: its act (agent and client) is not the request's user and client"
                    .into(),
            )
        };
        let principal = &mut self.principal;
        match principal.source {
            Source::Anonymous => Err(AppError::Unauthenticated(
                "provenance token: it must come with its agent's bearer token".into(),
            )),
            Source::Token => {
                if principal.user.as_deref() != Some(provenance.actor.as_str())
                    || principal.app != provenance.client
                {
                    return Err(mismatch());
                }
                Ok(())
            }
            Source::Header => {
                match &principal.user {
                    Some(user) if *user != provenance.actor => return Err(mismatch()),
                    Some(_) => {}
                    None => principal.user = Some(provenance.actor.clone()),
                }
                match (&principal.app, &provenance.client) {
                    (Some(app), Some(client)) if app != client => Err(mismatch()),
                    (Some(_), None) => Err(mismatch()),
                    (None, client) => {
                        principal.app.clone_from(client);
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// The change context the hooks see, for the entities of `registry`.
    pub fn change_context(&self, registry: &'static Registry) -> ChangeContext {
        let id = self.assignation_id.clone();
        let mut context = if self.assignation_generated {
            ChangeContext::generated(registry, id)
        } else {
            ChangeContext::new(registry, id)
        };
        context.user = self.principal.user.clone();
        context.app = self.principal.app.clone();
        context.trace = self.trace.clone();
        context.lineage(self.lineage.clone())
    }
}

/// `X-Parent-Assignation-Id`, validated like any assignation id.
fn parent_header(headers: &HeaderMap) -> Result<Option<AssignationId>, AppError> {
    let mut values = headers.get_all("x-parent-assignation-id").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AppError::BadAssignationId);
    }
    let value = value.to_str().map_err(|_| AppError::BadAssignationId)?;
    Ok(Some(AssignationId::parse(value)?))
}

/// The client's address: the socket's peer, or, when the peer is a trusted proxy, the nearest address
/// in `X-Forwarded-For` that is not one (a malformed header is ignored).
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> Option<String> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer.to_string());
    }
    let forwarded: Option<Vec<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().ok())
        .collect::<Option<Vec<&str>>>()
        .and_then(|values| {
            values
                .iter()
                .flat_map(|v| v.split(','))
                .map(|a| a.trim().parse::<IpAddr>().ok())
                .collect()
        });
    let client = forwarded
        .unwrap_or_default()
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer);
    Some(client.to_string())
}

/// The identity a request claims in header `name` (`X-User`, `X-App`), for the record of a refused
/// request: its first value, lossily decoded, without control characters, cut to `max` characters;
/// `None` when absent or blank.
pub fn claimed_identity(headers: &HeaderMap, name: &str, max: usize) -> Option<String> {
    let value = headers.get(name)?;
    let text: String = String::from_utf8_lossy(value.as_bytes())
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The `User-Agent` header, when it is text.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            axum::http::HeaderValue::from_static("1.2.3.4, 10.0.0.1"),
        );
        assert_eq!(
            client_ip(Some(proxy), &headers, &[proxy]).as_deref(),
            Some("1.2.3.4")
        );
        assert_eq!(
            client_ip(Some(proxy), &headers, &[]).as_deref(),
            Some("10.0.0.1")
        );
        headers.insert(
            "x-forwarded-for",
            axum::http::HeaderValue::from_static("nonsense"),
        );
        assert_eq!(
            client_ip(Some(proxy), &headers, &[proxy]).as_deref(),
            Some("10.0.0.1")
        );
    }
}
