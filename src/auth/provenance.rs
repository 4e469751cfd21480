//! Provenance tokens: Arkitekt's signed statement of which task a request runs for, where that task
//! stands in its tree, and for whom (the `Rekuest-Task` header, as Koherent reads it).
//!
//! [`ProvenancePolicy`] holds the configured key and rules. [`ProvenancePolicy::verify`] checks a
//! token offline — signature with the configured key's one algorithm, `exp`, `iss`, this service in
//! `aud`, the claims' shapes — and gives its [`Provenance`]: the assignation (`tsk`), its
//! [`Lineage`] (`ptk`, `rtk`, `rcb`, `ahs`, `aha`), and the agent that must present it (`act`).
//! [`remember`] binds each `jti` to the first token that carried it, so that a token replayed under
//! another's `jti`, or (with single use) any token sent twice, is refused.

use chrono::{DateTime, Utc};
use entity::provenance_token;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{DatabaseConnection, EntityTrait, IntoActiveModel};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use axum::http::HeaderMap;
use sea_orm_history::{AssignationId, Lineage};

use super::jwt::{TokenError, token_error};
use crate::config::AuthSettings;
use crate::error::AppError;

/// Why the provenance settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceKeyError {
    /// The key file cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No Ed25519, P-256 or RSA public key in PEM form.
    #[error("--provenance-public-key holds no Ed25519, P-256 or RSA public key in PEM form")]
    Parse,
    /// A key without the claims it is checked against.
    #[error("--provenance-public-key needs --provenance-issuer and --provenance-audience")]
    Incomplete,
    /// `--require-provenance` without a key: no token could ever be accepted.
    #[error("--require-provenance needs --provenance-public-key")]
    RequireWithoutKey,
    /// A header name that is not one.
    #[error("--provenance-header {0:?} is not a header name")]
    Header(String),
}

/// The executing agent of a token: its user and OAuth client.
#[derive(Debug, Deserialize)]
struct Actor {
    sub: String,
    cid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    jti: String,
    act: Actor,
    tsk: String,
    ptk: Option<String>,
    rtk: Option<String>,
    rcb: Option<String>,
    ahs: Option<String>,
    aha: Option<String>,
}

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// The token's `jti`.
    pub jti: String,
    /// Hex SHA-256 of the whole token.
    pub token_hash: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// This request's assignation (`tsk`).
    pub assignation: AssignationId,
    /// Its place in the tree and the human it runs for.
    pub lineage: Lineage,
    /// The immediate causer of this hop (`sub`).
    pub causer: String,
    /// The agent that must present it: its user (`act.sub`) …
    pub actor: String,
    /// … and its client (`act.cid`).
    pub client: Option<String>,
}

/// The configured key and rules for provenance tokens.
pub struct ProvenancePolicy {
    verifier: Option<(DecodingKey, Validation)>,
    /// The header a token comes in (its `X-` form is read too).
    pub header: String,
    /// Mutations without a token are refused.
    pub require: bool,
    /// A token is accepted once.
    pub single_use: bool,
    max_identity_chars: usize,
}

