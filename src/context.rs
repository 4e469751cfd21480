//! Who, through which app and in which assignation a request acts: the [`Principal`] the
//! [`Authenticator`] established, and the assignation read from `X-Assignation-Id` (or a fresh UUIDv7).
//! It becomes the [`ChangeContext`] of every change the request makes.

use std::net::IpAddr;

use axum::http::HeaderMap;
use sea_orm_history::{AssignationId, ChangeContext, Registry};

use crate::auth::{Authenticator, Principal};
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
        })
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
        context
    }
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
