//! Bearer-token verification with `jsonwebtoken`: HS256 with a shared secret, or RS256 / EdDSA (and
//! ES256) with a PEM public key. Exactly one algorithm is accepted, the one the key is for, so
//! `alg: none` and algorithm confusion (an HS256 token "signed" with the public key) are refused before
//! any signature is checked. `exp` and `sub` are required; `iss` and `aud` are checked when configured.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{Principal, Source};
use crate::config::AuthSettings;

/// Why the jwt settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither or both of `--jwt-secret` and `--jwt-public-key`.
    #[error("--auth jwt needs exactly one of --jwt-secret and --jwt-public-key")]
    KeyChoice,
    /// The public key file cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no RSA, Ed25519 or P-256 public key in PEM form.
    #[error("{0} holds no RSA, Ed25519 or P-256 public key in PEM form")]
    Parse(String),
    /// An empty secret.
    #[error("--jwt-secret may not be empty")]
    EmptySecret,
}

/// Why a token was refused. The message is safe to show: it never contains the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts of JSON, or claims of the wrong type.
    #[error("the token is malformed")]
    Malformed,
    /// The header names another algorithm than the key's (including `none`).
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    /// The signature does not match.
    #[error("the token's signature is invalid")]
    Signature,
    /// `exp` is past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is not accepted")]
    Issuer,
    /// `aud` does not include the configured audience.
    #[error("the token's audience is not accepted")]
    Audience,
    /// A required claim is absent.
    #[error("the token lacks the {0} claim")]
    MissingClaim(String),
    /// `sub` is empty, holds control characters, or is longer than an actor column holds.
    #[error("the token's sub must be 1 to {0} printable characters")]
    Subject(usize),
}

/// `scope` as a space-separated string (RFC 8693) or, as some issuers send it, a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scope {
    Text(String),
    List(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    azp: Option<String>,
    client_id: Option<String>,
    scope: Option<Scope>,
}

/// Checks tokens against one key.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    max_identity_chars: usize,
}

impl JwtVerifier {
    /// The verifier for the key and claims the settings name.
    ///
    /// # Errors
    /// See [`KeyError`].
    pub fn from_settings(
        settings: &AuthSettings,
        max_identity_chars: usize,
    ) -> Result<Self, KeyError> {
        let (key, algorithm) = match (&settings.jwt_secret, &settings.jwt_public_key) {
            (Some(secret), None) => {
                if secret.is_empty() {
                    return Err(KeyError::EmptySecret);
                }
                if secret.len() < 32 {
                    tracing::warn!(
                        "--jwt-secret is shorter than 32 bytes; HS256 wants at least 256 bits"
                    );
                }
                (
                    DecodingKey::from_secret(secret.as_bytes()),
                    Algorithm::HS256,
                )
            }
            (None, Some(path)) => {
                let shown = path.display().to_string();
                let pem = std::fs::read(path).map_err(|source| KeyError::Read {
                    path: shown.clone(),
                    source,
                })?;
                public_key(&pem).ok_or(KeyError::Parse(shown))?
            }
            _ => return Err(KeyError::KeyChoice),
        };
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = settings.jwt_leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        match &settings.jwt_issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                validation.required_spec_claims.insert("iss".into());
            }
            None => validation.iss = None,
        }
        match &settings.jwt_audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        Ok(Self {
            key,
            validation,
            max_identity_chars,
        })
    }

    /// The principal a valid token names.
    ///
    /// # Errors
    /// See [`TokenError`].
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| token_error(e.kind()))?;
        let claims = data.claims;
        let sub = claims.sub.trim();
        if sub.is_empty()
            || sub.chars().count() > self.max_identity_chars
            || sub.chars().any(char::is_control)
        {
            return Err(TokenError::Subject(self.max_identity_chars));
        }
        let app = [claims.azp, claims.client_id]
            .into_iter()
            .flatten()
            .map(|app| app.trim().to_owned())
            .find(|app| !app.is_empty())
            .map(|app| {
                app.chars()
                    .filter(|c| !c.is_control())
                    .take(self.max_identity_chars)
                    .collect()
            });
        let scopes = match claims.scope {
            None => Vec::new(),
            Some(Scope::Text(text)) => text.split_whitespace().map(str::to_owned).collect(),
            Some(Scope::List(list)) => list,
        };
        Ok(Principal {
            user: Some(sub.to_owned()),
            app,
            scopes,
            source: Source::Token,
        })
    }
}

/// The key and its one algorithm, whichever kind the PEM holds.
pub(crate) fn public_key(pem: &[u8]) -> Option<(DecodingKey, Algorithm)> {
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Some((key, Algorithm::EdDSA));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Some((key, Algorithm::ES256));
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Some((key, Algorithm::RS256));
    }
    None
}

pub(crate) fn token_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::Signature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm => TokenError::Algorithm,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim.clone()),
        _ => TokenError::Malformed,
    }
}
