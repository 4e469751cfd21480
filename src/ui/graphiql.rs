//! GraphiQL at `GET /graphql`, served whole by this binary: the page, its start script, and the
//! GraphiQL, React and ReactDOM bundles of the npm packages pinned in `graphiql/package-lock.json`
//! (refreshed by `graphiql/update.sh`), embedded gzip'd. Nothing comes from a CDN, so the page works
//! on a machine without internet access.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX: &str = include_str!("graphiql/index.html");
const START: &str = include_str!("graphiql/start.js");
const START_STYLE: &str = include_str!("graphiql/start.css");
const GRAPHIQL: &[u8] = include_bytes!("graphiql/assets/graphiql.min.js.gz");
const GRAPHIQL_STYLE: &[u8] = include_bytes!("graphiql/assets/graphiql.min.css.gz");
const REACT: &[u8] = include_bytes!("graphiql/assets/react.production.min.js.gz");
const REACT_DOM: &[u8] = include_bytes!("graphiql/assets/react-dom.production.min.js.gz");

/// This origin only, but GraphiQL's editors set inline styles and its fonts are data URLs.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   font-src data:; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The GraphiQL page.
pub fn page() -> Response {
    with_headers(
        INDEX.into_response(),
        "text/html; charset=utf-8",
        "no-cache",
    )
}

/// `/graphiql/*`: the start script and stylesheet, and the bundles.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/graphiql/start.js",
            get(|| async { with_headers(START.into_response(), JS, "no-cache") }),
        )
        .route(
            "/graphiql/start.css",
            get(|| async { with_headers(START_STYLE.into_response(), CSS, "no-cache") }),
        )
        .route(
            "/graphiql/graphiql.min.js",
            get(|headers: HeaderMap| async move { bundle(&headers, GRAPHIQL, JS) }),
        )
        .route(
            "/graphiql/graphiql.min.css",
            get(|headers: HeaderMap| async move { bundle(&headers, GRAPHIQL_STYLE, CSS) }),
        )
        .route(
            "/graphiql/react.production.min.js",
            get(|headers: HeaderMap| async move { bundle(&headers, REACT, JS) }),
        )
        .route(
            "/graphiql/react-dom.production.min.js",
            get(|headers: HeaderMap| async move { bundle(&headers, REACT_DOM, JS) }),
        )
}

/// A gzip'd bundle: as it is to a client that accepts gzip, else unpacked.
fn bundle(request: &HeaderMap, gzipped: &'static [u8], content_type: &'static str) -> Response {
    let accepts_gzip = request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        });
    // Versions are pinned with the binary: a day of caching is safe.
    let cache = "public, max-age=86400";
    if accepts_gzip {
        let mut response = with_headers(gzipped.into_response(), content_type, cache);
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        return response;
    }
    let mut plain = Vec::new();
    match std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gzipped), &mut plain) {
        Ok(_) => {
            let mut response = with_headers(plain.into_response(), content_type, cache);
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "an embedded GraphiQL bundle does not unpack");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn with_headers(
    mut response: Response,
    content_type: &'static str,
    cache: &'static str,
) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_bundle_unpacks() {
        for bundle in [GRAPHIQL, GRAPHIQL_STYLE, REACT, REACT_DOM] {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bundle), &mut plain)
                .expect("gzip");
            assert!(plain.len() > 1_000);
        }
    }
}
