//! Which browsers' requests the server takes. A web page on another site can make a visitor's browser
//! send requests to any address, the visitor's local Chronicle included; the server therefore refuses,
//! before anything runs:
//!
//! - a request whose `Origin` is neither the server's own (its `Host`) nor one of `--cors-origins`
//!   (clients that send no `Origin`, like curl or another server, are unaffected);
//! - a request for a host the server does not answer to: bound to a loopback address it answers only
//!   to loopback names unless `--allowed-hosts` says otherwise, so that a page cannot reach it through
//!   DNS rebinding (a name of the attacker's that resolves to 127.0.0.1 makes its requests
//!   same-origin).
//!
//! Listed origins get CORS answers (preflight included) from `tower-http`'s [`CorsLayer`].

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::HttpSettings;
use crate::error::AppError;

/// The request headers a listed origin's page may send.
const ALLOWED_HEADERS: [&str; 9] = [
    "content-type",
    "authorization",
    "x-user",
    "x-app",
    "x-assignation-id",
    "x-parent-assignation-id",
    "rekuest-task",
    "traceparent",
    "tracestate",
];

/// Which hosts the server answers to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Hosts {
    /// Any `Host`.
    Any,
    /// Loopback names and addresses only.
    Loopback,
    /// These host names (lower case, without port).
    Only(Vec<String>),
}

/// The origin and host rules of one server.
#[derive(Clone, Debug)]
pub(crate) struct OriginPolicy {
    cors_origins: Vec<String>,
    hosts: Hosts,
}

/// Why the origin settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--cors-origins: {0:?} is not an origin like https://app.example.com (scheme, host, port)")]
pub struct BadOrigin(String);

impl OriginPolicy {
    /// The policy of `settings` for a server bound to `bound`.
    ///
    /// # Errors
    /// An entry of `--cors-origins` that is not an origin.
    pub(crate) fn new(settings: &HttpSettings, bound: IpAddr) -> Result<Self, BadOrigin> {
        let cors_origins = settings
            .cors_origins
            .iter()
            .map(|o| normalize_origin(o).ok_or_else(|| BadOrigin(o.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let hosts = if !settings.allowed_hosts.is_empty() {
            Hosts::Only(
                settings
                    .allowed_hosts
                    .iter()
                    .map(|h| h.trim().to_ascii_lowercase())
                    .collect(),
            )
        } else if bound.is_loopback() {
            Hosts::Loopback
        } else {
            Hosts::Any
        };
        Ok(Self {
            cors_origins,
            hosts,
        })
    }

    /// The CORS layer answering listed origins, or `None` when none is listed.
    pub(crate) fn cors_layer(&self) -> Option<CorsLayer> {
        if self.cors_origins.is_empty() {
            return None;
        }
        let origins: Vec<HeaderValue> = self
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
                .expose_headers([
                    HeaderName::from_static("x-assignation-id"),
                    HeaderName::from_static("traceresponse"),
                ])
                .max_age(std::time::Duration::from_secs(600)),
        )
    }

    /// Whether a request with `headers` may be served.
    ///
    /// # Errors
    /// `FORBIDDEN` naming the host or origin refused.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), AppError> {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        if let Some(host) = host
            && !self.answers_to(host)
        {
            return Err(AppError::Forbidden(format!(
                "this server does not answer to the host {host:?} (see --allowed-hosts)"
            )));
        }
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let Some(origin) = origins.next() else {
            return Ok(());
        };
        let origin = match (origin.to_str(), origins.next()) {
            (Ok(origin), None) => origin.trim(),
            _ => {
                return Err(AppError::Forbidden(
                    "a request may carry one readable Origin header".into(),
                ));
            }
        };
        let normalized = normalize_origin(origin);
        let same_origin = match (&normalized, host) {
            (Some(o), Some(host)) => o
                .split_once("://")
                .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
            _ => false,
        };
        let listed = normalized
            .as_ref()
            .is_some_and(|o| self.cors_origins.contains(o))
            || (origin == "null" && self.cors_origins.iter().any(|o| o == "null"));
        if same_origin || listed {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "requests from pages of {origin:?} are refused: only this server's own pages and the \
                 origins listed in --cors-origins may call it"
            )))
        }
    }

    fn answers_to(&self, host: &str) -> bool {
        let name = host_name(host);
        match &self.hosts {
            Hosts::Any => true,
            Hosts::Only(names) => names.contains(&name),
            Hosts::Loopback => {
                name == "localhost"
                    || name.ends_with(".localhost")
                    || name
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
        }
    }
}