impl ProvenancePolicy {
    /// The policy the settings describe.
    ///
    /// # Errors
    /// See [`ProvenanceKeyError`].
    pub fn from_settings(
        settings: &AuthSettings,
        max_identity_chars: usize,
    ) -> Result<Self, ProvenanceKeyError> {
        let header = settings.provenance_header.trim().to_ascii_lowercase();
        if header.is_empty() || axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            return Err(ProvenanceKeyError::Header(
                settings.provenance_header.clone(),
            ));
        }
        let verifier = match &settings.provenance_public_key {
            None if settings.require_provenance => {
                return Err(ProvenanceKeyError::RequireWithoutKey);
            }
            None => None,
            Some(key) => {
                let (Some(issuer), Some(audience)) =
                    (&settings.provenance_issuer, &settings.provenance_audience)
                else {
                    return Err(ProvenanceKeyError::Incomplete);
                };
                let pem = if key.trim_start().starts_with("-----BEGIN") {
                    key.clone().into_bytes()
                } else {
                    std::fs::read(key).map_err(|source| ProvenanceKeyError::Read {
                        path: key.clone(),
                        source,
                    })?
                };
                let (key, algorithm) =
                    super::jwt::public_key(&pem).ok_or(ProvenanceKeyError::Parse)?;
                let mut validation = Validation::new(algorithm);
                validation.algorithms = vec![algorithm];
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.set_issuer(&[issuer]);
                validation.set_audience(&[audience]);
                validation.leeway = settings.jwt_leeway_secs;
                validation.validate_exp = true;
                validation.validate_nbf = true;
                debug_assert!(algorithm != Algorithm::HS256);
                Some((key, validation))
            }
        };
        Ok(Self {
            verifier,
            header,
            require: settings.require_provenance,
            single_use: settings.provenance_single_use,
            max_identity_chars,
        })
    }

    /// The token the request carries, if any: in the configured header or its `X-` form (which must
    /// then agree), sent once.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for a repeated or unreadable header, or two that disagree.
    pub fn token_of(&self, headers: &HeaderMap) -> Result<Option<String>, AppError> {
        let mut found: Option<String> = None;
        for name in [self.header.clone(), format!("x-{}", self.header)] {
            let mut values = headers.get_all(name.as_str()).iter();
            let Some(value) = values.next() else {
                continue;
            };
            let refuse = |why: &str| AppError::Unauthenticated(format!("provenance token: {why}"));
            if values.next().is_some() {
                return Err(refuse("send one token"));
            }
            let value = value
                .to_str()
                .map_err(|_| refuse("the header is not text"))?
                .trim()
                .to_owned();
            match &found {
                Some(other) if *other != value => {
                    return Err(refuse("two headers carry different tokens"));
                }
                _ => found = Some(value),
            }
        }
        Ok(found)
    }

    /// Verifies `token`.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` naming why: no key configured, or the token is malformed, badly signed,
    /// expired, for another issuer or audience, or lacks a claim.
    pub fn verify(&self, token: &str) -> Result<Provenance, AppError> {
        let refuse = |why: String| AppError::Unauthenticated(format!("provenance token: {why}"));
        let Some((key, validation)) = &self.verifier else {
            return Err(refuse(
                "this server verifies no provenance tokens (it was started without \
                 --provenance-public-key)"
                    .into(),
            ));
        };
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::Json(_) => {
                    refuse("it lacks a claim or one has the wrong type (needs sub, exp, jti, act {sub, cid}, tsk)".into())
                }
                kind => refuse(token_error(kind).to_string()),
            })?
            .claims;
        let id = |claim: &str, value: &str| {
            AssignationId::parse(value)
                .map_err(|_| refuse(format!("its {claim} is not an assignation id")))
        };
        let assignation = id("tsk", &claims.tsk)?;
        let parent = claims.ptk.as_deref().map(|p| id("ptk", p)).transpose()?;
        let root = claims.rtk.as_deref().map(|r| id("rtk", r)).transpose()?;
        if parent.is_none() && root.as_ref().is_some_and(|r| *r != assignation) {
            return Err(refuse("at a root (no ptk), rtk must equal tsk".into()));
        }
        if parent.as_ref() == Some(&assignation) {
            return Err(refuse("an assignation cannot be its own parent".into()));
        }
        let text = |claim: &str, value: Option<String>, max: usize| match value {
            Some(v)
                if v.trim().is_empty()
                    || v.chars().count() > max
                    || v.chars().any(char::is_control) =>
            {
                Err(refuse(format!(
                    "its {claim} must be 1 to {max} printable characters"
                )))
            }
            v => Ok(v),
        };
        let max = self.max_identity_chars;
        if claims.jti.trim().is_empty() || claims.jti.len() > 255 {
            return Err(refuse("its jti must be 1 to 255 bytes".into()));
        }
        let causer = text("sub", Some(claims.sub), max)?.unwrap_or_default();
        let actor = text("act.sub", Some(claims.act.sub), max)?.unwrap_or_default();
        let client = text("act.cid", claims.act.cid, max)?;
        let on_behalf_of = text("rcb", claims.rcb, max)?;
        let args_hash = text("ahs", claims.ahs, 128)?;
        let args_hash_alg = text("aha", claims.aha, 64)?;
        let expires_at = DateTime::<Utc>::from_timestamp(claims.exp, 0)
            .ok_or_else(|| refuse(TokenError::Malformed.to_string()))?;
        Ok(Provenance {
            jti: claims.jti,
            token_hash: hex::encode(Sha256::digest(token.as_bytes())),
            expires_at,
            assignation,
            lineage: Lineage {
                parent,
                root,
                on_behalf_of,
                args_hash,
                args_hash_alg,
            },
            causer,
            actor,
            client,
        })
    }
}

/// Binds the token's `jti` to it on first sight; refuses another token under a `jti` seen before,
/// and with `single_use`, the same token a second time. One transaction counts the use and reads the
/// row back under its lock, so two requests racing with one token cannot both be its first use.
///
/// # Errors
/// `UNAUTHENTICATED` for a replay; database errors.
pub async fn remember(
    db: &DatabaseConnection,
    provenance: &Provenance,
    single_use: bool,
) -> Result<(), AppError> {
    let row = provenance_token::Model {
        jti: provenance.jti.clone(),
        token_hash: provenance.token_hash.clone(),
        assignation_id: provenance.assignation.to_string(),
        first_seen_at: sea_orm_history::now(),
        expires_at: provenance.expires_at,
        uses: 1,
    };
    let txn = sea_orm_history::capture::begin_write(db).await?;
    provenance_token::Entity::insert(row.into_active_model())
        .on_conflict(
            OnConflict::column(provenance_token::Column::Jti)
                .value(
                    provenance_token::Column::Uses,
                    Expr::col((provenance_token::Entity, provenance_token::Column::Uses)).add(1),
                )
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    let seen = provenance_token::Entity::find_by_id(provenance.jti.clone())
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::internal("a provenance token just recorded is not there"))?;
    txn.commit().await?;
    if seen.token_hash != provenance.token_hash {
        return Err(AppError::Unauthenticated(
            "provenance token: its jti was used by another token (a replay)".into(),
        ));
    }
    if single_use && seen.uses > 1 {
        return Err(AppError::Unauthenticated(
            "provenance token: it was used already, and tokens are single use here".into(),
        ));
    }
    Ok(())
}