/// The host name of a `Host` value, lower case, without its port (`[::1]:8000` gives `[::1]`).
fn host_name(host: &str) -> String {
    let name = if host.starts_with('[') {
        host.split_once(']')
            .map_or(host, |(v6, _)| &host[..=v6.len()])
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.to_ascii_lowercase()
}

/// `scheme://host[:port]` in lower case, or `None` when `origin` is not one (a path, no scheme, …).
/// `null` stays `null`.
fn normalize_origin(origin: &str) -> Option<String> {
    let origin = origin.trim();
    if origin == "null" {
        return Some(origin.to_owned());
    }
    let (scheme, authority) = origin.split_once("://")?;
    let valid_scheme = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    let valid_authority = !authority.is_empty()
        && !authority.contains(['/', '?', '#', '@', ' '])
        && authority.is_ascii();
    (valid_scheme && valid_authority).then(|| origin.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(cors: &[&str], hosts: &[&str], bound: [u8; 4]) -> OriginPolicy {
        let settings = HttpSettings {
            cors_origins: cors.iter().map(|s| (*s).to_owned()).collect(),
            allowed_hosts: hosts.iter().map(|s| (*s).to_owned()).collect(),
        };
        OriginPolicy::new(&settings, IpAddr::from(bound)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_page_of_the_server_itself_is_served_and_any_other_origin_is_refused() {
        let p = policy(&[], &[], [127, 0, 0, 1]);
        let own = headers(&[
            ("host", "127.0.0.1:8000"),
            ("origin", "http://127.0.0.1:8000"),
        ]);
        assert!(p.check(&own).is_ok());
        let evil = headers(&[
            ("host", "127.0.0.1:8000"),
            ("origin", "https://evil.example"),
        ]);
        assert!(p.check(&evil).is_err());
        let null = headers(&[("host", "127.0.0.1:8000"), ("origin", "null")]);
        assert!(p.check(&null).is_err());
        let none = headers(&[("host", "127.0.0.1:8000")]);
        assert!(p.check(&none).is_ok());
    }

    #[test]
    fn listed_origins_are_served_whatever_their_case() {
        let p = policy(&["https://App.example.com"], &[], [127, 0, 0, 1]);
        let listed = headers(&[
            ("host", "localhost:8000"),
            ("origin", "https://app.example.com"),
        ]);
        assert!(p.check(&listed).is_ok());
        let other = headers(&[
            ("host", "localhost:8000"),
            ("origin", "https://example.com"),
        ]);
        assert!(p.check(&other).is_err());
    }

    #[test]
    fn a_loopback_server_answers_only_to_loopback_names() {
        let p = policy(&[], &[], [127, 0, 0, 1]);
        for host in [
            "localhost:8000",
            "127.0.0.1:8000",
            "[::1]:8000",
            "app.localhost",
        ] {
            let h = headers(&[("host", host)]);
            assert!(p.check(&h).is_ok(), "{host}");
        }
        let rebound = headers(&[("host", "evil.example:8000")]);
        assert!(p.check(&rebound).is_err());
        let public = policy(&[], &[], [0, 0, 0, 0]);
        assert!(public.check(&rebound).is_ok());
        let listed = policy(&[], &["chronicle.internal"], [127, 0, 0, 1]);
        assert!(
            listed
                .check(&headers(&[("host", "chronicle.internal:8000")]))
                .is_ok()
        );
        assert!(
            listed
                .check(&headers(&[("host", "localhost:8000")]))
                .is_err()
        );
    }

    #[test]
    fn an_origin_setting_must_be_an_origin() {
        let settings = HttpSettings {
            cors_origins: vec!["https://example.com/app".into()],
            allowed_hosts: vec![],
        };
        assert!(OriginPolicy::new(&settings, IpAddr::from([127, 0, 0, 1])).is_err());
    }
}
